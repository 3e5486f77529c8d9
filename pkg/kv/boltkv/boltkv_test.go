package boltkv_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
)

// These tests pin what the adapter adds to bbolt; the engine-neutral contract of kv is
// conformance_test.go's.

func openQuirkDB(t *testing.T) *boltkv.DB {
	t.Helper()
	db, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), &boltkv.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func walk(c kv.Cursor, first func() ([]byte, []byte), next func() ([]byte, []byte)) string {
	var keys []string
	for k, _ := first(); k != nil; k, _ = next() {
		keys = append(keys, string(k))
	}
	return strings.Join(keys, " ")
}

// bbolt's cursors and ForEach yield sub-buckets with nil values; kv's see keys only, and
// ForEachBucket lists the sub-buckets.
func TestSubBucketsAreNotKeys(t *testing.T) {
	db := openQuirkDB(t)
	mustDo(t, db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("top"))
		if err != nil {
			return err
		}
		for _, k := range []string{"a", "c", "e"} {
			if err := b.Put([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		for _, name := range []string{"0", "b", "d", "z"} {
			if _, err := b.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	}))
	mustDo(t, db.View(func(tx kv.Tx) error {
		b := tx.Bucket([]byte("top"))
		c := b.Cursor()
		if got := walk(c, c.First, c.Next); got != "a c e" {
			t.Errorf("forward = %q", got)
		}
		if got := walk(c, c.Last, c.Prev); got != "e c a" {
			t.Errorf("backward = %q", got)
		}
		if k, _ := c.Seek([]byte("b")); string(k) != "c" {
			t.Errorf("Seek(b) = %q, want c", k)
		}
		if k, _ := c.Seek([]byte("f")); k != nil {
			t.Errorf("Seek(f) = %q, want the end", k)
		}
		var each, subs []string
		mustDo(t, b.ForEach(func(k, v []byte) error { each = append(each, string(k)+"="+string(v)); return nil }))
		mustDo(t, b.ForEachBucket(func(k []byte) error { subs = append(subs, string(k)); return nil }))
		if got := strings.Join(each, " "); got != "a=va c=vc e=ve" {
			t.Errorf("ForEach = %q", got)
		}
		if got := strings.Join(subs, " "); got != "0 b d z" {
			t.Errorf("ForEachBucket = %q", got)
		}
		if n := b.KeyN(); n != 3 {
			t.Errorf("KeyN = %d, want 3", n)
		}
		if b.Get([]byte("b")) != nil {
			t.Error("Get of a sub-bucket's name returned a value")
		}
		return nil
	}))
}

// A nil value is stored as an empty one: Get returns it non-nil in the transaction that put it
// (bbolt alone returns nil there) and after, and cursors do not mistake it for a sub-bucket.
func TestNilValueIsEmpty(t *testing.T) {
	db := openQuirkDB(t)
	check := func(tx kv.Tx) {
		b := tx.Bucket([]byte("top"))
		if v := b.Get([]byte("k")); v == nil || len(v) != 0 {
			t.Errorf("Get = %#v, want a non-nil empty slice", v)
		}
		if k, v := b.Cursor().First(); string(k) != "k" || v == nil {
			t.Errorf("First = %q, %#v", k, v)
		}
		if n := b.KeyN(); n != 1 {
			t.Errorf("KeyN = %d", n)
		}
	}
	mustDo(t, db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("top"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte("k"), nil); err != nil {
			return err
		}
		check(tx)
		return nil
	}))
	mustDo(t, db.View(func(tx kv.Tx) error { check(tx); return nil }))
}

