// Package etcdkv is the etcd engine of package kv, for several replicas that share one state and
// elect one leader: the leader writes, every replica reads and posts.
//
// # Keys
//
// Everything lives under Options.Prefix: the data under prefix+"data/", write-ahead records under
// prefix+"wal/". A bucket is a key prefix; the top level is the prefix "data/" itself. Under a
// bucket's prefix P, one tag byte opens each of four disjoint ranges:
//
//	P + "k" + key              a key of the bucket, with its value
//	P + "m" + name             marker: the bucket has the sub-bucket name (empty value)
//	P + "s"                    the bucket's sequence, 8 bytes big-endian (absent: 0)
//	P + "c" + esc(name)        the prefix of the sub-bucket name, and so everything in it
//
// esc(name) writes 0x00 as 0x00 0xff and ends with 0x00 0x01, so that no sub-bucket's prefix is a
// prefix of another's; keys and names are arbitrary bytes ('/', 0x00, 0xff included). Hence a
// bucket's keys are the one etcd range [P+"k", P+"l"), in the byte order of the raw keys, with
// nothing else in it; its sub-buckets are listed by the range [P+"m", P+"n"); and deleting a bucket
// is one range deletion of its prefix plus its marker.
//
// # Transactions
//
// Update transactions run one at a time per DB. They buffer their writes in a write set, which
// their own reads (Get, cursors, KeyN, Bucket) see over what etcd holds. View and Update
// transactions read at one etcd revision, that of their first read (linearizable), so each sees
// one snapshot. As a revision never changes, later reads need no read index (they are
// serializable reads at that revision, made linearizable only by a member that has not applied it
// yet) and a transaction keeps what it read. Cursors page through etcd ranges in both directions.
// Nothing read is kept across transactions: posts from other replicas change keys at any time.
//
// A read error (etcd unreachable, revision compacted) cannot be returned by Get or a cursor move,
// so those return nil and the transaction remembers the error: View and Update return it, and an
// Update does not commit after one.
//
// # Commits and fencing
//
// With Options.Fence set, every etcd transaction that writes (all but Post) carries the compare
// "create revision of the election key = the leader's", so a replica that no longer leads cannot
// write: its commit fails with kv.ErrFenced and nothing of it is applied.
//
// A write set that fits one etcd transaction (MaxTxnOps and MaxRequestBytes, with a margin) is
// committed as one fenced transaction. A larger one first goes to a write-ahead record: the
// operations, serialised and compressed (zstd), cut into chunks under wal/<seq>/, written in fenced
// transactions of which the last adds the record's head. Writing the head is the commit point: from
// then on the commit is durable and will be applied. The operations are then applied to the real
// keys in fenced transactions within the limits (in parallel: they touch disjoint keys) and the
// record is deleted. Applying is idempotent, so Recover applies every record left by a crash again,
// in order, and deletes it; a record without a head was never committed and is deleted unapplied.
// Open calls Recover when it may write (Fence nil, or held) unless Options.SkipRecover; a replica
// that wins an election calls Recover before its first Update, since the deposed leader may have
// left a record. A commit also requires that no other record exists (range compares on wal/), so
// one that skipped Recover is refused, applies the record, and asks to run the transaction again;
// it never lands on a state missing an earlier commit.
//
// While a record is being applied, transactions of the DB that committed it read at the revision
// of the commit point (the state before the commit), and its next Update first finishes the apply,
// so its own transactions never see part of a commit. A replica that did not write the record and
// reads during the apply may see part of it: standbys' API reads may show some of a large page
// commit for the moments it takes to apply; they never see a commit the leader has not made.
//
// An etcd error on a commit's last transaction (the single one, or the head's) leaves its outcome
// unknown, as with any etcd write; callers whose commits are idempotent on retry (the store's page
// commits carry their dedup marks) need nothing more.
//
// # Posts
//
// Post appends a value to a top-level bucket from any replica, leader or not, with an unfenced
// put; the leader reads and deletes posted keys in its own transactions.
package etcdkv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// Defaults of Options, those of an etcd server started without flags.
const (
	DefaultMaxTxnOps       = 128
	DefaultMaxRequestBytes = 3 << 19 // 1.5 MiB
	DefaultRequestTimeout  = 30 * time.Second
)

// ErrClosed is returned by transactions and posts on a closed DB.
var ErrClosed = errors.New("etcd store engine closed")

