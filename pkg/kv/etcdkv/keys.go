package etcdkv

import (
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The tags that follow a bucket's prefix (see the package doc). Each tag opens its own contiguous
// range, so a bucket's keys, its sub-bucket markers and its children never interleave.
const (
	tagChild    = 'c' // prefix + "c" + esc(name): the sub-bucket's own prefix
	tagKey      = 'k' // prefix + "k" + key: a key and its value
	tagMarker   = 'm' // prefix + "m" + name: the sub-bucket exists (empty value)
	tagSequence = 's' // prefix + "s": the bucket's sequence, 8 bytes big-endian
)

// childPrefix returns the prefix of the sub-bucket name of the bucket at prefix. The name is
// escaped (0x00 becomes 0x00 0xff) and terminated by 0x00 0x01, so no child's prefix is a prefix of
// another's: "a" and "a\x00" become "a\x00\x01" and "a\x00\xff\x00\x01".
func childPrefix(prefix string, name []byte) string {
	var sb strings.Builder
	sb.Grow(len(prefix) + 1 + len(name) + 4)
	sb.WriteString(prefix)
	sb.WriteByte(tagChild)
	for _, c := range name {
		sb.WriteByte(c)
		if c == 0x00 {
			sb.WriteByte(0xff)
		}
	}
	sb.WriteString("\x00\x01")
	return sb.String()
}

// keyOf is the etcd key of key in the bucket at prefix.
func keyOf(prefix string, key []byte) string { return prefix + string(tagKey) + string(key) }

// markerOf is the etcd key recording that the bucket at prefix has the sub-bucket name.
func markerOf(prefix string, name []byte) string { return prefix + string(tagMarker) + string(name) }

// sequenceOf is the etcd key of the sequence of the bucket at prefix.
func sequenceOf(prefix string) string { return prefix + string(tagSequence) }

// span is the half-open etcd key range [start, end) of one tag of one bucket; the raw key or name
// of an etcd key in it is what follows start.
type span struct{ start, end string }

// keySpan is the range of the keys of the bucket at prefix.
func keySpan(prefix string) span {
	return span{prefix + string(tagKey), prefix + string(tagKey+1)}
}

// markerSpan is the range of the sub-bucket markers of the bucket at prefix.
func markerSpan(prefix string) span {
	return span{prefix + string(tagMarker), prefix + string(tagMarker+1)}
}

// prefixEnd is the end of the range of every key starting with p (p never ends in 0xff here:
// bucket prefixes end in 0x01 and the WAL's in '/').
func prefixEnd(p string) string { return clientv3.GetPrefixRangeEnd(p) }

// writeSet is what a write transaction changes, buffered until commit and read back by the
// transaction's own reads. ops maps an etcd key to its new value, or to nil for a deletion; put
// values are never nil. wiped holds prefixes deleted whole (deleted buckets), none inside another:
// etcd keys under them are gone unless ops puts them again.
type writeSet struct {
	ops    map[string][]byte
	sorted []string // the keys of ops in byte order, for cursors
	wiped  []string
}

func newWriteSet() *writeSet { return &writeSet{ops: make(map[string][]byte)} }

// lookup returns the value of key as this write set leaves it: known is false when the write set
// says nothing about key and the stored value applies; otherwise v is the value, or nil if absent.
func (w *writeSet) lookup(key string) (v []byte, known bool) {
	if v, ok := w.ops[key]; ok {
		return v, true
	}
	if w.hides(key) {
		return nil, true
	}
	return nil, false
}

// hides reports whether key lies under a wiped prefix.
func (w *writeSet) hides(key string) bool {
	for _, p := range w.wiped {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// set records value (nil: a deletion) for key.
func (w *writeSet) set(key string, value []byte) {
	if _, ok := w.ops[key]; !ok {
		i, _ := slices.BinarySearch(w.sorted, key)
		w.sorted = slices.Insert(w.sorted, i, key)
	}
	w.ops[key] = value
}

// wipe deletes every key under p, including those this write set put before.
func (w *writeSet) wipe(p string) {
	lo, _ := slices.BinarySearch(w.sorted, p)
	hi, _ := slices.BinarySearch(w.sorted, prefixEnd(p))
	for _, k := range w.sorted[lo:hi] {
		delete(w.ops, k)
	}
	w.sorted = slices.Delete(w.sorted, lo, hi)
	if w.hides(p) {
		return
	}
	w.wiped = slices.DeleteFunc(w.wiped, func(q string) bool { return strings.HasPrefix(q, p) })
	w.wiped = append(w.wiped, p)
}

// index returns the position in w.sorted of the first key >= key.
func (w *writeSet) index(key string) int {
	i, _ := slices.BinarySearch(w.sorted, key)
	return i
}

// count returns how many keys of the write set lie in s.
func (w *writeSet) count(s span) int { return w.index(s.end) - w.index(s.start) }

// op is one etcd operation of a commit: a put of val, or a deletion of key or of [key, end).
type op struct {
	kind byte // opPut, opDelete or opDeleteRange
	key  string
	end  string // opDeleteRange only
	val  []byte // opPut only
}

const (
	opPut byte = iota + 1
	opDelete
	opDeleteRange
)

// opOverhead bounds the bytes an op adds to an etcd request beyond its key, end and value.
const opOverhead = 32

// size is what o adds to an etcd request.
func (o op) size() int { return len(o.key) + len(o.end) + len(o.val) + opOverhead }

// clientOp is o for clientv3.
func (o op) clientOp() clientv3.Op {
	switch o.kind {
	case opPut:
		return clientv3.OpPut(o.key, string(o.val))
	case opDeleteRange:
		return clientv3.OpDelete(o.key, clientv3.WithRange(o.end))
	default:
		return clientv3.OpDelete(o.key)
	}
}

// commitOps turns the write set into etcd operations that no etcd transaction refuses (etcd
// refuses a put inside a range deleted by the same transaction): a wiped prefix becomes range
// deletions of the gaps between the keys put under it. The operations touch disjoint keys, so
// they may be applied in any order and any grouping, and applied again, with the same result.
// encode gives each value its stored form (values.go).
func (w *writeSet) commitOps(encode func([]byte) []byte) []op {
	ops := make([]op, 0, len(w.sorted)+len(w.wiped))
	for _, p := range w.wiped {
		start, end := p, prefixEnd(p)
		for _, k := range w.sorted[w.index(start):w.index(end)] {
			if w.ops[k] == nil {
				continue // a deletion inside a wiped range
			}
			if start < k {
				ops = append(ops, op{kind: opDeleteRange, key: start, end: k})
			}
			start = k + "\x00"
		}
		if start < end {
			ops = append(ops, op{kind: opDeleteRange, key: start, end: end})
		}
	}
	for _, k := range w.sorted {
		v := w.ops[k]
		switch {
		case v != nil:
			ops = append(ops, op{kind: opPut, key: k, val: encode(v)})
		case !w.hides(k):
			ops = append(ops, op{kind: opDelete, key: k})
		}
	}
	return ops
}
