package store

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// checkIDSet fails unless every bucket of s is ascending and dir describes lo.
func checkIDSet(t *testing.T, s *idSet) {
	t.Helper()
	if got := int(s.dir[len(s.dir)-1]); got != len(s.lo) {
		t.Fatalf("dir ends at %d, lo holds %d", got, len(s.lo))
	}
	for b := 0; b+1 < len(s.dir); b++ {
		if s.dir[b] > s.dir[b+1] {
			t.Fatalf("dir[%d]=%d > dir[%d]=%d", b, s.dir[b], b+1, s.dir[b+1])
		}
		seg := s.lo[s.dir[b]:s.dir[b+1]]
		for i := 1; i < len(seg); i++ {
			if seg[i-1] >= seg[i] {
				t.Fatalf("bucket %d not strictly ascending at %d: %v", b, i, seg)
			}
		}
	}
}

func TestIDSetAnswersLikeAMap(t *testing.T) {
	edge := []uint64{
		0, 1, 1<<32 - 1, // bucket 0, lowest and highest low bits
		^uint64(0), ^uint64(0) - 1, // the last bucket
		0x0001_0000_0000_0005, 0x0001_ffff_0000_0005, // same bucket and low bits: one member
		0x8000_0000_0000_0000, 0x8000_0000_0000_0001, 0x7fff_ffff_ffff_ffff,
	}
	for _, tc := range []struct {
		name    string
		initial int // members the set is built with
		added   int // members added one by one (crossing several merges)
	}{
		{"empty then added", 0, 5000},
		{"built only", 5000, 0},
		{"built then added", 20000, 70000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.initial+tc.added)))
			in := map[uint64]bool{}
			var initial []uint64
			for range tc.initial {
				h := r.Uint64()
				initial = append(initial, h, h) // duplicates are fine
				in[h] = true
			}
			s := newIDSet(initial)
			merges := 0
			for i := range tc.added + len(edge) {
				var h uint64
				if i < len(edge) {
					h = edge[i]
				} else {
					h = r.Uint64()
				}
				before := len(s.recent)
				s.add(h)
				in[h] = true
				if len(s.recent) < before {
					merges++
					checkIDSet(t, s)
				}
				if !s.has(h) {
					t.Fatalf("just added %#x, has says no", h)
				}
			}
			if tc.added >= 2*minMerge && merges == 0 {
				t.Fatal("no merge happened: the test does not exercise merge")
			}
			s.merge()
			checkIDSet(t, s)
			for h := range in {
				if !s.has(h) {
					t.Fatalf("member %#x: has says no", h)
				}
			}
			// Members differing only in the 16 dropped bits are one; nothing else is.
			fp := map[uint64]bool{}
			for h := range in {
				b, lo := split(h)
				fp[uint64(b)<<32|uint64(lo)] = true
			}
			if s.size() != len(fp) {
				t.Fatalf("size %d, want %d distinct fingerprints", s.size(), len(fp))
			}
			falseHits := 0
			for range 200000 {
				h := r.Uint64()
				if !in[h] && s.has(h) {
					falseHits++
				}
			}
			if falseHits > 0 {
				t.Fatalf("%d false members among 200,000 random hashes (expected ~0 at 48 bits)", falseHits)
			}
			if !s.has(0x0001_0000_0000_0005) || !s.has(0x0001_abcd_0000_0005) {
				t.Fatal("a hash agreeing on the kept 48 bits must be a (false) member")
			}
		})
	}
}

func TestIDSetMergeKeepsOrderAcrossBuckets(t *testing.T) {
	// Hand-picked: additions that go before, between and after the members of a bucket, and into
	// the buckets around it, merged at once.
	mk := func(b, lo uint32) uint64 { return uint64(b)<<(64-dirBits) | uint64(lo) }
	s := newIDSet([]uint64{mk(7, 10), mk(7, 20), mk(9, 5)})
	for _, h := range []uint64{mk(7, 5), mk(7, 15), mk(7, 25), mk(6, 1), mk(8, 1), mk(9, 4), mk(9, 6), mk(0, 0), mk(1<<dirBits-1, 3)} {
		s.recent[h] = struct{}{}
	}
	s.merge()
	checkIDSet(t, s)
	want := map[uint32][]uint32{0: {0}, 6: {1}, 7: {5, 10, 15, 20, 25}, 8: {1}, 9: {4, 5, 6}, 1<<dirBits - 1: {3}}
	for b := uint32(0); b < 1<<dirBits; b++ {
		got := s.lo[s.dir[b]:s.dir[b+1]]
		if !slices.Equal(got, want[b]) {
			t.Fatalf("bucket %d = %v, want %v", b, got, want[b])
		}
	}
}