// Options configures Open.
type Options struct {
	// Client is the etcd client; the DB uses it but does not close it.
	Client *clientv3.Client
	// Prefix is the etcd key prefix under which everything is kept, e.g. "/wizfetch/prod/".
	Prefix string
	// Fence returns the leader's election key and its create revision, and whether this replica
	// leads. Nil means unfenced: for tools and tests that run alone.
	Fence func() (key string, createRevision int64, ok bool)
	// Logger receives warnings about commits and recovery; nil discards them.
	Logger *slog.Logger
	// MaxTxnOps is the etcd server's --max-txn-ops (default 128).
	MaxTxnOps int
	// MaxRequestBytes is the etcd server's --max-request-bytes (default 1.5 MiB); requests are kept
	// a margin below it.
	MaxRequestBytes int
	// RequestTimeout bounds each etcd request (default 30s).
	RequestTimeout time.Duration
	// SkipRecover keeps Open from applying write-ahead records even when it may write: for a
	// replica that only creates what is missing while another may lead and be applying its own
	// record (re-applying an old record after the leader's newer commits would undo them).
	SkipRecover bool
}

// DB is the etcd engine. It implements kv.DB and kv.Poster.
type DB struct {
	cli       *clientv3.Client
	fence     func() (string, int64, bool)
	log       *slog.Logger
	name      string // "etcd PREFIX", for messages
	root      string // prefix of the top level
	walPrefix string
	maxOps    int // operations per etcd transaction, one kept for the fence compare
	maxBytes  int // bytes per etcd request, margin kept
	timeout   time.Duration
	codec     *codec
	replica   [8]byte // random id of this DB in posted keys
	// skipRecover: Options.SkipRecover (never apply another DB's write-ahead record)
	skipRecover bool
	applyLimit  int // etcd transactions applying a record at once

	updateMu sync.Mutex // serialises Update and Recover
	lastSeq  uint64     // guarded by updateMu

	mu      sync.RWMutex // guards closed and pending; held for reading by a View's first read
	closed  bool
	pending *pendingRecord // the record this DB committed and has not finished applying
	txs     sync.WaitGroup // open transactions, waited for by Close

	maxRev atomic.Int64 // highest etcd revision seen, for record sequence numbers

	postMu    sync.Mutex
	postNanos int64
	postCount uint64

	hooks testHooks
}

// pendingRecord is a committed write-ahead record not yet fully applied.
type pendingRecord struct {
	seq    uint64
	rev    int64 // revision of the commit point: the state before the record
	failed bool  // its apply stopped on an error; Recover finishes it
}

// testHooks lets tests stop a commit where a crash would.
type testHooks struct {
	afterRecord func() error      // after the commit point, before applying
	beforeApply func(i int) error // before applying batch i
}

var (
	_ kv.DB     = (*DB)(nil)
	_ kv.Poster = (*DB)(nil)
)

// Open returns the engine over opts.Client and, when it may write, applies what a crash left in
// the write-ahead log.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Client == nil {
		return nil, errors.New("etcdkv: no etcd client")
	}
	if opts.MaxTxnOps == 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	if opts.MaxRequestBytes == 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.MaxTxnOps < 3 || opts.MaxRequestBytes < 64<<10 {
		return nil, fmt.Errorf("etcdkv: limits too small: %d ops, %d bytes a request", opts.MaxTxnOps, opts.MaxRequestBytes)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := newCodec()
	if err != nil {
		return nil, fmt.Errorf("etcdkv: %w", err)
	}
	db := &DB{
		cli:         opts.Client,
		fence:       opts.Fence,
		log:         opts.Logger.With("component", "etcdkv"),
		name:        "etcd " + opts.Prefix,
		root:        opts.Prefix + "data/",
		walPrefix:   opts.Prefix + "wal/",
		maxOps:      opts.MaxTxnOps - 1,
		maxBytes:    opts.MaxRequestBytes - max(opts.MaxRequestBytes/16, 16<<10),
		timeout:     opts.RequestTimeout,
		codec:       c,
		applyLimit:  8,
		skipRecover: opts.SkipRecover,
	}
	_, _ = rand.Read(db.replica[:])
	if _, err := db.currentFence(); err == nil && !opts.SkipRecover {
		if err := db.Recover(ctx); err != nil {
			c.close()
			return nil, fmt.Errorf("etcdkv: open %q: %w", opts.Prefix, err)
		}
	}
	return db, nil
}

// fencing is what fences one write: the election key and its create revision; key is "" when
// the DB is unfenced.
type fencing struct {
	key string
	rev int64
}

