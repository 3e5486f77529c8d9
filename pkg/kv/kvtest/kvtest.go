// Package kvtest is the conformance suite of the kv contract: every engine (kv/boltkv, kv/etcdkv)
// runs the same tests, so package store can be written against kv alone. The suite checks what
// kv.go promises, not what one engine happens to do: byte order (keys holding 0x00 and 0xff),
// nested buckets, cursor moves at both ends and across an engine's pages, sequences, read-your-own
// writes, rollback, snapshot isolation of View, serialised Update, and transactions as large as a
// page commit (thousands of keys in one Update).
package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// Run runs the suite. open must return a new, empty DB for the calling test and arrange its
// closing with t.Cleanup; subtests run in parallel, each on its own DB.
func Run(t *testing.T, open func(t *testing.T) kv.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db kv.DB)
	}{
		{"TopLevelBuckets", testTopLevelBuckets},
		{"GetAbsentAndEmpty", testGetAbsentAndEmpty},
		{"ByteOrder", testByteOrder},
		{"NestedBuckets", testNestedBuckets},
		{"BucketNamesArePrefixes", testBucketNamesArePrefixes},
		{"CursorMoves", testCursorMoves},
		{"CursorPages", testCursorPages},
		{"CursorDelete", testCursorDelete},
		{"ForEach", testForEach},
		{"KeyN", testKeyN},
		{"Sequences", testSequences},
		{"ReadYourWrites", testReadYourWrites},
		{"RecreateBucketInOneTx", testRecreateBucketInOneTx},
		{"Rollback", testRollback},
		{"WriteInView", testWriteInView},
		{"Wrote", testWrote},
		{"SnapshotIsolation", testSnapshotIsolation},
		{"SerialUpdates", testSerialUpdates},
		{"TooLarge", testTooLarge},
		{"LargeTransaction", testLargeTransaction},
		{"DeleteLargeBucket", testDeleteLargeBucket},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// errStop is returned by test functions to roll a transaction back or to stop an iteration.
var errStop = errors.New("kvtest: stop")

// update runs fn in db.Update and fails t on an error.
func update(t *testing.T, db kv.DB, fn func(tx kv.Tx) error) {
	t.Helper()
	if err := db.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in db.View and fails t on an error.
func view(t *testing.T, db kv.DB, fn func(tx kv.Tx) error) {
	t.Helper()
	if err := db.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// bucketAt walks a path of bucket names from the top level; nil when one is missing.
func bucketAt(tx kv.Tx, path ...string) kv.Bucket {
	b := tx.Bucket([]byte(path[0]))
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket([]byte(name))
	}
	return b
}

// createPath creates (if needed) every bucket of path and returns the last.
func createPath(tx kv.Tx, path ...string) (kv.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists([]byte(path[0]))
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", path[0], err)
	}
	for _, name := range path[1:] {
		if b, err = b.CreateBucketIfNotExists([]byte(name)); err != nil {
			return nil, fmt.Errorf("create %q: %w", name, err)
		}
	}
	return b, nil
}

// putAll puts every key of kvs into b.
func putAll(b kv.Bucket, kvs map[string]string) error {
	for k, v := range kvs {
		if err := b.Put([]byte(k), []byte(v)); err != nil {
			return fmt.Errorf("put %q: %w", k, err)
		}
	}
	return nil
}

// keysOf lists b's keys with ForEach.
func keysOf(b kv.Bucket) ([]string, error) {
	var keys []string
	err := b.ForEach(func(k, _ []byte) error {
		keys = append(keys, string(k))
		return nil
	})
	return keys, err
}

// bucketNames lists b's sub-buckets, or the top-level buckets when b is nil.
func bucketNames(tx kv.Tx, b kv.Bucket) ([]string, error) {
	var names []string
	add := func(name []byte) error {
		names = append(names, string(name))
		return nil
	}
	if b == nil {
		return names, tx.ForEachBucket(add)
	}
	return names, b.ForEachBucket(add)
}

// dump renders everything in tx — buckets, keys, values and non-zero sequences — as lines in a
// fixed order, for comparing whole states.
func dump(tx kv.Tx) (string, error) {
	var sb strings.Builder
	var walk func(path string, b kv.Bucket) error
	walk = func(path string, b kv.Bucket) error {
		fmt.Fprintf(&sb, "bucket %s seq=%d keys=%d\n", path, b.Sequence(), b.KeyN())
		if err := b.ForEach(func(k, v []byte) error {
			fmt.Fprintf(&sb, "  %q = %q\n", k, v)
			return nil
		}); err != nil {
			return err
		}
		names, err := bucketNames(tx, b)
		if err != nil {
			return err
		}
		for _, name := range names {
			sub := b.Bucket([]byte(name))
			if sub == nil {
				return fmt.Errorf("ForEachBucket listed %q but Bucket returns nil", name)
			}
			if err := walk(fmt.Sprintf("%s/%q", path, name), sub); err != nil {
				return err
			}
		}
		return nil
	}
	names, err := bucketNames(tx, nil)
	if err != nil {
		return "", err
	}
	for _, name := range names {
		b := tx.Bucket([]byte(name))
		if b == nil {
			return "", fmt.Errorf("ForEachBucket listed %q but Bucket returns nil", name)
		}
		if err := walk(fmt.Sprintf("%q", name), b); err != nil {
			return "", err
		}
	}
	return sb.String(), nil
}

// dumpDB is dump in a View.
func dumpDB(t *testing.T, db kv.DB) string {
	t.Helper()
	var s string
	view(t, db, func(tx kv.Tx) error {
		var err error
		s, err = dump(tx)
		return err
	})
	return s
}

// value is a deterministic, incompressible value of n bytes for key i.
func value(i, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), uint64(n)))
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(r.Uint32())
	}
	return v
}

