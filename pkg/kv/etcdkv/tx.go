package etcdkv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// tx is a kv.Tx. It reads at one revision, pinned by its first read.
type tx struct {
	db       *DB
	writable bool
	ws       *writeSet         // nil in a View
	rev      int64             // 0 until the first read
	cache    map[string][]byte // stored values read at rev (nil: absent): they cannot change
	wrote    bool
	err      error // the first read error: View and Update return it
}

func newTx(db *DB, writable bool) *tx {
	t := &tx{db: db, writable: writable, cache: make(map[string][]byte)}
	if writable {
		t.ws = newWriteSet()
	}
	return t
}

// read runs one etcd range read at the transaction's revision. On an error it records the error
// and returns nil; after one, it reads nothing more.
func (t *tx) read(key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	if t.err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.db.timeout)
	defer cancel()
	if t.rev == 0 {
		// The first read pins the revision. Holding db.mu for reading keeps a commit of this DB
		// from starting to apply a write-ahead record meanwhile: the pin is either before the
		// record's commit point or at it (db.pending), never in the middle of its apply.
		t.db.mu.RLock()
		defer t.db.mu.RUnlock()
		if p := t.db.pending; p != nil {
			t.rev = p.rev
		}
	}
	var resp *clientv3.GetResponse
	var err error
	if t.rev != 0 {
		// A revision already read is fixed: any member that has applied it answers for it without
		// the leader's read index. One that has not yet refuses (a future revision), and the read
		// is made linearizable then.
		opts = append(opts, clientv3.WithRev(t.rev))
		resp, err = t.db.cli.Get(ctx, key, append(opts, clientv3.WithSerializable())...)
	}
	if resp == nil {
		resp, err = t.db.cli.Get(ctx, key, opts...)
	}
	if err != nil {
		t.err = fmt.Errorf("read %q at revision %d: %w", key, t.rev, err)
		return nil
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	t.db.seen(resp.Header.Revision)
	return resp
}

// get returns the value of the etcd key as this transaction sees it, nil when absent.
func (t *tx) get(key string) []byte {
	if t.ws != nil {
		if v, known := t.ws.lookup(key); known {
			return v
		}
	}
	if v, ok := t.cache[key]; ok {
		return v
	}
	resp := t.read(key)
	if resp == nil {
		return nil
	}
	var v []byte
	if len(resp.Kvs) > 0 {
		v = t.value(key, resp.Kvs[0].Value)
	}
	t.cache[key] = v
	return v
}

// set buffers a put (value non-nil) or a deletion (nil) of an etcd key.
func (t *tx) set(key string, value []byte) {
	t.ws.set(key, value)
	t.wrote = true
}

// check returns kv.ErrNotWritable in a View, else the first read error.
func (t *tx) check(what string) error {
	if !t.writable {
		return fmt.Errorf("%s: %w", what, kv.ErrNotWritable)
	}
	return t.err
}

func (t *tx) root() *bucket { return &bucket{tx: t, prefix: t.db.root} }

// Bucket implements kv.Tx.
func (t *tx) Bucket(name []byte) kv.Bucket { return t.root().Bucket(name) }

// CreateBucketIfNotExists implements kv.Tx.
func (t *tx) CreateBucketIfNotExists(name []byte) (kv.Bucket, error) {
	return t.root().CreateBucketIfNotExists(name)
}

// DeleteBucket implements kv.Tx.
func (t *tx) DeleteBucket(name []byte) error { return t.root().DeleteBucket(name) }

// ForEachBucket implements kv.Tx.
func (t *tx) ForEachBucket(fn func(name []byte) error) error { return t.root().ForEachBucket(fn) }

// Writable implements kv.Tx.
func (t *tx) Writable() bool { return t.writable }

// Wrote implements kv.Tx.
func (t *tx) Wrote() bool { return t.wrote }

// bucket is a kv.Bucket: the etcd prefix of a bucket (see the package doc).
type bucket struct {
	tx     *tx
	prefix string
}

var errEmptyKey = errors.New("empty key")

// Get implements kv.Bucket.
func (b *bucket) Get(key []byte) []byte {
	if len(key) == 0 {
		return nil
	}
	return b.tx.get(keyOf(b.prefix, key))
}

// Put implements kv.Bucket. A key and value that could not fit one etcd request with the fence
// are refused with kv.ErrTooLarge.
func (b *bucket) Put(key, value []byte) error {
	if err := b.tx.check("put"); err != nil {
		return err
	}
	if len(key) == 0 {
		return fmt.Errorf("put: %w", errEmptyKey)
	}
	k := keyOf(b.prefix, key)
	if (op{kind: opPut, key: k}).size()+b.tx.db.codec.storedSize(value) > b.tx.db.maxBytes-fenceReserve {
		return fmt.Errorf("put %d-byte key, %d-byte value: %w", len(key), len(value), kv.ErrTooLarge)
	}
	b.tx.set(k, nonNil(value))
	return nil
}

