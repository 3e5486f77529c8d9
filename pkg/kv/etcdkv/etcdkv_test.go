package etcdkv_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
	"github.com/wizfetch/wizfetch/pkg/kv/kvtest"
)

// TestConformance runs the kv contract's suite against an embedded etcd, each test under its own
// prefix.
func TestConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	var n atomic.Int32
	kvtest.Run(t, func(t *testing.T) kv.DB {
		return open(t, etcdkv.Options{Client: cli, Prefix: fmt.Sprintf("/kvtest/%03d/", n.Add(1))})
	})
}

// open opens a DB and closes it when t ends.
func open(t testing.TB, opts etcdkv.Options) *etcdkv.DB {
	t.Helper()
	db, err := etcdkv.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// leader is a won election: the fence of the replica that holds it, frozen at the win as a
// replica's own record of its leadership is.
type leader struct {
	sess *concurrency.Session
	elec *concurrency.Election
	key  string
	rev  int64
	// stepped is set when the replica learns it no longer leads (its campaign loop would).
	stepped atomic.Bool
}

func elect(t *testing.T, cli *clientv3.Client, pfx string) *leader {
	t.Helper()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	elec := concurrency.NewElection(sess, pfx)
	if err := elec.Campaign(context.Background(), "replica"); err != nil {
		t.Fatal(err)
	}
	return &leader{sess: sess, elec: elec, key: elec.Key(), rev: elec.Rev()}
}

// fence is the replica's fence as of its win, whatever has happened since.
func (l *leader) fence() (string, int64, bool) { return l.key, l.rev, true }

// knownFence is the fence of a replica that notices when it steps down.
func (l *leader) knownFence() (string, int64, bool) { return l.key, l.rev, !l.stepped.Load() }

func TestFencing(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		known bool // the replica's fence reports the loss
		// depose ends l's leadership; it may elect another leader under pfx.
		depose func(t *testing.T, l *leader, pfx string)
	}{
		{"session ended, another leads", false, func(t *testing.T, l *leader, pfx string) {
			if err := l.sess.Close(); err != nil {
				t.Fatal(err)
			}
			elect(t, cli, pfx)
		}},
		{"resigned, elected again under a new revision", false, func(t *testing.T, l *leader, _ string) {
			if err := l.elec.Resign(ctx); err != nil {
				t.Fatal(err)
			}
			if err := l.elec.Campaign(ctx, "again"); err != nil {
				t.Fatal(err)
			}
			if l.elec.Key() != l.key || l.elec.Rev() == l.rev {
				t.Fatalf("re-election: key %q rev %d, want same key, new revision", l.elec.Key(), l.elec.Rev())
			}
		}},
		{"fence reports no leadership", true, func(_ *testing.T, l *leader, _ string) { l.stepped.Store(true) }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("/fencing/%d/", i)
			l := elect(t, cli, prefix+"election/")
			fence := l.fence
			if tc.known {
				fence = l.knownFence
			}
			db := open(t, etcdkv.Options{Client: cli, Prefix: prefix, Fence: fence})
			put := func(tx kv.Tx, n int) error {
				b, err := tx.CreateBucketIfNotExists([]byte("b"))
				if err != nil {
					return err
				}
				for j := range n {
					if err := b.Put(fmt.Appendf(nil, "k%05d", j), bytes.Repeat([]byte{byte(j)}, 4096)); err != nil {
						return err
					}
				}
				return nil
			}
			if err := db.Update(func(tx kv.Tx) error { return put(tx, 1) }); err != nil {
				t.Fatalf("leader's Update: %v", err)
			}
			tc.depose(t, l, prefix+"election/")
			for _, n := range []int{2, 1000} { // one etcd transaction; a write-ahead record
				if err := db.Update(func(tx kv.Tx) error { return put(tx, n) }); !errors.Is(err, kv.ErrFenced) {
					t.Errorf("deposed leader's Update of %d keys = %v, want ErrFenced", n, err)
				}
			}
			reader := open(t, etcdkv.Options{Client: cli, Prefix: prefix})
			if err := reader.View(func(tx kv.Tx) error {
				if n := tx.Bucket([]byte("b")).KeyN(); n != 1 {
					return fmt.Errorf("%d keys after fenced commits, want the leader's 1", n)
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
			resp, err := cli.Get(ctx, prefix+"wal/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil || resp.Count != 0 {
				t.Errorf("write-ahead keys left by fenced commits: %v, %v", resp, err)
			}
		})
	}
}

func TestPostToLeader(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	l := elect(t, cli, "/post/election/")
	ldb := open(t, etcdkv.Options{Client: cli, Prefix: "/post/", Fence: l.fence})
	notLeader := func() (string, int64, bool) { return "", 0, false }
	standbys := []*etcdkv.DB{
		open(t, etcdkv.Options{Client: cli, Prefix: "/post/", Fence: notLeader}),
		open(t, etcdkv.Options{Client: cli, Prefix: "/post/", Fence: notLeader}),
	}
	if err := standbys[0].Post([]byte("queue"), []byte("x")); !errors.Is(err, kv.ErrBucketNotFound) {
		t.Fatalf("Post to a missing bucket = %v, want ErrBucketNotFound", err)
	}
	if err := ldb.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("queue"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const perReplica = 200
	var wg sync.WaitGroup
	errs := make(chan error, len(standbys)+1)
	for r, s := range standbys {
		wg.Go(func() {
			for i := range perReplica {
				if err := s.Post([]byte("queue"), binary.BigEndian.AppendUint32([]byte{byte(r)}, uint32(i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	if err := standbys[0].Update(func(tx kv.Tx) error {
		return tx.Bucket([]byte("queue")).Put([]byte("k"), []byte("v"))
	}); !errors.Is(err, kv.ErrFenced) {
		t.Errorf("standby's Update = %v, want ErrFenced", err)
	}
	posted := make(chan struct{})
	go func() { wg.Wait(); close(posted) }()

	// The leader drains the queue in its own transactions while the standbys post.
	next := make([]uint32, len(standbys)) // the next value expected from each standby
	drain := func() error {
		return ldb.Update(func(tx kv.Tx) error {
			c := tx.Bucket([]byte("queue")).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(k) != 24 || len(v) != 5 || int(v[0]) >= len(standbys) {
					return fmt.Errorf("posted key %x = %x: malformed", k, v)
				}
				r, i := v[0], binary.BigEndian.Uint32(v[1:])
				if i != next[r] {
					return fmt.Errorf("replica %d: got post %d, want %d (lost, doubled or out of order)", r, i, next[r])
				}
				next[r]++
				if err := c.Delete(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for done := false; !done; {
		select {
		case <-posted:
			done = true // one last drain after every post returned
		default:
		}
		if err := drain(); err != nil {
			t.Fatal(err)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for r, n := range next {
		if n != perReplica {
			t.Errorf("replica %d: %d posts received, want %d", r, n, perReplica)
		}
	}
	if err := ldb.View(func(tx kv.Tx) error {
		if n := tx.Bucket([]byte("queue")).KeyN(); n != 0 {
			return fmt.Errorf("%d posts left after draining", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdRestart: committed data survives a restart of etcd, and the DB goes on over the same
// client once etcd is back.
func TestEtcdRestart(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	db := open(t, etcdkv.Options{Client: cli, Prefix: "/restart/"})
	put := func(k string) error {
		return db.Update(func(tx kv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(k), []byte(k))
		})
	}
	if err := put("before"); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	if err := put("after"); err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx kv.Tx) error {
		b := tx.Bucket([]byte("b"))
		if string(b.Get([]byte("before"))) != "before" || string(b.Get([]byte("after"))) != "after" {
			return fmt.Errorf("after a restart: before=%q after=%q", b.Get([]byte("before")), b.Get([]byte("after")))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
