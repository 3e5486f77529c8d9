// Package boltkv is the bbolt engine of package kv: a thin adapter that lets the store run on a
// bbolt file, the embedded default. It adds no logic of its own beyond what kv asks of bbolt:
// cursors and ForEach skip sub-buckets, a nil value is stored as an empty one, and a cursor's Next
// after a Delete lands on the key after the deleted one (bbolt's own cursor may skip it,
// etcd-io/bbolt#146).
//
// The wrappers of transactions and buckets are single pointers, so handing them out as kv.Tx and
// kv.Bucket allocates nothing: every Get and Put of a page commit goes straight to bbolt. Code that
// needs what only bbolt has (open options, statistics, migrations over bbolt's own API) reaches it
// through DB.Bolt and Tx.Bolt.
package boltkv

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// DB is an open bbolt file as a kv.DB.
type DB struct {
	db *bolt.DB
}

var (
	_ kv.DB            = (*DB)(nil)
	_ kv.Tx            = Tx{}
	_ kv.Bucket        = Bucket{}
	_ kv.FillPercenter = Bucket{}
	_ kv.Cursor        = (*Cursor)(nil)
)

// Options tune Open; the zero value (or nil) is bbolt's defaults.
type Options struct {
	// Timeout bounds the wait for the file lock; zero waits for ever (bbolt's default).
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock; writes fail.
	ReadOnly bool
	// NoSync skips fsync on commit: a crash may lose or corrupt committed data.
	NoSync bool
	// PageSize is the page size of a new file (an existing file keeps its own); zero means the
	// operating system's page size.
	PageSize int
}

// Open opens (creating if needed, with mode 0600) the bbolt file at path; opts may be nil.
func Open(path string, opts *Options) (*DB, error) {
	bo := &bolt.Options{}
	if opts != nil {
		bo.Timeout, bo.ReadOnly, bo.NoSync, bo.PageSize = opts.Timeout, opts.ReadOnly, opts.NoSync, opts.PageSize
	}
	db, err := bolt.Open(path, fileMode, bo)
	if err != nil {
		return nil, fmt.Errorf("open bbolt file %s: %w", path, err)
	}
	return Wrap(db), nil
}

// Wrap makes an open bbolt database a kv.DB. Closing the DB closes db.
func Wrap(db *bolt.DB) *DB { return &DB{db: db} }

// Bolt returns the bbolt database, for what only bbolt has (statistics, options, its own API).
func (d *DB) Bolt() *bolt.DB { return d.db }

// String names the file, for messages.
func (d *DB) String() string { return d.db.Path() }

// View runs fn in a bbolt read transaction.
func (d *DB) View(fn func(kv.Tx) error) error {
	return d.db.View(func(t *bolt.Tx) error { return fn(Tx{t}) })
}

// Update runs fn in a bbolt write transaction, committed (and, unless the file was opened with
// NoSync, fsynced) when fn returns nil. It never uses bolt.Batch, which may run fn twice.
func (d *DB) Update(fn func(kv.Tx) error) error {
	return d.db.Update(func(t *bolt.Tx) error { return fn(Tx{t}) })
}

// Close closes the bbolt file, after the transactions in progress.
func (d *DB) Close() error { return d.db.Close() }

// Tx is a bbolt transaction as a kv.Tx.
type Tx struct {
	tx *bolt.Tx
}

// WrapTx makes a bbolt transaction a kv.Tx, for code that runs in one bbolt opened itself (the
// store's migrations).
func WrapTx(t *bolt.Tx) Tx { return Tx{t} }

// Bolt returns the bbolt transaction.
func (t Tx) Bolt() *bolt.Tx { return t.tx }

// Bucket returns the top-level bucket name, or nil.
func (t Tx) Bucket(name []byte) kv.Bucket {
	if b := t.tx.Bucket(name); b != nil {
		return Bucket{b}
	}
	return nil
}

// CreateBucketIfNotExists returns the top-level bucket name, creating it if needed.
func (t Tx) CreateBucketIfNotExists(name []byte) (kv.Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, convert(err)
	}
	return Bucket{b}, nil
}

// DeleteBucket deletes the top-level bucket name.
func (t Tx) DeleteBucket(name []byte) error { return convert(t.tx.DeleteBucket(name)) }

// ForEachBucket calls fn with the name of every top-level bucket, in byte order.
func (t Tx) ForEachBucket(fn func(name []byte) error) error {
	c := t.tx.Cursor() // the root bucket holds buckets only
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Writable reports whether this is a write transaction.
func (t Tx) Writable() bool { return t.tx.Writable() }

// Wrote asks bbolt, which materialises a node of its B+tree only to change it (a read, even in a
// write transaction, never does), so no write can go unnoticed.
func (t Tx) Wrote() bool {
	if !t.tx.Writable() {
		return false
	}
	st := t.tx.Stats()
	return st.GetNodeCount() > 0
}

// Bucket is a bbolt bucket as a kv.Bucket.
type Bucket struct {
	b *bolt.Bucket
}

// Bolt returns the bbolt bucket.
func (b Bucket) Bolt() *bolt.Bucket { return b.b }

// Get returns the value of key, nil when absent (or a sub-bucket).
func (b Bucket) Get(key []byte) []byte { return b.b.Get(key) }

// Put sets key to value; a nil value is stored as an empty one, which Get returns as a non-nil
// empty slice (bbolt would return nil for it within the same transaction).
func (b Bucket) Put(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return convert(b.b.Put(key, value))
}

// Delete removes key.
func (b Bucket) Delete(key []byte) error { return convert(b.b.Delete(key)) }

// Cursor returns a cursor over the bucket's keys, skipping its sub-buckets.
func (b Bucket) Cursor() kv.Cursor { return &Cursor{c: b.b.Cursor()} }

// ForEach calls fn for every key and value in byte order, skipping sub-buckets.
func (b Bucket) ForEach(fn func(k, v []byte) error) error {
	return b.b.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil // a sub-bucket: values are never nil (Put)
		}
		return fn(k, v)
	})
}

