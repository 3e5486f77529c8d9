package etcdkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
)

// errCrash is what test hooks return to stop a commit where a crash would.
var errCrash = errors.New("injected crash")

// Small limits make a modest commit take a write-ahead record of many chunks, applied in many
// transactions.
const smallOps, smallBytes = 8, 64 << 10

func openDB(t *testing.T, cli *clientv3.Client, prefix string, fence func() (string, int64, bool)) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{Client: cli, Prefix: prefix, Fence: fence,
		MaxTxnOps: smallOps, MaxRequestBytes: smallBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// seed commits the state every large commit below starts from.
func seed(t *testing.T, db kv.DB) {
	t.Helper()
	if err := db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("docs"))
		if err != nil {
			return err
		}
		for i := range 50 {
			if err := b.Put(fmt.Appendf(nil, "old-%03d", i), []byte("old")); err != nil {
				return err
			}
		}
		old, err := tx.CreateBucketIfNotExists([]byte("old"))
		if err != nil {
			return err
		}
		if err := old.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		return old.SetSequence(41)
	}); err != nil {
		t.Fatal(err)
	}
}

// largeCommit puts 400 incompressible 1 KiB values, deletes the seed's keys, recreates bucket
// "old" with new keys, and advances a sequence: every kind of operation, in far more than one
// etcd transaction under the small limits.
func largeCommit(tx kv.Tx) error {
	docs := tx.Bucket([]byte("docs"))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		if err := docs.Put(fmt.Appendf(nil, "new-%03d", i), v); err != nil {
			return err
		}
	}
	for i := range 50 {
		if err := docs.Delete(fmt.Appendf(nil, "old-%03d", i)); err != nil {
			return err
		}
	}
	if _, err := docs.NextSequence(); err != nil {
		return err
	}
	if err := tx.DeleteBucket([]byte("old")); err != nil {
		return err
	}
	old, err := tx.CreateBucketIfNotExists([]byte("old"))
	if err != nil {
		return err
	}
	for _, k := range []string{"a", "k", "z"} {
		if err := old.Put([]byte(k), []byte("new")); err != nil {
			return err
		}
	}
	return nil
}