// fenceReserve is room kept in every etcd request for the fence compare.
const fenceReserve = 1 << 10

// Delete implements kv.Bucket.
func (b *bucket) Delete(key []byte) error {
	if err := b.tx.check("delete"); err != nil {
		return err
	}
	if len(key) == 0 {
		return nil
	}
	b.tx.set(keyOf(b.prefix, key), nil)
	return nil
}

// Cursor implements kv.Bucket.
func (b *bucket) Cursor() kv.Cursor { return newCursor(b.tx, keySpan(b.prefix)) }

// ForEach implements kv.Bucket.
func (b *bucket) ForEach(fn func(k, v []byte) error) error {
	c := newCursor(b.tx, keySpan(b.prefix))
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return b.tx.err
}

// KeyN implements kv.Bucket: one counting read when this transaction changed none of the keys.
func (b *bucket) KeyN() int {
	s := keySpan(b.prefix)
	if ws := b.tx.ws; ws == nil || ws.count(s) == 0 && !ws.hides(s.start) {
		resp := b.tx.read(s.start, clientv3.WithRange(s.end), clientv3.WithCountOnly())
		if resp == nil {
			return 0
		}
		return int(resp.Count)
	}
	n := 0
	c := newCursor(b.tx, s)
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// NextSequence implements kv.Bucket.
func (b *bucket) NextSequence() (uint64, error) {
	if err := b.tx.check("next sequence"); err != nil {
		return 0, err
	}
	v := b.Sequence() + 1
	if b.tx.err != nil {
		return 0, b.tx.err
	}
	return v, b.SetSequence(v)
}

// Sequence implements kv.Bucket.
func (b *bucket) Sequence() uint64 {
	v := b.tx.get(sequenceOf(b.prefix))
	if len(v) != 8 {
		if v != nil && b.tx.err == nil {
			b.tx.err = fmt.Errorf("sequence %q: %d bytes, want 8", sequenceOf(b.prefix), len(v))
		}
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// SetSequence implements kv.Bucket.
func (b *bucket) SetSequence(v uint64) error {
	if err := b.tx.check("set sequence"); err != nil {
		return err
	}
	b.tx.set(sequenceOf(b.prefix), binary.BigEndian.AppendUint64(nil, v))
	return nil
}

// Bucket implements kv.Bucket.
func (b *bucket) Bucket(name []byte) kv.Bucket {
	if len(name) == 0 || b.tx.get(markerOf(b.prefix, name)) == nil {
		return nil
	}
	return &bucket{tx: b.tx, prefix: childPrefix(b.prefix, name)}
}

// CreateBucket implements kv.Bucket.
func (b *bucket) CreateBucket(name []byte) (kv.Bucket, error) {
	if err := b.tx.check("create bucket"); err != nil {
		return nil, err
	}
	if len(name) == 0 {
		return nil, fmt.Errorf("create bucket: %w", errEmptyKey)
	}
	marker := markerOf(b.prefix, name)
	exists := b.tx.get(marker) != nil
	if b.tx.err != nil {
		return nil, b.tx.err
	}
	if exists {
		return nil, fmt.Errorf("create bucket %q: %w", name, kv.ErrBucketExists)
	}
	b.tx.set(marker, []byte{})
	return &bucket{tx: b.tx, prefix: childPrefix(b.prefix, name)}, nil
}

// CreateBucketIfNotExists implements kv.Bucket.
func (b *bucket) CreateBucketIfNotExists(name []byte) (kv.Bucket, error) {
	if err := b.tx.check("create bucket"); err != nil {
		return nil, err
	}
	if sub := b.Bucket(name); sub != nil {
		return sub, nil
	}
	if b.tx.err != nil {
		return nil, b.tx.err
	}
	return b.CreateBucket(name)
}

// DeleteBucket implements kv.Bucket: the marker and one range deletion of the bucket's prefix.
func (b *bucket) DeleteBucket(name []byte) error {
	if err := b.tx.check("delete bucket"); err != nil {
		return err
	}
	marker := markerOf(b.prefix, name)
	exists := len(name) > 0 && b.tx.get(marker) != nil
	if b.tx.err != nil {
		return b.tx.err
	}
	if !exists {
		return fmt.Errorf("delete bucket %q: %w", name, kv.ErrBucketNotFound)
	}
	b.tx.set(marker, nil)
	b.tx.ws.wipe(childPrefix(b.prefix, name))
	return nil
}

// ForEachBucket implements kv.Bucket.
func (b *bucket) ForEachBucket(fn func(name []byte) error) error {
	c := newCursor(b.tx, markerSpan(b.prefix))
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if err := fn(k); err != nil {
			return err
		}
	}
	return b.tx.err
}

// nonNil returns v, or an empty slice for nil: etcd returns an empty value as nil.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

func putUint64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }
