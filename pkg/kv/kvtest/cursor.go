package kvtest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// move is one cursor call and the key it must land on ("" for nil).
type move struct {
	op   string // First, Last, Seek, Next, Prev
	arg  string // Seek's argument
	want string
}

// do makes the move on c and reports a mismatch.
func (m move) do(c kv.Cursor, values map[string]string) error {
	var k, v []byte
	switch m.op {
	case "First":
		k, v = c.First()
	case "Last":
		k, v = c.Last()
	case "Seek":
		k, v = c.Seek([]byte(m.arg))
	case "Next":
		k, v = c.Next()
	case "Prev":
		k, v = c.Prev()
	default:
		return fmt.Errorf("unknown move %q", m.op)
	}
	if m.want == "" {
		if k != nil || v != nil {
			return fmt.Errorf("%s(%q) = %q, %q; want nil, nil", m.op, m.arg, k, v)
		}
		return nil
	}
	if string(k) != m.want || string(v) != values[m.want] {
		return fmt.Errorf("%s(%q) = %q, %q; want %q, %q", m.op, m.arg, k, v, m.want, values[m.want])
	}
	return nil
}

// testCursorMoves runs move sequences over a small bucket whose keys are committed, written in
// the same Update, or a mix with committed keys deleted in the Update, so that an engine that
// overlays a write set on stored keys is checked the same way as one that does not.
func testCursorMoves(t *testing.T, db kv.DB) {
	keys := map[string]string{"b": "vb", "d": "vd", "d\x00": "vd0", "f": "vf", "f\xff": "vfff"}
	cases := []struct {
		name  string
		moves []move
	}{
		{"forward", []move{{"First", "", "b"}, {"Next", "", "d"}, {"Next", "", "d\x00"},
			{"Next", "", "f"}, {"Next", "", "f\xff"}, {"Next", "", ""}}},
		{"backward", []move{{"Last", "", "f\xff"}, {"Prev", "", "f"}, {"Prev", "", "d\x00"},
			{"Prev", "", "d"}, {"Prev", "", "b"}, {"Prev", "", ""}}},
		{"first then prev", []move{{"First", "", "b"}, {"Prev", "", ""}}},
		{"last then next", []move{{"Last", "", "f\xff"}, {"Next", "", ""}}},
		{"turn around", []move{{"First", "", "b"}, {"Next", "", "d"}, {"Next", "", "d\x00"},
			{"Prev", "", "d"}, {"Next", "", "d\x00"}}},
		{"seek exact", []move{{"Seek", "d", "d"}, {"Next", "", "d\x00"}}},
		{"seek between", []move{{"Seek", "c", "d"}, {"Prev", "", "b"}}},
		{"seek 0x00 suffix", []move{{"Seek", "d\x00", "d\x00"}, {"Seek", "d\x00\x00", "f"}}},
		{"seek before first", []move{{"Seek", "\x00", "b"}, {"Prev", "", ""}}},
		{"seek 0xff suffix", []move{{"Seek", "f\x00", "f\xff"}, {"Seek", "f\xff\x00", ""}}},
		{"seek past last", []move{{"Seek", "g", ""}}},
		{"seek then last", []move{{"Seek", "c", "d"}, {"Last", "", "f\xff"}, {"First", "", "b"}}},
	}
	empty := []move{{"First", "", ""}, {"Last", "", ""}, {"Seek", "a", ""}}

	committed := map[string]string{}
	inTx := map[string]string{}
	for i, k := range sortedKeys(keys) {
		if i%2 == 0 {
			committed[k] = keys[k]
		} else {
			inTx[k] = keys[k]
		}
	}
	doomed := map[string]string{"a": "x", "c": "x", "d\x00\x00": "x", "g": "x", "\xff": "x"}
	update(t, db, func(tx kv.Tx) error {
		if _, err := tx.CreateBucketIfNotExists([]byte("empty")); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists([]byte("stored"))
		if err != nil {
			return err
		}
		if err := putAll(b, keys); err != nil {
			return err
		}
		if _, err := b.CreateBucket([]byte("e")); err != nil { // a sub-bucket among the keys
			return err
		}
		m, err := tx.CreateBucketIfNotExists([]byte("mixed"))
		if err != nil {
			return err
		}
		if err := putAll(m, committed); err != nil {
			return err
		}
		for k := range inTx {
			if err := m.Put([]byte(k), []byte("stale")); err != nil {
				return err
			}
		}
		return putAll(m, doomed)
	})
	run := func(t *testing.T, setup func(tx kv.Tx) (kv.Bucket, error), read bool) {
		t.Helper()
		for _, tc := range cases {
			fn := func(tx kv.Tx) error {
				b, err := setup(tx)
				if err != nil {
					return err
				}
				c := b.Cursor()
				for i, m := range tc.moves {
					if err := m.do(c, keys); err != nil {
						return fmt.Errorf("%s, move %d: %w", tc.name, i, err)
					}
				}
				return errStop // roll back whatever setup wrote
			}
			var err error
			if read {
				err = db.View(fn)
			} else {
				err = db.Update(fn)
			}
			if !errors.Is(err, errStop) {
				t.Error(err)
			}
		}
	}
	t.Run("committed", func(t *testing.T) {
		run(t, func(tx kv.Tx) (kv.Bucket, error) { return tx.Bucket([]byte("stored")), nil }, true)
	})
	t.Run("written in the Update", func(t *testing.T) {
		run(t, func(tx kv.Tx) (kv.Bucket, error) {
			b, err := tx.CreateBucketIfNotExists([]byte("fresh"))
			if err != nil {
				return nil, err
			}
			return b, putAll(b, keys)
		}, false)
	})
	t.Run("mixed", func(t *testing.T) {
		run(t, func(tx kv.Tx) (kv.Bucket, error) {
			b := tx.Bucket([]byte("mixed"))
			for k := range doomed {
				if err := b.Delete([]byte(k)); err != nil {
					return nil, err
				}
			}
			return b, putAll(b, inTx)
		}, false)
	})
	t.Run("empty", func(t *testing.T) {
		view(t, db, func(tx kv.Tx) error {
			c := tx.Bucket([]byte("empty")).Cursor()
			for _, m := range empty {
				if err := m.do(c, nil); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// testCursorPages walks a bucket larger than any engine's read page, in both directions and from
// seeks, with some keys changed in the Update.
func testCursorPages(t *testing.T, db kv.DB) {
	const n = 1200
	key := func(i int) string { return fmt.Sprintf("k%05d", i) }
	update(t, db, func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("pages"))
		if err != nil {
			return err
		}
		for i := 0; i < n; i += 2 { // even keys committed
			if err := b.Put([]byte(key(i)), []byte(key(i))); err != nil {
				return err
			}
		}
		return nil
	})
	var want []string // odd keys added in the Update, every tenth even key deleted
	for i := range n {
		if i%2 == 1 || i%10 != 0 {
			want = append(want, key(i))
		}
	}
	walk := func(tx kv.Tx) error {
		c := tx.Bucket([]byte("pages")).Cursor()
		var fwd, back []string
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(v) != string(k) {
				return fmt.Errorf("value of %q = %q", k, v)
			}
			fwd = append(fwd, string(k))
		}
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			back = append(back, string(k))
		}
		slices.Reverse(back)
		if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
			return fmt.Errorf("walked %d keys forward and %d back, want %d", len(fwd), len(back), len(want))
		}
		for _, i := range []int{0, 1, 255, 256, 257, 600, 1001, n - 1} {
			k, _ := c.Seek([]byte(key(i)))
			j := slices.IndexFunc(want, func(w string) bool { return w >= key(i) })
			if string(k) != want[j] {
				return fmt.Errorf("Seek(%s) = %q, want %q", key(i), k, want[j])
			}
			for step := 1; step <= 300 && j-step >= 0; step++ {
				if k, _ := c.Prev(); string(k) != want[j-step] {
					return fmt.Errorf("Seek(%s) then %d Prev = %q, want %q", key(i), step, k, want[j-step])
				}
			}
		}
		return nil
	}
	update(t, db, func(tx kv.Tx) error {
		b := tx.Bucket([]byte("pages"))
		for i := range n {
			var err error
			if i%2 == 1 {
				err = b.Put([]byte(key(i)), []byte(key(i)))
			} else if i%10 == 0 {
				err = b.Delete([]byte(key(i)))
			}
			if err != nil {
				return err
			}
		}
		return walk(tx)
	})
	view(t, db, walk)
}

// testCursorDelete deletes keys while iterating, across read pages: Next after Delete lands on
// the key after the deleted one.
func testCursorDelete(t *testing.T, db kv.DB) {
	const n = 700
	key := func(i int) []byte { return fmt.Appendf(nil, "%04d", i) }
	cases := []struct {
		name string
		del  func(i int) bool
	}{
		{"every other key", func(i int) bool { return i%2 == 0 }},
		{"every key", func(int) bool { return true }},
		{"runs of keys", func(i int) bool { return i%300 < 280 }},
	}
	for _, tc := range cases {
		bucket := []byte(tc.name)
		update(t, db, func(tx kv.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			for i := range n {
				if err := b.Put(key(i), key(i)); err != nil {
					return err
				}
			}
			_, err = b.CreateBucket([]byte("0100\x00")) // a sub-bucket among the keys
			return err
		})
		var kept []string
		for i := range n {
			if !tc.del(i) {
				kept = append(kept, string(key(i)))
			}
		}
		update(t, db, func(tx kv.Tx) error {
			b := tx.Bucket(bucket)
			c := b.Cursor()
			i := 0
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if string(k) != string(key(i)) {
					return fmt.Errorf("%s: visited %q, want %q", tc.name, k, key(i))
				}
				if tc.del(i) {
					if err := c.Delete(); err != nil {
						return err
					}
				}
				i++
			}
			if i != n {
				return fmt.Errorf("%s: visited %d keys, want %d", tc.name, i, n)
			}
			if got, err := keysOf(b); err != nil || !slices.Equal(got, kept) {
				return fmt.Errorf("%s: %d keys left in the Update, want %d (%v)", tc.name, len(got), len(kept), err)
			}
			return nil
		})
		view(t, db, func(tx kv.Tx) error {
			b := tx.Bucket(bucket)
			if got, err := keysOf(b); err != nil || !slices.Equal(got, kept) {
				return fmt.Errorf("%s: %d keys left after commit, want %d (%v)", tc.name, len(got), len(kept), err)
			}
			if b.Bucket([]byte("0100\x00")) == nil {
				return fmt.Errorf("%s: cursor deletes removed a sub-bucket", tc.name)
			}
			return nil
		})
	}
}

func testForEach(t *testing.T, db kv.DB) {
	kvs := map[string]string{"a": "1", "b": "2", "c": "3", "c\x00": "4"}
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "fe")
		if err != nil {
			return err
		}
		if _, err := b.CreateBucket([]byte("bb")); err != nil {
			return err
		}
		return putAll(b, kvs)
	})
	view(t, db, func(tx kv.Tx) error {
		b := tx.Bucket([]byte("fe"))
		var got []string
		if err := b.ForEach(func(k, v []byte) error {
			if kvs[string(k)] != string(v) {
				return fmt.Errorf("ForEach gave %q = %q", k, v)
			}
			got = append(got, string(k))
			return nil
		}); err != nil {
			return err
		}
		if want := sortedKeys(kvs); !slices.Equal(got, want) {
			return fmt.Errorf("ForEach keys = %q, want %q", got, want)
		}
		calls := 0
		err := b.ForEach(func(k, _ []byte) error {
			calls++
			if string(k) == "b" {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) || calls != 2 {
			return fmt.Errorf("ForEach stopping at b: %v after %d calls, want errStop after 2", err, calls)
		}
		return nil
	})
}