// state renders what the tests check: keys per bucket (with a digest of values) and sequences.
func state(t *testing.T, db kv.DB) string {
	t.Helper()
	var sb strings.Builder
	if err := db.View(func(tx kv.Tx) error {
		return tx.ForEachBucket(func(name []byte) error {
			b := tx.Bucket(name)
			fmt.Fprintf(&sb, "%s seq=%d n=%d:", name, b.Sequence(), b.KeyN())
			return b.ForEach(func(k, v []byte) error {
				fmt.Fprintf(&sb, " %s=%d/%x", k, len(v), v[:min(4, len(v))])
				return nil
			})
		})
	}); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// want is the state after seed and largeCommit, from a DB with no hooks.
func want(t *testing.T, cli *clientv3.Client, prefix string) string {
	t.Helper()
	db := openDB(t, cli, prefix, nil)
	seed(t, db)
	if err := db.Update(largeCommit); err != nil {
		t.Fatal(err)
	}
	if n := walKeys(t, cli, prefix); n != 0 {
		t.Fatalf("%d write-ahead keys after a large commit", n)
	}
	return state(t, db)
}

func walKeys(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix+"wal/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

func TestLargeCommitIsAtomicForItsDB(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	wantState := want(t, cli, "/ref/")
	db := openDB(t, cli, "/atomic/", nil)
	seed(t, db)
	before := state(t, db)
	batches := 0
	db.hooks.beforeApply = func(i int) error {
		batches++
		if i == 3 { // part of the commit may be applied by now: this DB's reads must not show it
			if got := state(t, db); got != before {
				t.Errorf("a View during the apply sees part of the commit:\n%s\nwant\n%s", got, before)
			}
		}
		return nil
	}
	if err := db.Update(largeCommit); err != nil {
		t.Fatal(err)
	}
	if batches < 10 {
		t.Errorf("the commit took %d transactions; the test wants a write-ahead record", batches)
	}
	if got := state(t, db); got != wantState {
		t.Errorf("after the commit:\n%s\nwant\n%s", got, wantState)
	}
}

func TestRecoverAfterCrash(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	wantState := want(t, cli, "/ref/")
	cases := []struct {
		name  string
		hooks testHooks
		// same: the crashed DB's own next Update finishes the commit, not a new DB's Open.
		same bool
	}{
		{"after the record, nothing applied", testHooks{afterRecord: func() error { return errCrash }}, false},
		{"half applied", testHooks{beforeApply: func(i int) error {
			if i == 20 {
				return errCrash
			}
			return nil
		}}, false},
		{"half applied, same DB goes on", testHooks{beforeApply: func(i int) error {
			if i == 20 {
				return errCrash
			}
			return nil
		}}, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("/crash/%d/", i)
			db := openDB(t, cli, prefix, nil)
			seed(t, db)
			db.hooks = tc.hooks
			err := db.Update(largeCommit)
			if err != nil && !errors.Is(err, errCrash) {
				t.Fatal(err)
			}
			if walKeys(t, cli, prefix) == 0 {
				t.Fatal("no write-ahead record left by the crash")
			}
			if tc.same {
				db.hooks = testHooks{}
				if err := db.Update(func(kv.Tx) error { return nil }); err != nil {
					t.Fatal(err)
				}
			} else {
				db = openDB(t, cli, prefix, nil) // a new process: Open recovers
			}
			if got := state(t, db); got != wantState {
				t.Errorf("after recovery:\n%s\nwant\n%s", got, wantState)
			}
			if n := walKeys(t, cli, prefix); n != 0 {
				t.Errorf("%d write-ahead keys left after recovery", n)
			}
			// Recovering again changes nothing.
			if err := db.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := state(t, db); got != wantState {
				t.Errorf("after a second recovery:\n%s\nwant\n%s", got, wantState)
			}
		})
	}
}

// TestCommitOverUnappliedRecord: a DB that did not recover (a new leader that skipped Recover)
// cannot commit over a record it has not applied; the refused commit applies the record.
func TestCommitOverUnappliedRecord(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	wantState := want(t, cli, "/ref/")
	for _, n := range []int{1, 400} { // one etcd transaction; a write-ahead record
		prefix := fmt.Sprintf("/unapplied/%d/", n)
		crashed := openDB(t, cli, prefix, nil)
		seed(t, crashed)
		other := openDB(t, cli, prefix, nil) // opened, and recovered, before the crash
		crashed.hooks.afterRecord = func() error { return errCrash }
		if err := crashed.Update(largeCommit); !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		late := func(tx kv.Tx) error {
			for i := range n {
				if err := tx.Bucket([]byte("docs")).Put(fmt.Appendf(nil, "late-%03d", i), []byte("x")); err != nil {
					return err
				}
			}
			return nil
		}
		if err := other.Update(late); !errors.Is(err, errUnapplied) {
			t.Fatalf("commit of %d keys over an unapplied record = %v, want errUnapplied", n, err)
		}
		if got := state(t, other); got != wantState {
			t.Fatalf("after the refused commit:\n%s\nwant\n%s", got, wantState)
		}
		if err := other.Update(late); err != nil {
			t.Fatalf("commit of %d keys run again: %v", n, err)
		}
	}
}

// TestDeposedDuringApply: a leader deposed after its commit point keeps the commit (the next
// leader applies it) and reads a consistent state meanwhile.
func TestDeposedDuringApply(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	wantState := want(t, cli, "/ref/")
	ctx := context.Background()
	campaign := func() (*concurrency.Election, func() (string, int64, bool)) {
		sess, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sess.Close() })
		e := concurrency.NewElection(sess, "/deposed/election/")
		if err := e.Campaign(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		key, rev := e.Key(), e.Rev()
		return e, func() (string, int64, bool) { return key, rev, true }
	}
	elecA, fenceA := campaign()
	a := openDB(t, cli, "/deposed/", fenceA)
	seed(t, a)
	before := state(t, a)
	a.hooks.beforeApply = func(i int) error {
		if i == 5 {
			return elecA.Resign(ctx)
		}
		return nil
	}
	if err := a.Update(largeCommit); err != nil {
		t.Fatalf("Update past its commit point = %v, want nil (the commit is durable)", err)
	}
	if got := state(t, a); got != before {
		t.Errorf("the deposed leader reads part of its commit:\n%s\nwant\n%s", got, before)
	}
	if err := a.Update(func(kv.Tx) error { return nil }); !errors.Is(err, kv.ErrFenced) {
		t.Errorf("deposed leader's Update = %v, want ErrFenced", err)
	}
	_, fenceB := campaign()
	b := openDB(t, cli, "/deposed/", fenceB) // holds the fence: Open recovers
	if got := state(t, b); got != wantState {
		t.Errorf("new leader after recovery:\n%s\nwant\n%s", got, wantState)
	}
	if got := state(t, a); got != wantState {
		t.Errorf("deposed leader after the new leader recovered:\n%s\nwant\n%s", got, wantState)
	}
}

