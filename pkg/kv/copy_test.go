package kv_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
)

func openBolt(t *testing.T) *boltkv.DB {
	t.Helper()
	db, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fill writes a store-like tree: top-level buckets with keys, nested buckets with sequences, an
// empty bucket, binary keys and empty values, and enough bytes to take several copy batches.
func fill(t *testing.T, db kv.DB) {
	t.Helper()
	err := db.Update(func(tx kv.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("schema"), []byte("6")); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists([]byte("empty")); err != nil {
			return err
		}
		docs, err := tx.CreateBucketIfNotExists([]byte("docs"))
		if err != nil {
			return err
		}
		big := bytes.Repeat([]byte("x"), 4096)
		for i := range 3000 { // 12 MB: three copy batches
			if err := docs.Put(fmt.Appendf(nil, "\x00doc\xff%06d", i), big); err != nil {
				return err
			}
		}
		outbox, err := tx.CreateBucketIfNotExists([]byte("outbox"))
		if err != nil {
			return err
		}
		for _, sink := range []string{"file", "soc"} {
			b, err := outbox.CreateBucket([]byte(sink))
			if err != nil {
				return err
			}
			for range 5 {
				seq, err := b.NextSequence()
				if err != nil {
					return err
				}
				if err := b.Put(fmt.Appendf(nil, "inst\x00%08d", seq), []byte{}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Copy reproduces every bucket, key, value and sequence, and its counts say so.
func TestCopyReproducesEveryBucketKeyAndSequence(t *testing.T) {
	src, dst := openBolt(t), openBolt(t)
	fill(t, src)
	want, err := kv.Copy(dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if want.Keys["docs"] != 3000 || want.Keys["outbox/soc"] != 5 || want.Sequences["outbox/file"] != 5 {
		t.Fatalf("counts of the source: %+v", want)
	}
	if _, ok := want.Keys["empty"]; !ok {
		t.Fatal("the empty bucket is not counted")
	}
	got, err := kv.Count(dst)
	if err != nil {
		t.Fatal(err)
	}
	if diff := want.Diff(got); diff != "" {
		t.Fatalf("copy differs:\n%s", diff)
	}
	// Byte for byte, not only by counts.
	err = src.View(func(stx kv.Tx) error {
		return dst.View(func(dtx kv.Tx) error {
			sb, db := stx.Bucket([]byte("docs")), dtx.Bucket([]byte("docs"))
			return sb.ForEach(func(k, v []byte) error {
				if !bytes.Equal(db.Get(k), v) {
					return fmt.Errorf("key %q differs", k)
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = dst.View(func(tx kv.Tx) error {
		if v := tx.Bucket([]byte("outbox")).Bucket([]byte("file")).Get([]byte("inst\x0000000003")); v == nil || len(v) != 0 {
			return fmt.Errorf("empty value copied as %v", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A copy never merges two stores: a destination holding anything is refused, untouched.
func TestCopyRefusesANonEmptyDestination(t *testing.T) {
	src, dst := openBolt(t), openBolt(t)
	fill(t, src)
	if err := dst.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("meta"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, err := kv.Copy(dst, src)
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("copy into a non-empty store: %v; want a refusal", err)
	}
	got, err := kv.Count(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 1 {
		t.Fatalf("the refused destination changed: %+v", got)
	}
}

// Diff names each bucket that differs.
func TestCountsDiffNamesTheBucket(t *testing.T) {
	want := kv.Counts{Keys: map[string]int{"a": 1, "b": 2, "c": 0}, Sequences: map[string]uint64{"a": 4}}
	got := kv.Counts{Keys: map[string]int{"a": 1, "b": 3, "d": 1}, Sequences: map[string]uint64{"a": 3}}
	diff := want.Diff(got)
	for _, line := range []string{"a: sequence 3, want 4", "b: 3 keys, want 2", "c: missing (want 0 keys)", "d: unexpected bucket (1 keys)"} {
		if !strings.Contains(diff, line) {
			t.Errorf("diff lacks %q:\n%s", line, diff)
		}
	}
}
