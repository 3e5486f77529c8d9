package kvtest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

func testNestedBuckets(t *testing.T, db kv.DB) {
	subs := []string{"x", "a/b", "\x00", "\xff", "k1\x00"} // "k1\x00" sorts among the keys
	update(t, db, func(tx kv.Tx) error {
		top, err := tx.CreateBucketIfNotExists([]byte("top"))
		if err != nil {
			return err
		}
		if err := putAll(top, map[string]string{"k1": "top1", "k2": "top2"}); err != nil {
			return err
		}
		for _, name := range subs {
			sub, err := top.CreateBucket([]byte(name))
			if err != nil {
				return fmt.Errorf("CreateBucket(%q): %w", name, err)
			}
			if err := sub.Put([]byte("k1"), []byte("in "+name)); err != nil {
				return err
			}
		}
		if _, err := top.CreateBucket([]byte("x")); !errors.Is(err, kv.ErrBucketExists) {
			return fmt.Errorf("CreateBucket of an existing bucket = %v, want ErrBucketExists", err)
		}
		if err := top.DeleteBucket([]byte("missing")); !errors.Is(err, kv.ErrBucketNotFound) {
			return fmt.Errorf("DeleteBucket(missing) = %v, want ErrBucketNotFound", err)
		}
		deep, err := createPath(tx, "top", "x", "y", "z")
		if err != nil {
			return err
		}
		return deep.Put([]byte("deep"), []byte("down"))
	})
	wantSubs := slices.Clone(subs)
	slices.Sort(wantSubs)
	view(t, db, func(tx kv.Tx) error {
		top := tx.Bucket([]byte("top"))
		keys, err := keysOf(top)
		if err != nil || !slices.Equal(keys, []string{"k1", "k2"}) {
			return fmt.Errorf("top's keys = %q, %v; want [k1 k2] (no sub-buckets)", keys, err)
		}
		if k, _ := top.Cursor().Last(); string(k) != "k2" {
			return fmt.Errorf("top's cursor Last = %q, want k2 (no sub-buckets)", k)
		}
		names, err := bucketNames(tx, top)
		if err != nil || !slices.Equal(names, wantSubs) {
			return fmt.Errorf("top's sub-buckets = %q, %v; want %q", names, err, wantSubs)
		}
		for _, name := range subs {
			if v := top.Bucket([]byte(name)).Get([]byte("k1")); string(v) != "in "+name {
				return fmt.Errorf("top/%q/k1 = %q", name, v)
			}
		}
		if v := top.Get([]byte("k1")); string(v) != "top1" {
			return fmt.Errorf("top/k1 = %q, want top1", v)
		}
		if top.Bucket([]byte("k2")) != nil || top.Bucket([]byte("missing")) != nil {
			return errors.New("b.Bucket of a key or of a missing name is not nil")
		}
		if v := bucketAt(tx, "top", "x", "y", "z").Get([]byte("deep")); string(v) != "down" {
			return fmt.Errorf("top/x/y/z/deep = %q", v)
		}
		if tx.Bucket([]byte("x")) != nil {
			return errors.New("a sub-bucket shows at the top level")
		}
		return nil
	})
	update(t, db, func(tx kv.Tx) error { return tx.Bucket([]byte("top")).DeleteBucket([]byte("x")) })
	view(t, db, func(tx kv.Tx) error {
		top := tx.Bucket([]byte("top"))
		if top.Bucket([]byte("x")) != nil {
			return errors.New("deleted sub-bucket x still there")
		}
		names, err := bucketNames(tx, top)
		want := slices.DeleteFunc(slices.Clone(wantSubs), func(s string) bool { return s == "x" })
		if err != nil || !slices.Equal(names, want) {
			return fmt.Errorf("after delete, sub-buckets = %q, %v; want %q", names, err, want)
		}
		return nil
	})
	update(t, db, func(tx kv.Tx) error {
		x, err := tx.Bucket([]byte("top")).CreateBucket([]byte("x"))
		if err != nil {
			return err
		}
		names, err := bucketNames(tx, x)
		if err != nil || len(names) != 0 || x.KeyN() != 0 || x.Sequence() != 0 {
			return fmt.Errorf("recreated bucket not empty: subs %q, %d keys, seq %d, %v",
				names, x.KeyN(), x.Sequence(), err)
		}
		return nil
	})
}