func TestRecoverRecords(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := context.Background()
	put := func(key, value string) op { return op{kind: opPut, key: key, val: []byte(value)} }
	cases := []struct {
		name    string
		records func(db *DB) // writes records as a crashed DB left them
		wantErr string       // "" for success
		want    string       // the value of data key "x" after recovery
	}{
		{"in order", func(db *DB) {
			db.mustRawRecord(t, 9, []op{put(db.root+"x", "2")})
			db.mustRawRecord(t, 5, []op{put(db.root+"x", "1")})
		}, "", "2"},
		{"cut off before its head", func(db *DB) {
			seq, _ := db.mustRecord(t, []op{put(db.root+"x", "1")})
			db.mustDelete(t, db.recordPrefix(seq)+walHead)
		}, "", ""},
		{"chunk missing", func(db *DB) {
			seq, _ := db.mustRecord(t, []op{put(db.root+"x", "1")})
			db.mustDelete(t, chunkKey(db.recordPrefix(seq), 0))
		}, "/00000000000000000", ""},
		{"damaged chunk", func(db *DB) {
			seq, _ := db.mustRecord(t, []op{put(db.root+"x", "1")})
			key := chunkKey(db.recordPrefix(seq), 0)
			resp, err := db.cli.Get(context.Background(), key)
			if err != nil || len(resp.Kvs) != 1 {
				t.Fatalf("read %s: %v", key, err)
			}
			chunk := resp.Kvs[0].Value
			chunk[len(chunk)/2] ^= 0xff // same length, damaged content
			db.mustPut(t, key, string(chunk))
		}, "decompress", ""},
		{"damaged head", func(db *DB) {
			seq, _ := db.mustRecord(t, []op{put(db.root+"x", "1")})
			db.mustPut(t, db.recordPrefix(seq)+walHead, "\xff")
		}, "/head: malformed head", ""},
		{"stray key", func(db *DB) { db.mustPut(t, db.walPrefix+"junk", "x") }, `"/rec/5/wal/junk"`, ""},
		{"operation outside the data", func(db *DB) {
			db.mustRecord(t, []op{put("/elsewhere", "1")})
		}, "outside the data", ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("/rec/%d/", i)
			tc.records(openDB(t, cli, prefix, nil))
			db, err := Open(ctx, Options{Client: cli, Prefix: prefix})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			resp, err := cli.Get(ctx, db.root+"x")
			if err != nil {
				t.Fatal(err)
			}
			if got := ""; len(resp.Kvs) > 0 && string(resp.Kvs[0].Value) != tc.want || len(resp.Kvs) == 0 && tc.want != got {
				t.Errorf("x = %v, want %q", resp.Kvs, tc.want)
			}
			if n := walKeys(t, cli, prefix); n != 0 {
				t.Errorf("%d write-ahead keys left", n)
			}
		})
	}
}

func (db *DB) mustRecord(t *testing.T, ops []op) (uint64, int64) {
	t.Helper()
	seq, rev, err := db.writeRecord(context.Background(), ops)
	if err != nil {
		t.Fatal(err)
	}
	return seq, rev
}

// mustRawRecord writes a whole record as writeRecord would, whatever else is in the log.
func (db *DB) mustRawRecord(t *testing.T, seq uint64, ops []op) {
	t.Helper()
	record := db.recordPrefix(seq)
	data := db.codec.encode(ops)
	db.mustPut(t, chunkKey(record, 0), string(data))
	db.mustPut(t, record+walHead, string(encodeHead(1, len(data))))
}

func (db *DB) mustPut(t *testing.T, key, value string) {
	t.Helper()
	if _, err := db.cli.Put(context.Background(), key, value); err != nil {
		t.Fatal(err)
	}
}

func (db *DB) mustDelete(t *testing.T, key string) {
	t.Helper()
	if _, err := db.cli.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ops := []op{
		{kind: opPut, key: "a\x00\xff", val: []byte{}},
		{kind: opPut, key: "b", val: bytes.Repeat([]byte("v"), 100000)},
		{kind: opDelete, key: "c"},
		{kind: opDeleteRange, key: "d", end: "e"},
	}
	got, err := c.decode(c.encode(ops))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ops) {
		t.Fatalf("%d operations back, want %d", len(got), len(ops))
	}
	for i := range ops {
		if got[i].kind != ops[i].kind || got[i].key != ops[i].key || got[i].end != ops[i].end || !bytes.Equal(got[i].val, ops[i].val) {
			t.Errorf("operation %d: got %+v, want %+v", i, got[i], ops[i])
		}
	}
}

// FuzzDecode: a damaged record is an error, never a panic.
func FuzzDecode(f *testing.F) {
	c, err := newCodec()
	if err != nil {
		f.Fatal(err)
	}
	defer c.close()
	f.Add(c.encode([]op{{kind: opPut, key: "k", val: []byte("v")}, {kind: opDeleteRange, key: "a", end: "b"}}))
	f.Add(c.enc.EncodeAll([]byte{walVersion, opPut, 5, 'k'}, nil))
	f.Add(c.enc.EncodeAll([]byte{walVersion, 9, 0}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = c.decode(data)
		_, _ = c.decode(c.enc.EncodeAll(data, nil))
		_, _, _ = decodeHead(data)
	})
}
