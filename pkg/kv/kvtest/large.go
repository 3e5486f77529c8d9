package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// testTooLarge checks that a key or value an engine refuses is refused with ErrTooLarge at Put,
// and that one it takes reads back whole.
func testTooLarge(t *testing.T, db kv.DB) {
	cases := []struct {
		name       string
		key, value []byte
	}{
		{"40 KiB key", bytes.Repeat([]byte("k"), 40<<10), []byte("v")},
		{"4 MiB value", []byte("big"), value(1, 4<<20)},
	}
	for _, tc := range cases {
		var took bool
		update(t, db, func(tx kv.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("tl"))
			if err != nil {
				return err
			}
			err = b.Put(tc.key, tc.value)
			if err != nil && !errors.Is(err, kv.ErrTooLarge) {
				return fmt.Errorf("%s: Put = %v, want nil or ErrTooLarge", tc.name, err)
			}
			took = err == nil
			return b.Put([]byte("after-"+tc.name), []byte("ok"))
		})
		view(t, db, func(tx kv.Tx) error {
			b := tx.Bucket([]byte("tl"))
			if got := b.Get(tc.key); took && !bytes.Equal(got, tc.value) || !took && got != nil {
				return fmt.Errorf("%s: taken %v, reads back %d bytes", tc.name, took, len(got))
			}
			if got := b.Get([]byte("after-" + tc.name)); string(got) != "ok" {
				return fmt.Errorf("%s: the rest of the Update was not committed", tc.name)
			}
			return nil
		})
	}
}

// testLargeTransaction commits what a page commit of 200 issues with several sinks amounts to:
// thousands of 4 KiB values in one Update, all or nothing.
func testLargeTransaction(t *testing.T, db kv.DB) {
	const n, size = 3000, 4096
	key := func(i int) []byte { return fmt.Appendf(nil, "doc-%05d", i) }
	start := time.Now()
	update(t, db, func(tx kv.Tx) error {
		docs, err := createPath(tx, "docs")
		if err != nil {
			return err
		}
		idx, err := createPath(tx, "index")
		if err != nil {
			return err
		}
		for i := range n {
			if err := docs.Put(key(i), value(i, size)); err != nil {
				return err
			}
			if err := idx.Put(key(i), []byte("x")); err != nil {
				return err
			}
		}
		if err := idx.SetSequence(n); err != nil {
			return err
		}
		if docs.KeyN() != n {
			return fmt.Errorf("KeyN in the Update = %d, want %d", docs.KeyN(), n)
		}
		return nil
	})
	t.Logf("committed %d × %d B in %v", n, size, time.Since(start))
	check := func(tx kv.Tx) error {
		docs := tx.Bucket([]byte("docs"))
		c := docs.Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if !bytes.Equal(k, key(i)) || !bytes.Equal(v, value(i, size)) {
				return fmt.Errorf("key %d: got %q (%d B), want %q", i, k, len(v), key(i))
			}
			i++
		}
		if i != n || docs.KeyN() != n || tx.Bucket([]byte("index")).KeyN() != n {
			return fmt.Errorf("%d docs read, KeyN %d, index KeyN %d; want %d", i, docs.KeyN(),
				tx.Bucket([]byte("index")).KeyN(), n)
		}
		return nil
	}
	view(t, db, check)
	// Rewrite half the documents, delete the index: also one Update.
	update(t, db, func(tx kv.Tx) error {
		docs := tx.Bucket([]byte("docs"))
		for i := 0; i < n; i += 2 {
			if err := docs.Put(key(i), value(i+n, size)); err != nil {
				return err
			}
		}
		idx := tx.Bucket([]byte("index"))
		for i := range n {
			if err := idx.Delete(key(i)); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, db, func(tx kv.Tx) error {
		if got := tx.Bucket([]byte("index")).KeyN(); got != 0 {
			return fmt.Errorf("index keeps %d keys after deleting all", got)
		}
		docs := tx.Bucket([]byte("docs"))
		for _, i := range []int{0, 1, n - 2, n - 1} {
			want := value(i, size)
			if i%2 == 0 {
				want = value(i+n, size)
			}
			if !bytes.Equal(docs.Get(key(i)), want) {
				return fmt.Errorf("doc %d has the wrong value after the rewrite", i)
			}
		}
		return nil
	})
}
