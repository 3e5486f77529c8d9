// Package kv is the ordered key-value engine under the store: the small interface that package
// store is written against, with two implementations, bbolt (kv/boltkv, the embedded default) and
// etcd (kv/etcdkv, for several replicas with one leader). Package store holds every decision about
// what is stored; an engine only keeps bytes under names.
//
// The model is bbolt's, which the store was built on: serialised write transactions that commit
// everything or nothing, read transactions that see one consistent snapshot, and nested buckets of
// keys in byte order. Two differences, so that etcd can implement it:
//   - a bucket's Cursor and ForEach see its keys only; sub-buckets are listed by ForEachBucket;
//   - an engine may refuse a commit it cannot make safely: etcd refuses one from a replica that no
//     longer leads ([ErrFenced]).
//
// Slices returned by Get and by cursors are valid only until the transaction ends, and slices passed
// to Put must stay unchanged until it ends (bbolt keeps them until the commit). Package store copies
// both ways (its doc), so neither rule reaches its callers.
package kv

import "errors"

var (
	// ErrFenced means a write transaction was refused because this replica no longer holds the
	// leadership that fences writes: another replica may be writing now, so nothing was written.
	ErrFenced = errors.New("not the leader: the write was fenced off")
	// ErrNotWritable means a write was attempted in a read transaction.
	ErrNotWritable = errors.New("write in a read-only transaction")
	// ErrBucketExists is returned by CreateBucket for a name that is already a bucket.
	ErrBucketExists = errors.New("bucket already exists")
	// ErrBucketNotFound is returned by DeleteBucket for a name that is not a bucket.
	ErrBucketNotFound = errors.New("bucket not found")
	// ErrTooLarge is returned by Put for a key or value larger than the engine takes.
	ErrTooLarge = errors.New("key or value too large for the store engine")
)

// DB is an open engine.
type DB interface {
	// View runs fn in a read transaction that sees one consistent snapshot.
	View(fn func(Tx) error) error
	// Update runs fn in a write transaction (one at a time per DB) and commits when fn returns nil;
	// an error from fn, or a failed commit, leaves nothing written. fn runs exactly once.
	Update(fn func(Tx) error) error
	// Close releases the engine. Transactions in progress finish first.
	Close() error
}

// Tx is one transaction. It is valid only inside the function given to View or Update and is not
// safe for concurrent use.
type Tx interface {
	// Bucket returns the top-level bucket name, or nil when there is none.
	Bucket(name []byte) Bucket
	// CreateBucketIfNotExists returns the top-level bucket name, creating it if needed.
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	// DeleteBucket deletes the top-level bucket name with everything in it.
	DeleteBucket(name []byte) error
	// ForEachBucket calls fn with the name of every top-level bucket, in byte order.
	ForEachBucket(fn func(name []byte) error) error
	// Writable reports whether this is a write transaction.
	Writable() bool
	// Wrote reports whether this transaction has put or deleted anything or created or deleted a
	// bucket so far (a write that stores a value unchanged counts).
	Wrote() bool
}

// Bucket is a named set of keys in byte order, and of sub-buckets.
type Bucket interface {
	// Get returns the value of key, or nil when key is absent. A present key with an empty value
	// returns a non-nil empty slice.
	Get(key []byte) []byte
	// Put sets key to value. key must not be empty.
	Put(key, value []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(key []byte) error
	// Cursor returns a cursor over the bucket's keys (not its sub-buckets).
	Cursor() Cursor
	// ForEach calls fn for every key and value in byte order (not for sub-buckets). fn must not
	// change the bucket.
	ForEach(fn func(k, v []byte) error) error
	// KeyN counts the bucket's keys (not its sub-buckets). It may take time proportional to them.
	KeyN() int

	// NextSequence increments and returns the bucket's sequence (the first call returns 1).
	NextSequence() (uint64, error)
	// Sequence returns the bucket's sequence without changing it.
	Sequence() uint64
	// SetSequence sets the bucket's sequence.
	SetSequence(v uint64) error

	// Bucket returns the sub-bucket name, or nil when there is none.
	Bucket(name []byte) Bucket
	// CreateBucket creates the sub-bucket name; ErrBucketExists if it exists.
	CreateBucket(name []byte) (Bucket, error)
	// CreateBucketIfNotExists returns the sub-bucket name, creating it if needed.
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	// DeleteBucket deletes the sub-bucket name with everything in it; ErrBucketNotFound if absent.
	DeleteBucket(name []byte) error
	// ForEachBucket calls fn with the name of every sub-bucket, in byte order.
	ForEachBucket(fn func(name []byte) error) error
}

// Cursor walks a bucket's keys in byte order. Every move returns the key and value it lands on, or
// nil, nil past either end.
type Cursor interface {
	First() (key, value []byte)
	Last() (key, value []byte)
	// Seek moves to key, or to the first key after it.
	Seek(seek []byte) (key, value []byte)
	Next() (key, value []byte)
	Prev() (key, value []byte)
	// Delete removes the key the cursor is on; the next Next moves to the key after it.
	Delete() error
}

// FillPercenter is implemented by buckets of engines that can pack pages fuller for keys that
// only ever grow at the tail (bbolt); others ignore the hint.
type FillPercenter interface {
	SetFillPercent(f float64)
}

// Poster is implemented by engines that several replicas share (etcd). Post appends value to the
// top-level bucket name under a new key that sorts after every key posted before it by this replica
// and is unique across replicas; it commits at once, outside any transaction, and is not fenced, so a
// replica that does not lead can hand work to the one that does (Wiz pushes). The leader reads and
// deletes posted keys in its own write transactions. The bucket must already exist.
type Poster interface {
	Post(name, value []byte) error
}