// currentFence returns the fence writes carry now, or kv.ErrFenced when this replica does not
// lead.
func (db *DB) currentFence() (fencing, error) {
	if db.fence == nil {
		return fencing{}, nil
	}
	key, rev, ok := db.fence()
	if !ok {
		return fencing{}, kv.ErrFenced
	}
	return fencing{key: key, rev: rev}, nil
}

// begin registers a transaction, or fails on a closed DB.
func (db *DB) begin() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	db.txs.Add(1)
	return nil
}

// View runs fn in a read transaction at one etcd revision.
func (db *DB) View(fn func(kv.Tx) error) error {
	if err := db.begin(); err != nil {
		return err
	}
	defer db.txs.Done()
	db.finishFailedApply()
	tx := newTx(db, false)
	if err := fn(tx); err != nil {
		return err
	}
	return tx.err
}

// Update runs fn in a write transaction and commits its writes, after finishing a commit of this
// DB whose apply an error interrupted.
func (db *DB) Update(fn func(kv.Tx) error) error {
	if err := db.begin(); err != nil {
		return err
	}
	defer db.txs.Done()
	db.updateMu.Lock()
	defer db.updateMu.Unlock()
	if _, ok := db.pendingRecord(); ok {
		ctx, cancel := context.WithTimeout(context.Background(), db.timeout)
		err := db.recover(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("finish the previous commit: %w", err)
		}
	}
	tx := newTx(db, true)
	if err := fn(tx); err != nil {
		return err
	}
	if tx.err != nil {
		return tx.err
	}
	if !tx.wrote {
		return nil
	}
	return db.commit(tx.ws.commitOps(db.codec.encodeValue))
}

// finishFailedApply lets a View, when no Update runs, finish applying a record whose apply failed,
// so that reads move past the revision of its commit point as soon as possible.
func (db *DB) finishFailedApply() {
	if p, ok := db.pendingRecord(); !ok || !p.failed || !db.updateMu.TryLock() {
		return
	}
	defer db.updateMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), db.timeout)
	defer cancel()
	if err := db.recover(ctx); err != nil {
		db.log.Debug("finish an interrupted commit", "err", err)
	}
}

// pendingRecord returns a copy of the pending record, if any.
func (db *DB) pendingRecord() (pendingRecord, bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.pending == nil {
		return pendingRecord{}, false
	}
	return *db.pending, true
}

func (db *DB) setPending(p *pendingRecord) {
	db.mu.Lock()
	db.pending = p
	db.mu.Unlock()
}

// Close waits for the transactions in progress and releases the DB; it does not close the client.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	db.txs.Wait()
	db.codec.close()
	return nil
}

// Post appends value to the top-level bucket name under a key of 8 bytes of unix nanoseconds
// (never decreasing within this DB), this DB's 8-byte random id and an 8-byte counter. It fails
// with kv.ErrBucketNotFound, writing nothing, when the bucket does not exist.
func (db *DB) Post(name, value []byte) error {
	if err := db.begin(); err != nil {
		return err
	}
	defer db.txs.Done()
	key := keyOf(childPrefix(db.root, name), db.postKey())
	value = db.codec.encodeValue(value)
	if (op{kind: opPut, key: key, val: value}).size() > db.maxBytes {
		return fmt.Errorf("post to %q: %d bytes: %w", name, len(value), kv.ErrTooLarge)
	}
	ctx, cancel := context.WithTimeout(context.Background(), db.timeout)
	defer cancel()
	marker := markerOf(db.root, name)
	resp, err := db.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(marker), ">", 0)).
		Then(clientv3.OpPut(key, string(value))).
		Commit()
	if err != nil {
		return fmt.Errorf("post to %q: %w", name, err)
	}
	db.seen(resp.Header.Revision)
	if !resp.Succeeded {
		return fmt.Errorf("post to %q: %w", name, kv.ErrBucketNotFound)
	}
	return nil
}

// postKey returns the next key Post uses.
func (db *DB) postKey() []byte {
	db.postMu.Lock()
	defer db.postMu.Unlock()
	db.postNanos = max(db.postNanos, time.Now().UnixNano())
	db.postCount++
	var k [24]byte
	putUint64(k[0:8], uint64(db.postNanos))
	copy(k[8:16], db.replica[:])
	putUint64(k[16:24], db.postCount)
	return k[:]
}

// seen records an etcd revision observed in a response.
func (db *DB) seen(rev int64) {
	for {
		cur := db.maxRev.Load()
		if rev <= cur || db.maxRev.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// String names the engine and its prefix, for messages ("etcd /wizfetch/prod/").
func (db *DB) String() string { return db.name }