// Deleting under a cursor and moving on visits every key once, also where bbolt's own cursor would
// skip the key after a deleted one (its leaf already changed in the transaction, etcd-io/bbolt#146).
func TestCursorDeleteThenMove(t *testing.T) {
	db := openQuirkDB(t)
	keys := func(n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, fmt.Sprintf("k%03d", i))
		}
		return out
	}
	mustDo(t, db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("top"))
		if err != nil {
			return err
		}
		for _, k := range keys(300) {
			if err := b.Put([]byte(k), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	}))
	for _, dirty := range []bool{false, true} {
		t.Run(fmt.Sprintf("dirty=%v", dirty), func(t *testing.T) {
			errRollback := errors.New("rollback")
			err := db.Update(func(tx kv.Tx) error {
				b := tx.Bucket([]byte("top"))
				if dirty { // materialise every leaf, as earlier writes of a transaction do
					for _, k := range keys(300) {
						if err := b.Put([]byte(k), []byte("w")); err != nil {
							return err
						}
					}
				}
				var seen []string
				c := b.Cursor()
				for k, _ := c.First(); k != nil; k, _ = c.Next() {
					seen = append(seen, string(k))
					if err := c.Delete(); err != nil {
						return err
					}
					if err := c.Delete(); err != nil { // a second Delete without a move deletes nothing
						return err
					}
				}
				if got, want := strings.Join(seen, " "), strings.Join(keys(300), " "); got != want {
					t.Errorf("visited %d keys, want 300", len(seen))
				}
				if n := b.KeyN(); n != 0 {
					t.Errorf("%d keys left", n)
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
		})
	}
	mustDo(t, db.Update(func(tx kv.Tx) error {
		c := tx.Bucket([]byte("top")).Cursor()
		if k, _ := c.Seek([]byte("k100")); string(k) != "k100" {
			t.Fatalf("Seek = %q", k)
		}
		mustDo(t, c.Delete())
		if k, _ := c.Prev(); string(k) != "k099" {
			t.Errorf("Prev after Delete = %q, want k099", k)
		}
		c.Last()
		mustDo(t, c.Delete())
		if k, _ := c.Prev(); string(k) != "k298" {
			t.Errorf("Prev after deleting the last = %q, want k298", k)
		}
		return nil
	}))
}

// bbolt's errors carry kv's sentinels, and still bbolt's own.
func TestErrorsCarryKVSentinels(t *testing.T) {
	db := openQuirkDB(t)
	mustDo(t, db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("top"))
		if err != nil {
			return err
		}
		if _, err := b.CreateBucket([]byte("sub")); err != nil {
			return err
		}
		if _, err := b.CreateBucket([]byte("sub")); !errors.Is(err, kv.ErrBucketExists) {
			t.Errorf("CreateBucket twice: %v", err)
		}
		if err := b.DeleteBucket([]byte("none")); !errors.Is(err, kv.ErrBucketNotFound) {
			t.Errorf("DeleteBucket of none: %v", err)
		}
		if err := tx.DeleteBucket([]byte("none")); !errors.Is(err, kv.ErrBucketNotFound) {
			t.Errorf("Tx.DeleteBucket of none: %v", err)
		}
		if err := b.Put(bytes.Repeat([]byte("k"), bolt.MaxKeySize+1), nil); !errors.Is(err, kv.ErrTooLarge) {
			t.Errorf("Put of a huge key: %v", err)
		}
		return nil
	}))
	mustDo(t, db.View(func(tx kv.Tx) error {
		err := tx.Bucket([]byte("top")).Put([]byte("k"), []byte("v"))
		if !errors.Is(err, kv.ErrNotWritable) || !errors.Is(err, berrors.ErrTxNotWritable) {
			t.Errorf("Put in a read transaction: %v", err)
		}
		return nil
	}))
}

// Wrote is false until something changed, and in read transactions.
func TestWrote(t *testing.T) {
	db := openQuirkDB(t)
	mustDo(t, db.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("top"))
		return err
	}))
	mustDo(t, db.Update(func(tx kv.Tx) error {
		b := tx.Bucket([]byte("top"))
		_ = b.Get([]byte("k"))
		if err := b.Delete([]byte("absent")); err != nil {
			return err
		}
		if tx.Wrote() {
			t.Error("Wrote after reads and a delete of nothing")
		}
		if err := b.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		if !tx.Wrote() {
			t.Error("Wrote is false after a put")
		}
		return nil
	}))
	mustDo(t, db.View(func(tx kv.Tx) error {
		if tx.Wrote() || tx.Writable() {
			t.Error("a read transaction wrote or is writable")
		}
		return nil
	}))
}

// The adapter adds no allocation to bbolt's own for a bucket lookup, a Get or a Put: they are on
// the path of every page commit.
func TestNoAllocationsOfItsOwn(t *testing.T) {
	db := openQuirkDB(t)
	key, val := []byte("key"), []byte("value")
	mustDo(t, db.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("top"))
		if err != nil {
			return err
		}
		return b.Put(key, val)
	}))
	mustDo(t, db.Update(func(tx kv.Tx) error {
		btx := tx.(boltkv.Tx).Bolt()
		name := []byte("top")
		raw := testing.AllocsPerRun(100, func() {
			b := btx.Bucket(name)
			_ = b.Get(key)
			_ = b.Put(key, val)
		})
		wrapped := testing.AllocsPerRun(100, func() {
			b := tx.Bucket(name)
			_ = b.Get(key)
			_ = b.Put(key, val)
		})
		if wrapped > raw {
			t.Errorf("%.1f allocations through kv, %.1f with bbolt alone", wrapped, raw)
		}
		return nil
	}))
}
