package kv

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// copyBatchBytes bounds the keys and values one write transaction of Copy carries, so that a large
// store is copied in bounded steps whatever the engine's request limits.
const copyBatchBytes = 4 << 20

// Counts is how many keys each bucket holds, by bucket path ("outbox/file"), and the sequence
// of each bucket that has one.
type Counts struct {
	Keys      map[string]int
	Sequences map[string]uint64
}

// Count walks every bucket of db in one read transaction.
func Count(db DB) (Counts, error) {
	c := Counts{Keys: map[string]int{}, Sequences: map[string]uint64{}}
	err := db.View(func(tx Tx) error {
		return walk(tx, func(path []string, b Bucket) error {
			p := strings.Join(path, "/")
			c.Keys[p] = b.KeyN()
			if s := b.Sequence(); s != 0 {
				c.Sequences[p] = s
			}
			return nil
		})
	})
	if err != nil {
		return Counts{}, fmt.Errorf("count keys: %w", err)
	}
	return c, nil
}

// Diff lists how want and got differ, one line per bucket, in bucket order ("" when they agree).
func (want Counts) Diff(got Counts) string {
	var lines []string
	paths := slices.Sorted(maps.Keys(want.Keys))
	for p := range got.Keys {
		if _, ok := want.Keys[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		w, wok := want.Keys[p]
		g, gok := got.Keys[p]
		switch {
		case !gok:
			lines = append(lines, fmt.Sprintf("%s: missing (want %d keys)", p, w))
		case !wok:
			lines = append(lines, fmt.Sprintf("%s: unexpected bucket (%d keys)", p, g))
		case w != g:
			lines = append(lines, fmt.Sprintf("%s: %d keys, want %d", p, g, w))
		case want.Sequences[p] != got.Sequences[p]:
			lines = append(lines, fmt.Sprintf("%s: sequence %d, want %d", p, got.Sequences[p], want.Sequences[p]))
		}
	}
	return strings.Join(lines, "\n")
}

// Copy copies every bucket, key, value and sequence of src into dst, which must hold no bucket
// yet: a copy never merges two stores. It reads src in one read transaction (a consistent
// snapshot) and writes dst in transactions of at most a few MiB, so an interrupted copy leaves a
// partial dst: empty it and copy again. Nothing else may write either store meanwhile (stop the
// daemon). Top-level buckets named in skip are left out. It returns the counts of what it copied,
// which the caller checks dst against (Count, Diff).
func Copy(dst, src DB, skip ...string) (Counts, error) {
	empty := true
	if err := dst.View(func(tx Tx) error {
		return tx.ForEachBucket(func(name []byte) error {
			empty = false
			return nil
		})
	}); err != nil {
		return Counts{}, fmt.Errorf("read the destination: %w", err)
	}
	if !empty {
		return Counts{}, fmt.Errorf("the destination already holds a store: copy only into an empty one")
	}
	counts := Counts{Keys: map[string]int{}, Sequences: map[string]uint64{}}
	err := src.View(func(stx Tx) error {
		var pending []entry
		size := 0
		flush := func() error {
			if len(pending) == 0 {
				return nil
			}
			err := dst.Update(func(dtx Tx) error {
				for _, e := range pending {
					b, err := openPath(dtx, e.path)
					if err != nil {
						return err
					}
					switch {
					case e.seq:
						if err := b.SetSequence(e.sequence); err != nil {
							return err
						}
					case e.key != nil:
						if err := b.Put(e.key, e.value); err != nil {
							return err
						}
					}
				}
				return nil
			})
			pending, size = pending[:0], 0
			return err
		}
		err := walk(stx, func(path []string, b Bucket) error {
			if slices.Contains(skip, path[0]) {
				return nil
			}
			p := strings.Join(path, "/")
			counts.Keys[p] = 0
			pending = append(pending, entry{path: path}) // creates the bucket, even an empty one
			if s := b.Sequence(); s != 0 {
				counts.Sequences[p] = s
				pending = append(pending, entry{path: path, seq: true, sequence: s})
			}
			return b.ForEach(func(k, v []byte) error {
				counts.Keys[p]++
				pending = append(pending, entry{path: path, key: bytes.Clone(k), value: bytes.Clone(v)})
				if v == nil {
					pending[len(pending)-1].value = []byte{}
				}
				if size += len(k) + len(v) + 64; size >= copyBatchBytes {
					return flush()
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		return flush()
	})
	if err != nil {
		return Counts{}, fmt.Errorf("copy store: %w", err)
	}
	return counts, nil
}

// entry is one step of Copy: a bucket to create, its sequence, or a key.
type entry struct {
	path       []string
	key, value []byte
	seq        bool
	sequence   uint64
}

// openPath returns the bucket at path in tx, creating it and its parents as needed.
func openPath(tx Tx, path []string) (Bucket, error) {
	b, err := tx.CreateBucketIfNotExists([]byte(path[0]))
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", path[0], err)
	}
	for i, name := range path[1:] {
		if b, err = b.CreateBucketIfNotExists([]byte(name)); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", strings.Join(path[:i+2], "/"), err)
		}
	}
	return b, nil
}

// walk calls fn for every bucket of tx, parents before their sub-buckets, in byte order.
func walk(tx Tx, fn func(path []string, b Bucket) error) error {
	var visit func(path []string, b Bucket) error
	visit = func(path []string, b Bucket) error {
		if err := fn(path, b); err != nil {
			return err
		}
		return b.ForEachBucket(func(name []byte) error {
			sub := b.Bucket(name)
			if sub == nil {
				return fmt.Errorf("bucket %s/%s vanished", strings.Join(path, "/"), name)
			}
			return visit(append(slices.Clip(path), string(name)), sub)
		})
	}
	return tx.ForEachBucket(func(name []byte) error {
		b := tx.Bucket(name)
		if b == nil {
			return fmt.Errorf("bucket %s vanished", name)
		}
		return visit([]string{string(name)}, b)
	})
}
