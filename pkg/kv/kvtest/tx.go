package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

func testReadYourWrites(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "ryw")
		if err != nil {
			return err
		}
		return putAll(b, map[string]string{"keep": "1", "change": "old", "drop": "x"})
	})
	update(t, db, func(tx kv.Tx) error {
		b := tx.Bucket([]byte("ryw"))
		steps := []struct {
			name string
			do   func() error
			key  string
			want []byte // nil: absent
		}{
			{"put new", func() error { return b.Put([]byte("new"), []byte("n")) }, "new", []byte("n")},
			{"overwrite", func() error { return b.Put([]byte("change"), []byte("new")) }, "change", []byte("new")},
			{"delete stored", func() error { return b.Delete([]byte("drop")) }, "drop", nil},
			{"delete new", func() error { return b.Delete([]byte("new")) }, "new", nil},
			{"put deleted again", func() error { return b.Put([]byte("drop"), []byte("back")) }, "drop", []byte("back")},
			{"untouched", func() error { return nil }, "keep", []byte("1")},
		}
		for _, s := range steps {
			if err := s.do(); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if got := b.Get([]byte(s.key)); !bytes.Equal(got, s.want) || (got == nil) != (s.want == nil) {
				return fmt.Errorf("%s: Get(%s) = %q, want %q", s.name, s.key, got, s.want)
			}
		}
		if _, err := tx.CreateBucketIfNotExists([]byte("made")); err != nil {
			return err
		}
		if tx.Bucket([]byte("made")) == nil {
			return errors.New("bucket created in this Update not visible")
		}
		names, err := bucketNames(tx, nil)
		if err != nil || !slices.Equal(names, []string{"made", "ryw"}) {
			return fmt.Errorf("ForEachBucket = %q, %v; want [made ryw]", names, err)
		}
		if err := tx.DeleteBucket([]byte("made")); err != nil {
			return err
		}
		if tx.Bucket([]byte("made")) != nil {
			return errors.New("bucket deleted in this Update still visible")
		}
		return nil
	})
	view(t, db, func(tx kv.Tx) error {
		b := tx.Bucket([]byte("ryw"))
		keys, err := keysOf(b)
		if err != nil || !slices.Equal(keys, []string{"change", "drop", "keep"}) {
			return fmt.Errorf("committed keys = %q, %v", keys, err)
		}
		if string(b.Get([]byte("drop"))) != "back" || string(b.Get([]byte("change"))) != "new" {
			return errors.New("committed values wrong")
		}
		if tx.Bucket([]byte("made")) != nil {
			return errors.New("bucket created and deleted in one Update exists")
		}
		return nil
	})
}