// sortedKeys returns the keys of m in byte order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Go compares strings bytewise, which is the kv order
	return keys
}

func testTopLevelBuckets(t *testing.T, db kv.DB) {
	view(t, db, func(tx kv.Tx) error {
		if b := tx.Bucket([]byte("a")); b != nil {
			return errors.New("tx.Bucket of a missing name is not nil")
		}
		names, err := bucketNames(tx, nil)
		if err != nil || len(names) != 0 {
			return fmt.Errorf("ForEachBucket of an empty DB = %q, %v; want none", names, err)
		}
		return nil
	})
	names := []string{"b", "a", "a\x00", "\xff", "a/b", "\x00"}
	update(t, db, func(tx kv.Tx) error {
		for _, name := range names {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucketIfNotExists([]byte("a"))
		if err != nil || b == nil {
			return fmt.Errorf("CreateBucketIfNotExists of an existing bucket = %v, %v", b, err)
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	want := slices.Clone(names)
	slices.Sort(want)
	view(t, db, func(tx kv.Tx) error {
		got, err := bucketNames(tx, nil)
		if err != nil || !slices.Equal(got, want) {
			return fmt.Errorf("ForEachBucket = %q, %v; want %q", got, err, want)
		}
		if v := tx.Bucket([]byte("a")).Get([]byte("k")); string(v) != "v" {
			return fmt.Errorf("a/k = %q, want v", v)
		}
		if err := tx.ForEachBucket(func([]byte) error { return errStop }); !errors.Is(err, errStop) {
			return fmt.Errorf("ForEachBucket returned %v, want fn's error", err)
		}
		return nil
	})
	update(t, db, func(tx kv.Tx) error {
		if err := tx.DeleteBucket([]byte("a")); err != nil {
			return err
		}
		if err := tx.DeleteBucket([]byte("missing")); !errors.Is(err, kv.ErrBucketNotFound) {
			return fmt.Errorf("DeleteBucket(missing) = %v, want ErrBucketNotFound", err)
		}
		return nil
	})
	view(t, db, func(tx kv.Tx) error {
		if tx.Bucket([]byte("a")) != nil {
			return errors.New("deleted bucket a still there")
		}
		if tx.Bucket([]byte("a\x00")) == nil || tx.Bucket([]byte("a/b")) == nil {
			return errors.New("deleting a took a\\x00 or a/b with it")
		}
		return nil
	})
}

func testGetAbsentAndEmpty(t *testing.T, db kv.DB) {
	check := func(b kv.Bucket, when string) error {
		if v := b.Get([]byte("absent")); v != nil {
			return fmt.Errorf("%s: Get(absent) = %q, want nil", when, v)
		}
		for _, k := range []string{"empty", "nil"} {
			if v := b.Get([]byte(k)); v == nil || len(v) != 0 {
				return fmt.Errorf("%s: Get(%s) = %#v, want a non-nil empty slice", when, k, v)
			}
		}
		if v := b.Get([]byte("x")); string(v) != "1" {
			return fmt.Errorf("%s: Get(x) = %q, want 1", when, v)
		}
		return nil
	}
	update(t, db, func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte("empty"), []byte{}); err != nil {
			return err
		}
		if err := b.Put([]byte("nil"), nil); err != nil {
			return err
		}
		if err := b.Put([]byte("x"), []byte("1")); err != nil {
			return err
		}
		if err := b.Put(nil, []byte("v")); err == nil {
			return errors.New("a Put with an empty key succeeded")
		}
		if err := b.Delete([]byte("never-there")); err != nil {
			return fmt.Errorf("deleting an absent key: %v", err)
		}
		return check(b, "in the Update")
	})
	view(t, db, func(tx kv.Tx) error { return check(tx.Bucket([]byte("b")), "after commit") })
}

func testByteOrder(t *testing.T, db kv.DB) {
	keys := []string{
		"\x00", "\x00\x00", "\x00\xff", "\x01", "a", "a\x00", "a\x00\x00", "a\x00b", "a\x01",
		"a/", "a/b", "aa", "a\xff", "a\xff\xff", "b", "\xfe", "\xff", "\xff\x00", "\xff\xff",
		"\xff\xff\xff",
	}
	shuffled := slices.Clone(keys)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) {
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	})
	want := slices.Clone(keys)
	slices.SortFunc(want, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) })
	check := func(b kv.Bucket, when string) error {
		got, err := keysOf(b)
		if err != nil || !slices.Equal(got, want) {
			return fmt.Errorf("%s: ForEach order = %q, %v; want %q", when, got, err, want)
		}
		var back []string
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if string(v) != "v"+string(k) {
				return fmt.Errorf("%s: cursor value of %q = %q", when, k, v)
			}
			back = append(back, string(k))
		}
		slices.Reverse(back)
		if !slices.Equal(back, want) {
			return fmt.Errorf("%s: Last/Prev order = %q; want reversed %q", when, back, want)
		}
		return nil
	}
	update(t, db, func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("order"))
		if err != nil {
			return err
		}
		for _, k := range shuffled {
			if err := b.Put([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return check(b, "in the Update")
	})
	view(t, db, func(tx kv.Tx) error { return check(tx.Bucket([]byte("order")), "after commit") })
}
