package store

import (
	"fmt"
	"slices"
)

// idSet is a set of 64-bit hashes that answers "certainly not" or "maybe" in about 4 bytes per
// member, for the incident id set (identity.go), which holds one hash per incident. With its fixed
// 256 KiB directory, the array's spare capacity and the map of the newest it takes about 4.7 MiB
// after a million random additions (BENCHMARKS.md), against 10.9 MiB for the sorted []uint64 and
// map it replaced (4.1 MiB when built from a million at once); below about 30,000 members the
// directory makes it the larger.
//
// A hash is kept as its top dirBits bits, which pick a bucket, and its low 32 bits, kept ascending
// within the bucket in one shared array; the bits between are dropped. Two hashes that agree on
// those 48 bits are one member: a false "maybe", once in 2^48 / members lookups (a walk, see
// identity.go), never a false "not". Additions go to a small map first and are merged into the
// array, in place from the back, once the map holds a 128th of it (mergeShare), so each addition
// costs about 128 word moves over time (a merge moves each member once, bucket range by range).
type idSet struct {
	// dir[b] is the index in lo of bucket b's first member; dir[1<<dirBits] is len(lo).
	dir    []uint32
	lo     []uint32
	recent map[uint64]struct{} // hashes added since the last merge (their full 64 bits)
}

// dirBits is the number of a hash's top bits that pick its bucket: 65,536 buckets (a 256 KiB
// directory), with the 32 low bits a 48-bit fingerprint.
const dirBits = 16

// minMerge is the fewest additions a merge waits for, so that a small set does not merge at every
// addition.
const minMerge = 1024

// mergeShare is the share of the array the map of additions may reach before a merge (1/mergeShare):
// a merge moves the array once, so each addition costs about mergeShare word moves, and the map (a
// few dozen bytes an entry) stays a small part of the set.
const mergeShare = 128

func split(h uint64) (bucket, lo uint32) { return uint32(h >> (64 - dirBits)), uint32(h) }

// newIDSet returns a set holding hashes (duplicates are fine).
func newIDSet(hashes []uint64) *idSet {
	s, _ := buildIDSet(func(add func(uint64)) error {
		for _, h := range hashes {
			add(h)
		}
		return nil
	})
	return s
}

// buildIDSet returns a set holding the hashes walk passes to add (duplicates are fine). It calls
// walk twice, to count each bucket's members and then to place them, so that building a set takes
// no more memory than the set (and a second directory): a store's incident ids are walked from its
// index (issueIndex.build), and a million of them collected first as 64-bit hashes would have
// tripled the set's size while it was built. The two walks must pass the same hashes.
func buildIDSet(walk func(add func(h uint64)) error) (*idSet, error) {
	s := &idSet{dir: make([]uint32, 1<<dirBits+1), recent: map[uint64]struct{}{}}
	if err := walk(func(h uint64) {
		b, _ := split(h)
		s.dir[b+1]++
	}); err != nil {
		return nil, err
	}
	for b := 1; b < len(s.dir); b++ {
		s.dir[b] += s.dir[b-1]
	}
	s.lo = make([]uint32, s.dir[len(s.dir)-1])
	next := slices.Clone(s.dir[:len(s.dir)-1]) // where each bucket's next member goes
	placed := 0
	if err := walk(func(h uint64) {
		b, lo := split(h)
		if next[b] < s.dir[b+1] {
			s.lo[next[b]] = lo
			next[b]++
			placed++
		}
	}); err != nil {
		return nil, err
	}
	if placed != len(s.lo) {
		return nil, fmt.Errorf("build the incident id set: the second walk placed %d ids, the first counted %d", placed, len(s.lo))
	}
	// Sort each bucket and drop its duplicates, moving the buckets down over the gaps.
	w := 0
	for b := 0; b+1 < len(s.dir); b++ {
		seg := s.lo[s.dir[b]:s.dir[b+1]]
		slices.Sort(seg)
		seg = slices.Compact(seg) // zeroes only the rest of this bucket's old range, above w
		s.dir[b] = uint32(w)
		w += copy(s.lo[w:], seg)
	}
	s.dir[len(s.dir)-1] = uint32(w)
	s.lo = s.lo[:w]
	return s, nil
}

// has reports whether h may be a member; false is certain.
func (s *idSet) has(h uint64) bool {
	if _, ok := s.recent[h]; ok {
		return true
	}
	b, lo := split(h)
	_, ok := slices.BinarySearch(s.lo[s.dir[b]:s.dir[b+1]], lo)
	return ok
}

// add makes h a member.
func (s *idSet) add(h uint64) {
	if s.has(h) {
		return
	}
	s.recent[h] = struct{}{}
	if len(s.recent) >= max(minMerge, len(s.lo)/mergeShare) {
		s.merge()
	}
}

// merge moves recent into lo, in place from the back: the additions, sorted as (bucket, low bits),
// are taken bucket by bucket from the last; the members above a bucket with additions move up in one
// copy by the number of additions still to place, and the bucket's members and additions are merged
// into their new place. Nothing is overwritten before it is moved, and a merge costs one move of the
// array and one pass over the directory, however few buckets the additions touch.
func (s *idSet) merge() {
	adds := make([]uint64, 0, len(s.recent))
	for h := range s.recent {
		b, lo := split(h)
		adds = append(adds, uint64(b)<<32|uint64(lo))
	}
	clear(s.recent)
	slices.Sort(adds)
	adds = slices.Compact(adds) // hashes that differ only in the dropped bits
	n := len(s.lo)
	s.lo = slices.Grow(s.lo, len(adds))[:n+len(adds)]
	end, j := n, len(adds) // lo[:end] is not yet in place; adds[:j] are not yet placed
	for j > 0 {
		b := adds[j-1] >> 32
		first := j - 1 // adds[first:j] are bucket b's
		for first > 0 && adds[first-1]>>32 == b {
			first--
		}
		top := int(s.dir[b+1])
		copy(s.lo[top+j:end+j], s.lo[top:end]) // the buckets above b, up by j
		i, w := top-1, top+j                   // bucket b: its old members lo[dir[b]:i+1], written below w
		for k := j - 1; k >= first; k-- {
			a := uint32(adds[k])
			for i >= int(s.dir[b]) && s.lo[i] > a {
				w--
				s.lo[w] = s.lo[i]
				i--
			}
			w--
			s.lo[w] = a
		}
		end, j = i+1, first // bucket b's other members move up by first, with the buckets below
	}
	placed := 0 // additions in the buckets before b
	for b := 0; b < 1<<dirBits; b++ {
		for placed < len(adds) && adds[placed]>>32 < uint64(b) {
			placed++
		}
		s.dir[b] += uint32(placed)
	}
	s.dir[1<<dirBits] = uint32(len(s.lo))
}

// size is the number of distinct 48-bit fingerprints held in the array (the map aside).
func (s *idSet) size() int { return len(s.lo) }