// testBucketNamesArePrefixes checks that buckets whose names are prefixes of one another, or
// differ only by 0x00 or 0xff bytes, keep their keys apart.
func testBucketNamesArePrefixes(t *testing.T, db kv.DB) {
	names := []string{"a", "a\x00", "a\x00\x00", "a\x01", "ab", "a\xff", "a/"}
	update(t, db, func(tx kv.Tx) error {
		for _, top := range names {
			b, err := tx.CreateBucketIfNotExists([]byte(top))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("k"), []byte(top)); err != nil {
				return err
			}
			for _, sub := range names {
				s, err := b.CreateBucket([]byte(sub))
				if err != nil {
					return err
				}
				if err := s.Put([]byte(sub), []byte(top+"|"+sub)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	check := func(tx kv.Tx, deleted string) error {
		for _, top := range names {
			b := tx.Bucket([]byte(top))
			if top == deleted {
				if b != nil {
					return fmt.Errorf("deleted %q still there", top)
				}
				continue
			}
			if keys, err := keysOf(b); err != nil || !slices.Equal(keys, []string{"k"}) {
				return fmt.Errorf("%q keys = %q, %v; want [k]", top, keys, err)
			}
			for _, sub := range names {
				keys, err := keysOf(b.Bucket([]byte(sub)))
				if err != nil || !slices.Equal(keys, []string{sub}) {
					return fmt.Errorf("%q/%q keys = %q, %v; want [%q]", top, sub, keys, err, sub)
				}
			}
		}
		return nil
	}
	view(t, db, func(tx kv.Tx) error { return check(tx, "") })
	update(t, db, func(tx kv.Tx) error { return tx.DeleteBucket([]byte("a\x00")) })
	view(t, db, func(tx kv.Tx) error { return check(tx, "a\x00") })
}

// testRecreateBucketInOneTx deletes a bucket and creates it again in one Update: the old keys and
// sub-buckets must be gone, the new ones there.
func testRecreateBucketInOneTx(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "r", "inner")
		if err != nil {
			return err
		}
		if err := putAll(b, map[string]string{"a": "old", "c": "old", "e": "old"}); err != nil {
			return err
		}
		if _, err := b.CreateBucket([]byte("old-sub")); err != nil {
			return err
		}
		if err := b.SetSequence(7); err != nil {
			return err
		}
		sib, err := createPath(tx, "r", "inner2")
		if err != nil {
			return err
		}
		return sib.Put([]byte("a"), []byte("sibling"))
	})
	check := func(tx kv.Tx, when string) error {
		b := bucketAt(tx, "r", "inner")
		keys, err := keysOf(b)
		if err != nil || !slices.Equal(keys, []string{"b", "c"}) {
			return fmt.Errorf("%s: keys = %q, %v; want [b c]", when, keys, err)
		}
		if v := b.Get([]byte("c")); string(v) != "new" {
			return fmt.Errorf("%s: c = %q, want new", when, v)
		}
		if v := b.Get([]byte("a")); v != nil {
			return fmt.Errorf("%s: old key a = %q, want gone", when, v)
		}
		names, err := bucketNames(tx, b)
		if err != nil || !slices.Equal(names, []string{"new-sub"}) {
			return fmt.Errorf("%s: sub-buckets = %q, %v; want [new-sub]", when, names, err)
		}
		if b.Sequence() != 0 || b.KeyN() != 2 {
			return fmt.Errorf("%s: sequence %d, KeyN %d; want 0, 2", when, b.Sequence(), b.KeyN())
		}
		if k, _ := b.Cursor().Seek([]byte("a")); string(k) != "b" {
			return fmt.Errorf("%s: Seek(a) = %q, want b", when, k)
		}
		if v := bucketAt(tx, "r", "inner2").Get([]byte("a")); string(v) != "sibling" {
			return fmt.Errorf("%s: sibling's a = %q", when, v)
		}
		return nil
	}
	update(t, db, func(tx kv.Tx) error {
		r := tx.Bucket([]byte("r"))
		if err := r.DeleteBucket([]byte("inner")); err != nil {
			return err
		}
		b, err := r.CreateBucket([]byte("inner"))
		if err != nil {
			return err
		}
		if err := putAll(b, map[string]string{"b": "new", "c": "new"}); err != nil {
			return err
		}
		if _, err := b.CreateBucket([]byte("new-sub")); err != nil {
			return err
		}
		return check(tx, "in the Update")
	})
	view(t, db, func(tx kv.Tx) error { return check(tx, "after commit") })
}

func testDeleteLargeBucket(t *testing.T, db kv.DB) {
	const n = 5000
	update(t, db, func(tx kv.Tx) error {
		for _, name := range []string{"big", "big\x00", "bigger"} {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("keep"), []byte(name)); err != nil {
				return err
			}
		}
		b := tx.Bucket([]byte("big"))
		for i := range n {
			if err := b.Put(fmt.Appendf(nil, "key-%06d", i), value(i, 64)); err != nil {
				return err
			}
		}
		sub, err := b.CreateBucket([]byte("sub"))
		if err != nil {
			return err
		}
		for i := range 1000 {
			if err := sub.Put(fmt.Appendf(nil, "sub-%06d", i), value(i, 64)); err != nil {
				return err
			}
		}
		_, err = b.NextSequence()
		return err
	})
	update(t, db, func(tx kv.Tx) error {
		if err := tx.DeleteBucket([]byte("big")); err != nil {
			return err
		}
		if tx.Bucket([]byte("big")) != nil {
			return errors.New("deleted bucket still visible in its Update")
		}
		return nil
	})
	view(t, db, func(tx kv.Tx) error {
		if tx.Bucket([]byte("big")) != nil {
			return errors.New("deleted bucket still there")
		}
		for _, name := range []string{"big\x00", "bigger"} {
			if v := tx.Bucket([]byte(name)).Get([]byte("keep")); string(v) != name {
				return fmt.Errorf("sibling %q lost its key: %q", name, v)
			}
		}
		return nil
	})
	update(t, db, func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("big"))
		if err != nil {
			return err
		}
		names, err := bucketNames(tx, b)
		if k, _ := b.Cursor().First(); k != nil || b.KeyN() != 0 || len(names) != 0 || err != nil || b.Sequence() != 0 {
			return fmt.Errorf("recreated bucket not empty: first %q, %d keys, subs %q, seq %d, %v",
				k, b.KeyN(), names, b.Sequence(), err)
		}
		return nil
	})
}