// testRollback checks that an Update whose fn fails writes nothing, whatever it did, and returns
// fn's error.
func testRollback(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "rb", "sub")
		if err != nil {
			return err
		}
		if err := putAll(b, map[string]string{"a": "1", "b": "2"}); err != nil {
			return err
		}
		if err := b.SetSequence(5); err != nil {
			return err
		}
		_, err = createPath(tx, "other")
		return err
	})
	before := dumpDB(t, db)
	cases := []struct {
		name string
		fn   func(tx kv.Tx) error
	}{
		{"put", func(tx kv.Tx) error { return bucketAt(tx, "rb", "sub").Put([]byte("c"), []byte("3")) }},
		{"overwrite", func(tx kv.Tx) error { return bucketAt(tx, "rb", "sub").Put([]byte("a"), []byte("9")) }},
		{"delete", func(tx kv.Tx) error { return bucketAt(tx, "rb", "sub").Delete([]byte("a")) }},
		{"cursor delete", func(tx kv.Tx) error {
			c := bucketAt(tx, "rb", "sub").Cursor()
			c.First()
			return c.Delete()
		}},
		{"create top bucket", func(tx kv.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte("new"))
			return err
		}},
		{"delete top bucket", func(tx kv.Tx) error { return tx.DeleteBucket([]byte("rb")) }},
		{"create sub-bucket", func(tx kv.Tx) error {
			_, err := bucketAt(tx, "rb").CreateBucket([]byte("new"))
			return err
		}},
		{"delete sub-bucket", func(tx kv.Tx) error { return bucketAt(tx, "rb").DeleteBucket([]byte("sub")) }},
		{"set sequence", func(tx kv.Tx) error { return bucketAt(tx, "rb", "sub").SetSequence(99) }},
		{"next sequence", func(tx kv.Tx) error {
			_, err := bucketAt(tx, "rb", "sub").NextSequence()
			return err
		}},
		{"recreate bucket", func(tx kv.Tx) error {
			if err := tx.DeleteBucket([]byte("rb")); err != nil {
				return err
			}
			b, err := createPath(tx, "rb", "sub")
			if err != nil {
				return err
			}
			return b.Put([]byte("z"), []byte("z"))
		}},
		{"many puts", func(tx kv.Tx) error {
			b := bucketAt(tx, "other")
			for i := range 3000 {
				if err := b.Put(fmt.Appendf(nil, "%05d", i), value(i, 4096)); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, tc := range cases {
		err := db.Update(func(tx kv.Tx) error {
			if err := tc.fn(tx); err != nil {
				return fmt.Errorf("%s: %w", tc.name, err)
			}
			return fmt.Errorf("roll back %s: %w", tc.name, errStop)
		})
		if !errors.Is(err, errStop) {
			t.Errorf("%s: Update = %v, want fn's error", tc.name, err)
		}
		if after := dumpDB(t, db); after != before {
			t.Errorf("%s: rolled-back Update changed the store:\nbefore:\n%s\nafter:\n%s", tc.name, before, after)
		}
	}
}

func testWriteInView(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "ro", "sub")
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	before := dumpDB(t, db)
	cases := []struct {
		name string
		fn   func(tx kv.Tx) error
	}{
		{"put", func(tx kv.Tx) error { return bucketAt(tx, "ro").Put([]byte("k"), []byte("v")) }},
		{"delete", func(tx kv.Tx) error { return bucketAt(tx, "ro", "sub").Delete([]byte("k")) }},
		{"cursor delete", func(tx kv.Tx) error {
			c := bucketAt(tx, "ro", "sub").Cursor()
			c.First()
			return c.Delete()
		}},
		{"create top bucket", func(tx kv.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte("new"))
			return err
		}},
		{"create existing top bucket", func(tx kv.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte("ro"))
			return err
		}},
		{"delete top bucket", func(tx kv.Tx) error { return tx.DeleteBucket([]byte("ro")) }},
		{"create sub-bucket", func(tx kv.Tx) error {
			_, err := bucketAt(tx, "ro").CreateBucket([]byte("new"))
			return err
		}},
		{"create sub-bucket if not exists", func(tx kv.Tx) error {
			_, err := bucketAt(tx, "ro").CreateBucketIfNotExists([]byte("new"))
			return err
		}},
		{"delete sub-bucket", func(tx kv.Tx) error { return bucketAt(tx, "ro").DeleteBucket([]byte("sub")) }},
		{"next sequence", func(tx kv.Tx) error {
			_, err := bucketAt(tx, "ro").NextSequence()
			return err
		}},
		{"set sequence", func(tx kv.Tx) error { return bucketAt(tx, "ro").SetSequence(3) }},
	}
	for _, tc := range cases {
		var inner error
		err := db.View(func(tx kv.Tx) error {
			if tx.Writable() {
				return errors.New("tx.Writable is true in a View")
			}
			inner = tc.fn(tx)
			if tx.Wrote() {
				return errors.New("tx.Wrote is true in a View")
			}
			return nil
		})
		if err != nil || !errors.Is(inner, kv.ErrNotWritable) {
			t.Errorf("%s in a View: View = %v, the write = %v; want ErrNotWritable", tc.name, err, inner)
		}
	}
	if after := dumpDB(t, db); after != before {
		t.Errorf("writes in a View changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func testWrote(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "w")
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	cases := []struct {
		name string
		fn   func(tx kv.Tx) error
		want bool
	}{
		{"reads only", func(tx kv.Tx) error {
			b := tx.Bucket([]byte("w"))
			b.Get([]byte("k"))
			b.Cursor().First()
			b.KeyN()
			b.Sequence()
			return nil
		}, false},
		{"put", func(tx kv.Tx) error { return tx.Bucket([]byte("w")).Put([]byte("x"), []byte("y")) }, true},
		{"put unchanged", func(tx kv.Tx) error { return tx.Bucket([]byte("w")).Put([]byte("k"), []byte("v")) }, true},
		{"delete", func(tx kv.Tx) error { return tx.Bucket([]byte("w")).Delete([]byte("k")) }, true},
		{"create bucket", func(tx kv.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte("fresh"))
			return err
		}, true},
		{"delete bucket", func(tx kv.Tx) error { return tx.DeleteBucket([]byte("w")) }, true},
	}
	for _, tc := range cases {
		err := db.Update(func(tx kv.Tx) error {
			if !tx.Writable() {
				return errors.New("tx.Writable is false in an Update")
			}
			if tx.Wrote() {
				return errors.New("tx.Wrote is true before anything was done")
			}
			if err := tc.fn(tx); err != nil {
				return err
			}
			if tx.Wrote() != tc.want {
				return fmt.Errorf("tx.Wrote = %v, want %v", tx.Wrote(), tc.want)
			}
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// testSnapshotIsolation holds a View open across a commit: what it read before, it reads after.
func testSnapshotIsolation(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "snap")
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("1"))
	})
	// bbolt's writer waits for open readers when it must grow its memory map; write and free some
	// ballast first so that the commit below finds room and this test does not deadlock itself.
	update(t, db, func(tx kv.Tx) error {
		b, err := createPath(tx, "ballast")
		if err != nil {
			return err
		}
		for i := range 512 {
			if err := b.Put(fmt.Appendf(nil, "%04d", i), value(i, 4096)); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, db, func(tx kv.Tx) error { return tx.DeleteBucket([]byte("ballast")) })

	read := make(chan struct{})
	committed := make(chan struct{})
	viewDone := make(chan error, 1)
	go func() {
		viewDone <- db.View(func(tx kv.Tx) error {
			b := tx.Bucket([]byte("snap"))
			first := string(b.Get([]byte("k")))
			close(read)
			<-committed
			if got := string(b.Get([]byte("k"))); got != first || got != "1" {
				return fmt.Errorf("k read %q then %q across a commit, want 1 both times", first, got)
			}
			if v := b.Get([]byte("k2")); v != nil {
				return fmt.Errorf("the View sees k2 = %q, committed after it began", v)
			}
			if n := b.KeyN(); n != 1 {
				return fmt.Errorf("the View counts %d keys, want 1", n)
			}
			if tx.Bucket([]byte("later")) != nil {
				return errors.New("the View sees a bucket created after it began")
			}
			return nil
		})
	}()
	<-read
	updateDone := make(chan error, 1)
	go func() {
		updateDone <- db.Update(func(tx kv.Tx) error {
			b := tx.Bucket([]byte("snap"))
			if err := b.Put([]byte("k"), []byte("2")); err != nil {
				return err
			}
			if err := b.Put([]byte("k2"), []byte("new")); err != nil {
				return err
			}
			_, err := tx.CreateBucketIfNotExists([]byte("later"))
			return err
		})
	}()
	// The timer only turns a hang into a failure: an Update must not wait for open Views.
	select {
	case err := <-updateDone:
		close(committed)
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		close(committed)
		t.Fatalf("Update blocked for a minute by an open View; err after release: %v", <-updateDone)
	}
	if err := <-viewDone; err != nil {
		t.Fatal(err)
	}
	view(t, db, func(tx kv.Tx) error {
		if got := string(tx.Bucket([]byte("snap")).Get([]byte("k"))); got != "2" {
			return fmt.Errorf("a View begun after the commit reads k = %q, want 2", got)
		}
		return nil
	})
}

// testSerialUpdates runs concurrent read-modify-write Updates: none may overlap or be lost.
func testSerialUpdates(t *testing.T, db kv.DB) {
	update(t, db, func(tx kv.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("ctr"))
		return err
	})
	const workers, rounds = 4, 10
	var active, overlaps atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Go(func() {
			for range rounds {
				errs <- db.Update(func(tx kv.Tx) error {
					if active.Add(1) > 1 {
						overlaps.Add(1)
					}
					defer active.Add(-1)
					b := tx.Bucket([]byte("ctr"))
					var n int
					if v := b.Get([]byte("n")); v != nil {
						if _, err := fmt.Sscan(string(v), &n); err != nil {
							return err
						}
					}
					return b.Put([]byte("n"), fmt.Appendf(nil, "%d", n+1))
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if overlaps.Load() != 0 {
		t.Errorf("%d Updates ran while another was running", overlaps.Load())
	}
	view(t, db, func(tx kv.Tx) error {
		if got := string(tx.Bucket([]byte("ctr")).Get([]byte("n"))); got != fmt.Sprint(workers*rounds) {
			return fmt.Errorf("counter = %s after %d increments", got, workers*rounds)
		}
		return nil
	})
}