// KeyN counts the bucket's keys by walking them (bbolt's Stats would count the sub-buckets' keys
// too, and would not see this transaction's own writes).
func (b Bucket) KeyN() int {
	n := 0
	c := b.b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			n++
		}
	}
	return n
}

// NextSequence increments and returns the bucket's sequence.
func (b Bucket) NextSequence() (uint64, error) {
	seq, err := b.b.NextSequence()
	return seq, convert(err)
}

// Sequence returns the bucket's sequence.
func (b Bucket) Sequence() uint64 { return b.b.Sequence() }

// SetSequence sets the bucket's sequence.
func (b Bucket) SetSequence(v uint64) error { return convert(b.b.SetSequence(v)) }

// Bucket returns the sub-bucket name, or nil.
func (b Bucket) Bucket(name []byte) kv.Bucket {
	if c := b.b.Bucket(name); c != nil {
		return Bucket{c}
	}
	return nil
}

// CreateBucket creates the sub-bucket name.
func (b Bucket) CreateBucket(name []byte) (kv.Bucket, error) {
	c, err := b.b.CreateBucket(name)
	if err != nil {
		return nil, convert(err)
	}
	return Bucket{c}, nil
}

// CreateBucketIfNotExists returns the sub-bucket name, creating it if needed.
func (b Bucket) CreateBucketIfNotExists(name []byte) (kv.Bucket, error) {
	c, err := b.b.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, convert(err)
	}
	return Bucket{c}, nil
}

// DeleteBucket deletes the sub-bucket name.
func (b Bucket) DeleteBucket(name []byte) error { return convert(b.b.DeleteBucket(name)) }

// ForEachBucket calls fn with the name of every sub-bucket, in byte order.
func (b Bucket) ForEachBucket(fn func(name []byte) error) error { return b.b.ForEachBucket(fn) }

// SetFillPercent sets how full bbolt packs the bucket's pages when it splits them (for keys that
// only grow at the tail). It lasts for this transaction.
func (b Bucket) SetFillPercent(f float64) { b.b.FillPercent = f }

// Cursor is a bbolt cursor as a kv.Cursor.
type Cursor struct {
	c *bolt.Cursor
	// key is the key the cursor stands on (nil: none).
	key []byte
	// deleted holds the key Delete removed while the cursor has not moved since; the next move
	// seeks from it instead of trusting bbolt's position.
	deleted []byte
	gone    bool
}

// First moves to the first key.
func (c *Cursor) First() ([]byte, []byte) {
	c.gone = false
	return c.forward(c.c.First())
}

// Last moves to the last key.
func (c *Cursor) Last() ([]byte, []byte) {
	c.gone = false
	return c.backward(c.c.Last())
}

// Seek moves to key, or to the first key after it.
func (c *Cursor) Seek(seek []byte) ([]byte, []byte) {
	c.gone = false
	return c.forward(c.c.Seek(seek))
}

// Next moves to the next key.
func (c *Cursor) Next() ([]byte, []byte) {
	if c.gone {
		c.gone = false
		return c.forward(c.c.Seek(c.deleted)) // the deleted key is gone: the first one after it
	}
	return c.forward(c.c.Next())
}

// Prev moves to the previous key.
func (c *Cursor) Prev() ([]byte, []byte) {
	if c.gone {
		c.gone = false
		if k, _ := c.c.Seek(c.deleted); k == nil {
			return c.backward(c.c.Last()) // the deleted key was the last
		}
	}
	return c.backward(c.c.Prev())
}

// Delete removes the key the cursor stands on; deleting twice without a move deletes nothing more.
func (c *Cursor) Delete() error {
	if c.gone || c.key == nil {
		return nil
	}
	if err := c.c.Delete(); err != nil {
		return convert(err)
	}
	c.deleted = append(c.deleted[:0], c.key...)
	c.gone, c.key = true, nil
	return nil
}

// forward skips sub-buckets (nil values) moving forward, from k, v.
func (c *Cursor) forward(k, v []byte) ([]byte, []byte) {
	for k != nil && v == nil {
		k, v = c.c.Next()
	}
	c.key = k
	return k, v
}

// backward skips sub-buckets moving backward, from k, v.
func (c *Cursor) backward(k, v []byte) ([]byte, []byte) {
	for k != nil && v == nil {
		k, v = c.c.Prev()
	}
	c.key = k
	return k, v
}

// convert adds kv's sentinel to a bbolt error that has one, keeping bbolt's in the chain.
func convert(err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case errors.Is(err, berrors.ErrTxNotWritable), errors.Is(err, berrors.ErrDatabaseReadOnly):
		sentinel = kv.ErrNotWritable
	case errors.Is(err, berrors.ErrBucketExists):
		sentinel = kv.ErrBucketExists
	case errors.Is(err, berrors.ErrBucketNotFound):
		sentinel = kv.ErrBucketNotFound
	case errors.Is(err, berrors.ErrKeyTooLarge), errors.Is(err, berrors.ErrValueTooLarge):
		sentinel = kv.ErrTooLarge
	default:
		return err
	}
	return &engineError{kv: sentinel, bolt: err}
}

// engineError is a bbolt error that also is kv's sentinel for it.
type engineError struct {
	kv, bolt error
}

func (e *engineError) Error() string   { return "bbolt: " + e.bolt.Error() }
func (e *engineError) Unwrap() []error { return []error{e.kv, e.bolt} }

// fileMode is the mode Open creates files with.
const fileMode os.FileMode = 0o600