func testSequences(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		a, err := createPath(tx, "a")
		if err != nil {
			return err
		}
		if a.Sequence() != 0 {
			return fmt.Errorf("new bucket's Sequence = %d, want 0", a.Sequence())
		}
		for want := uint64(1); want <= 3; want++ {
			got, err := a.NextSequence()
			if err != nil || got != want {
				return fmt.Errorf("NextSequence = %d, %v; want %d", got, err, want)
			}
		}
		if a.Sequence() != 3 {
			return fmt.Errorf("sequence = %d after three NextSequence, want 3", a.Sequence())
		}
		sub, err := createPath(tx, "a", "sub")
		if err != nil {
			return err
		}
		if sub.Sequence() != 0 {
			return fmt.Errorf("sub-bucket shares its parent's sequence: %d", sub.Sequence())
		}
		return sub.SetSequence(1 << 40)
	})
	view(t, db, func(tx kv.Tx) error {
		if got := bucketAt(tx, "a").Sequence(); got != 3 {
			return fmt.Errorf("committed sequence = %d, want 3", got)
		}
		if got := bucketAt(tx, "a", "sub").Sequence(); got != 1<<40 {
			return fmt.Errorf("committed sub sequence = %d, want 2^40", got)
		}
		return nil
	})
	update(t, db, func(tx kv.Tx) error {
		a := bucketAt(tx, "a")
		if got, err := a.NextSequence(); err != nil || got != 4 {
			return fmt.Errorf("NextSequence in a later Update = %d, %v; want 4", got, err)
		}
		if err := a.SetSequence(100); err != nil {
			return err
		}
		if got, err := a.NextSequence(); err != nil || got != 101 {
			return fmt.Errorf("NextSequence after SetSequence(100) = %d, %v; want 101", got, err)
		}
		return nil
	})
	err := db.Update(func(tx kv.Tx) error {
		if _, err := bucketAt(tx, "a").NextSequence(); err != nil {
			return err
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Update = %v, want errStop", err)
	}
	view(t, db, func(tx kv.Tx) error {
		if got := bucketAt(tx, "a").Sequence(); got != 101 {
			return fmt.Errorf("sequence after a rolled-back NextSequence = %d, want 101", got)
		}
		return nil
	})
}

func testKeyN(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "n")
		if err != nil {
			return err
		}
		if b.KeyN() != 0 {
			return fmt.Errorf("KeyN of a new bucket = %d", b.KeyN())
		}
		for i := range 300 {
			if err := b.Put(fmt.Appendf(nil, "%04d", i), []byte("v")); err != nil {
				return err
			}
		}
		for _, name := range []string{"s1", "s2"} {
			if _, err := b.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		if b.KeyN() != 300 {
			return fmt.Errorf("KeyN in the Update = %d, want 300 (sub-buckets not counted)", b.KeyN())
		}
		return nil
	})
	update(t, db, func(tx kv.Tx) error {
		b := tx.Bucket([]byte("n"))
		if b.KeyN() != 300 {
			return fmt.Errorf("committed KeyN = %d, want 300", b.KeyN())
		}
		for _, op := range []func() error{
			func() error { return b.Put([]byte("0000"), []byte("overwritten")) },
			func() error { return b.Put([]byte("new"), []byte("v")) },
			func() error { return b.Delete([]byte("0001")) },
			func() error { return b.Delete([]byte("0002")) },
			func() error { return b.Delete([]byte("absent")) },
		} {
			if err := op(); err != nil {
				return err
			}
		}
		if b.KeyN() != 299 {
			return fmt.Errorf("KeyN after +1 -2 = %d, want 299", b.KeyN())
		}
		return nil
	})
	view(t, db, func(tx kv.Tx) error {
		if got := tx.Bucket([]byte("n")).KeyN(); got != 299 {
			return fmt.Errorf("committed KeyN = %d, want 299", got)
		}
		return nil
	})
}