// TestIDSetMergeEdges: a merge with nothing to add, into an empty array, and of additions that all
// land in one bucket while the array holds members of others, each checked member by member.
func TestIDSetMergeEdges(t *testing.T) {
	mk := func(b, lo uint32) uint64 { return uint64(b)<<(64-dirBits) | uint64(lo) }
	for _, tc := range []struct {
		name    string
		initial []uint64
		added   []uint64
	}{
		{"nothing to add", []uint64{mk(3, 1), mk(3, 2), mk(1<<dirBits-1, 9)}, nil},
		{"into an empty array", nil, []uint64{mk(0, 0), mk(0, 1<<32-1), mk(1<<dirBits-1, 0), mk(5, 7)}},
		{"all into bucket 0, array elsewhere", []uint64{mk(1, 1), mk(30000, 2), mk(1<<dirBits-1, 3)}, []uint64{mk(0, 5), mk(0, 1), mk(0, 1<<32-1)}},
		{"all into the last bucket, array elsewhere", []uint64{mk(0, 1), mk(30000, 2)}, []uint64{mk(1<<dirBits-1, 4), mk(1<<dirBits-1, 0)}},
		{"all into the array's own bucket", []uint64{mk(30000, 10), mk(30000, 20)}, []uint64{mk(30000, 5), mk(30000, 15), mk(30000, 25)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newIDSet(slices.Clone(tc.initial))
			for _, h := range tc.added {
				s.recent[h] = struct{}{}
			}
			s.merge()
			checkIDSet(t, s)
			if len(s.recent) != 0 {
				t.Fatalf("recent holds %d after a merge", len(s.recent))
			}
			if want := len(tc.initial) + len(tc.added); s.size() != want {
				t.Fatalf("size %d, want %d", s.size(), want)
			}
			for _, h := range append(slices.Clone(tc.initial), tc.added...) {
				if !s.has(h) {
					t.Fatalf("member %#x lost by the merge", h)
				}
			}
			if s.has(mk(2, 3)) {
				t.Fatal("a hash never added is a member")
			}
		})
	}
}

// TestIDSetMergesRarely holds the cost of additions: a merge (which walks the whole directory and
// array) happens once per max(minMerge, size/mergeShare) additions, not once per addition, and
// every member is still there after each merge.
func TestIDSetMergesRarely(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	s := newIDSet(nil)
	var added []uint64
	merges := 0
	const n = 100000
	for range n {
		h := r.Uint64()
		before := len(s.recent)
		s.add(h)
		added = append(added, h)
		if len(s.recent) < before {
			merges++
			checkIDSet(t, s)
			for _, a := range added {
				if !s.has(a) {
					t.Fatalf("member %#x lost by merge %d", a, merges)
				}
			}
		}
	}
	// With 100,000 additions: merges of minMerge = 1,024 while the array is under 1,024 ×
	// mergeShare (131,072), so about 98 in all.
	if merges < 90 || merges > 105 {
		t.Fatalf("%d merges for %d additions, want about 98", merges, n)
	}
}

// TestBuildIDSet: a set built by two walks holds what adding one by one holds, reports a failed or
// inconsistent walk, and allocates little more than itself (collecting the hashes first would
// allocate 8 bytes more per member).
func TestBuildIDSet(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 200000
	hashes := make([]uint64, n)
	for i := range hashes {
		hashes[i] = r.Uint64()
	}
	hashes[7] = hashes[3] // a duplicate
	walkAll := func(add func(uint64)) error {
		for _, h := range hashes {
			add(h)
		}
		return nil
	}

	// The fewest bytes of three builds, so that another goroutine's allocation cannot fail the test.
	var built *idSet
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := buildIDSet(walkAll)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		built, least = s, min(least, after.TotalAlloc-before.TotalAlloc)
	}
	checkIDSet(t, built)
	if limit := uint64(4*n + 1<<20); least > limit {
		t.Errorf("building a set of %d allocated %d bytes, more than %d", n, least, limit)
	}

	added := newIDSet(nil)
	for _, h := range hashes {
		added.add(h)
	}
	added.merge()
	if !slices.Equal(built.lo, added.lo) || !slices.Equal(built.dir, added.dir) {
		t.Fatal("the built set differs from the set added to one hash at a time")
	}
	for _, h := range hashes {
		if !built.has(h) {
			t.Fatalf("member %#x missing", h)
		}
	}

	boom := errors.New("walk failed")
	if _, err := buildIDSet(func(func(uint64)) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("a failed walk: %v", err)
	}
	calls := 0
	_, err := buildIDSet(func(add func(uint64)) error {
		calls++
		if calls == 2 {
			add(1) // the second walk passes fewer hashes than the first
			return nil
		}
		return walkAll(add)
	})
	if err == nil {
		t.Fatal("walks that disagree built a set")
	}
}
