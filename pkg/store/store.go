package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
)

// SchemaVersion is the layout version this code reads and writes (see the package doc). Schema 5
// keeps one plain form per value (an outbox value holds its event line, an incident document its
// S2-compressed JSON); schema 6 splits each outbox into one FIFO per instance; schema 7 stores event
// lines and incident documents as they are, without a codec byte (codec.go). Open migrates older
// files (migrate_v1.go, migrate_v4.go, migrate_v5.go, migrate_v6.go), and an older wizfetch refuses
// a schema-7 file rather than misread it.
const SchemaVersion = schemaV7

// pageSize is the bbolt page size of a new store file (an existing file keeps the one it was created
// with). An event line is about 4 KiB, so with bbolt's default 4 KiB pages nearly every outbox entry
// took a page (or an overflow run) of its own, half empty; 16 KiB pages hold several, so the file is
// smaller and so is the part of it the daemon maps and touches (its resident memory as operators
// see it). It also bounds a bbolt bookkeeping cost that grows with the file: bbolt remembers, for
// every page it handed out from its freelist, the transaction that took it, until that page is freed
// again, a map that grows with the number of pages. BENCHMARKS.md has the measurements.
const pageSize = 16 << 10

// minReadable is the oldest schema this code reads as it is, without migrating it: schema 7 only
// adds a form of value to schema 6's (migrate_v6.go).
const minReadable = schemaV6

// DefaultTimeout is how long Open waits for the file lock when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

var (
	// ErrLocked means another process (normally a running wizfetch daemon) holds the store's lock.
	ErrLocked = errors.New("store is in use by another wizfetch process")
	// ErrSchemaTooNew means the file was written by a newer wizfetch whose layout this one does not know.
	ErrSchemaTooNew = errors.New("store was written by a newer wizfetch")
	// ErrNotFound is returned by operations on an item (outbox event, refetch entry) that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTxClosed is returned when a Tx is used after the function it was passed to has returned.
	ErrTxClosed = errors.New("store transaction used after it ended")
)

// Options tune Open and OpenKV. Timeout, NoSync and MaxSize are bbolt's: OpenKV ignores them.
type Options struct {
	// Timeout bounds the wait for the file lock; zero means DefaultTimeout.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock for operator views; writes fail. With OpenKV the
	// store is only checked, never initialised, and writes fail.
	ReadOnly bool
	// NoSync skips fsync on commit. For tests only: a crash may lose or corrupt committed data.
	NoSync bool
	// Now is the clock used for times the store stamps itself (dead-letter FailedAt); nil means
	// time.Now.
	Now func() time.Time
	// MaxSize, when positive, caps the file's size in bytes: a write that would grow it further
	// fails as on a full disk. For tests of that case.
	MaxSize int
}

// Store is an open wizfetch store. It is safe for concurrent use; the engine serialises writers.
type Store struct {
	db kv.DB
	// bolt is the bbolt file under db when the store was opened by Open, nil with OpenKV: what
	// is bbolt's (migrations, the corruption guard, Check, PageWrites) needs it.
	bolt *bolt.DB
	// poster is the engine's kv.Poster when replicas share it (OpenKV): pushes go to the inbox
	// instead of a write transaction (inbox.go).
	poster kv.Poster
	// shared tells that other replicas may write the engine between two of this Store's
	// transactions, so what it caches of the data must be checked (identity.go).
	shared bool
	// id names this Store among the replicas of a shared engine (identity.go).
	id []byte
	// readOnly refuses writes on an engine that has no read-only mode of its own (OpenKV).
	readOnly bool
	path     string
	now      func() time.Time
	// writes remembers whether the last commit failed (writehealth.go).
	writes writeHealth
	// ids finds incidents by issue id whatever their createdAt (identity.go).
	ids issueIndex
	// bump tells that a shared engine's store may still be of schema 6: the next write transaction
	// records schema 7 (migrate_v6.go).
	bump atomic.Bool
}

// Bucket names (see the package doc for their contents).
var (
	bucketMeta            = []byte("meta")
	bucketCounters        = []byte("counters")
	bucketCheckpoints     = []byte("checkpoints")
	bucketMarks           = []byte("marks")
	bucketMarksByTime     = []byte("marks_by_time")
	bucketIncidents       = []byte("incidents")
	bucketIncidentsClosed = []byte("incidents_closed")
	bucketIncidentDocs    = []byte("incident_docs")
	bucketOutbox          = []byte("outbox")
	bucketDead            = []byte("dead")
	bucketSinkState       = []byte("sinkstate")
	bucketRefetch         = []byte("refetch")
	bucketRefetchDue      = []byte("refetch_due")

	allBuckets = [][]byte{
		bucketMeta, bucketCounters, bucketCheckpoints, bucketMarks, bucketMarksByTime,
		bucketIncidents, bucketIncidentsClosed, bucketIncidentDocs, bucketOutbox, bucketDead, bucketSinkState,
		bucketRefetch, bucketRefetchDue,
	}

	keySchema = []byte("schema")
)

// Open opens (creating if needed, unless opts.ReadOnly) the store at path. A lock held by another
// process for longer than opts.Timeout yields an error wrapping ErrLocked; a file of a newer schema
// yields one wrapping ErrSchemaTooNew.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if opts.ReadOnly {
		// bbolt would fail with a bare ENOENT; say what is missing.
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store %s read-only: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory for %s: %w", path, err)
	}
	var db *bolt.DB
	err := guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout:        timeout,
			ReadOnly:       opts.ReadOnly,
			NoSync:         opts.NoSync,
			FreelistType:   bolt.FreelistMapType,
			PageSize:       pageSize,
			NoFreelistSync: false,
			MaxSize:        opts.MaxSize,
		})
		return err
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: no lock after %s: %w", path, timeout, ErrLocked)
		}
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		if damaged(err) {
			return nil, &corruptError{path: path, cause: err.Error()}
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: boltkv.Wrap(db), bolt: db, path: path, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := checkTruncated(path, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	err = s.guarded(func() error { return s.openTx(opts.ReadOnly) })
	if err != nil {
		_ = db.Close()
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// openTx checks the schema (read-only) or initialises and migrates the file (read-write). Each
// migration step is a transaction of its own, so a large store is migrated in bounded steps and an
// interrupted migration resumes at the next Open.
func (s *Store) openTx(readOnly bool) error {
	db := s.bolt
	if readOnly {
		return db.View(func(btx *bolt.Tx) error { return checkSchema(boltkv.WrapTx(btx), true) })
	}
	if err := db.Update(initialize); err != nil {
		return err
	}
	migrated := false
	for _, m := range []struct {
		holder []byte // the bucket that exists while the migration runs
		batch  func(*bolt.Tx) (done bool, err error)
	}{{bucketMigrateV1, migrateBatchV1}, {bucketMigrateV4, migrateBatchV4}, {bucketMigrateV5, migrateBatchV5}} {
		running := false
		if err := db.View(func(btx *bolt.Tx) error { running = btx.Bucket(m.holder) != nil; return nil }); err != nil {
			return err
		}
		migrated = migrated || running
		for done := !running; !done; {
			err := db.Update(func(btx *bolt.Tx) error {
				var err error
				done, err = m.batch(btx)
				return err
			})
			if err != nil {
				return err
			}
		}
	}
	if migrated {
		// The migrations lead to schema 6, which needs no more than a new version number.
		return db.Update(func(btx *bolt.Tx) error { return bumpV6(boltkv.WrapTx(btx)) })
	}
	return nil
}

// initialize creates the buckets of a new file, records the schema version, refuses files it
// cannot read and starts the migration of an older file.
func initialize(btx *bolt.Tx) error {
	version, err := prepare(boltkv.WrapTx(btx), allBuckets)
	if err != nil {
		return err
	}
	switch {
	case version == 1:
		// Schema 2 keys incidents by createdAt and keeps their JSON apart; Open finishes the
		// migration in batches (migrate_v1.go), then goes on with schema 4's.
		return startMigrationV1(btx)
	case version >= 2 && version <= 4:
		// Schemas 2 to 4 hold values in forms schema 5 no longer reads (migrate_v4.go), which then
		// goes on to schema 6.
		return startMigrationV4(btx)
	case version == 5:
		// Schema 6 keeps one outbox FIFO per instance (migrate_v5.go).
		return startMigrationV5(btx)
	case version == schemaV6:
		// Schema 7 reads everything schema 6 wrote (migrate_v6.go).
		return bumpV6(boltkv.WrapTx(btx))
	}
	return nil
}

// prepare, in a write transaction, refuses a store it cannot read, creates the buckets a store of
// the current schema has and records the schema version of a new store. It returns the version
// the store had (0: none, a new store), which is older than SchemaVersion when it must be migrated.
func prepare(ktx kv.Tx, buckets [][]byte) (int, error) {
	if ktx.Bucket(bucketMeta) == nil {
		// A store without our meta bucket must be new (empty); anything else is not a wizfetch store.
		if foreign := firstBucket(ktx); foreign != nil {
			return 0, fmt.Errorf("not a wizfetch store (it has bucket %q but no schema version)", foreign)
		}
	} else if err := checkSchema(ktx, false); err != nil {
		return 0, err
	}
	version := 0
	if meta := ktx.Bucket(bucketMeta); meta != nil && meta.Get(keySchema) != nil {
		version, _ = strconv.Atoi(string(meta.Get(keySchema))) // checkSchema vetted it
	}
	for _, name := range buckets {
		if _, err := ktx.CreateBucketIfNotExists(name); err != nil {
			return 0, fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if version == 0 {
		if err := ktx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return 0, fmt.Errorf("write schema version: %w", err)
		}
	}
	return version, nil
}

// firstBucket returns (a copy of) the name of the store's first top-level bucket, nil if it has none.
func firstBucket(ktx kv.Tx) []byte {
	var first []byte
	errFound := errors.New("found")
	_ = ktx.ForEachBucket(func(name []byte) error {
		first = bytes.Clone(name)
		return errFound
	})
	return first
}

// checkSchema reads the schema version and refuses one this code cannot handle.
func checkSchema(ktx kv.Tx, readOnly bool) error {
	meta := ktx.Bucket(bucketMeta)
	if meta == nil {
		return errors.New("not a wizfetch store (no meta bucket)")
	}
	raw := meta.Get(keySchema)
	if raw == nil {
		if readOnly {
			return errors.New("not a wizfetch store (no schema version)")
		}
		return nil // created by initialize
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return fmt.Errorf("unreadable schema version %q", raw)
	}
	if v > SchemaVersion {
		return fmt.Errorf("schema version %d, this wizfetch knows up to %d (upgrade wizfetch): %w",
			v, SchemaVersion, ErrSchemaTooNew)
	}
	if v < minReadable && readOnly {
		return fmt.Errorf("store has schema version %d; open it read-write once (start the daemon) to migrate it to %d", v, SchemaVersion)
	}
	if readOnly {
		for _, name := range allBuckets {
			if ktx.Bucket(name) == nil {
				return fmt.Errorf("store is missing bucket %s (open it read-write once to repair)", name)
			}
		}
	}
	return nil
}

// Close releases the file lock and closes the file (with OpenKV: closes the engine). Pending
// transactions finish first.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Path is the file the store was opened from; with OpenKV, what the engine calls itself (its
// String method), or "".
func (s *Store) Path() string { return s.path }

// Update runs fn in one write transaction and commits (on bbolt with fsync) when fn returns nil;
// any error (or panic) rolls everything back. Damage found in a bbolt file while reading it is an
// error wrapping ErrCorrupt, not a crash (corrupt.go); an engine that fences writes refuses the
// commit of a replica that does not lead with an error wrapping kv.ErrFenced. fn must not do
// network I/O, must not call other Store methods (they open their own transaction and would
// deadlock) and must not keep tx after it returns.
func (s *Store) Update(fn func(tx *Tx) error) error {
	if s.readOnly {
		return fmt.Errorf("update a store opened read-only: %w", kv.ErrNotWritable)
	}
	var fnErr error
	err := s.guarded(func() error {
		return s.db.Update(func(ktx kv.Tx) error {
			if s.bump.Load() {
				if err := bumpV6(ktx); err != nil {
					return err
				}
			}
			tx := newTx(s, ktx)
			fnErr = fn(tx)
			err := fnErr
			if err == nil {
				err = tx.flushCounters()
			}
			tx.closed = true
			return err
		})
	})
	if err == nil && s.bump.Load() {
		s.bump.Store(false) // the transaction that committed recorded schema 7, or found it
	}
	if fnErr == nil && !errors.Is(err, kv.ErrFenced) {
		// err is the engine's own: the flush, the commit or the fsync failed (a full disk, an I/O
		// error). A fenced commit is no failure of the store: this replica no longer leads.
		s.writes.record(err, s.now())
	}
	return err
}

// PageWrites is the number of pages bbolt has written since Open (its TxStats.Write): every commit
// of a write transaction adds to it (at least its meta page), a rolled-back one does not. Tests use
// it to tell whether a transaction committed. It is bbolt's: a store opened by OpenKV returns -1.
func (s *Store) PageWrites() int64 {
	if s.bolt == nil {
		return -1
	}
	st := s.bolt.Stats()
	return st.TxStats.GetWrite()
}

// View runs fn in a read-only transaction that sees one consistent snapshot. Like Update, fn must
// not call other Store methods.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.guarded(func() error {
		return s.db.View(func(ktx kv.Tx) error {
			tx := newTx(s, ktx)
			err := fn(tx)
			tx.closed = true
			return err
		})
	})
}

// Tx is a typed view of one transaction of the engine. It is only valid inside the function given
// to Store.Update or Store.View, and is not safe for concurrent use.
type Tx struct {
	store  *Store
	ktx    kv.Tx
	closed bool
	deltas map[string]int64 // counter changes, written once before commit
	// claimed tells that this transaction made sure the id set is this Store's (identity.go).
	claimed bool
	// outboxes are the outbox buckets this write transaction opened (outboxBucket).
	outboxes map[string]kv.Bucket
}

func newTx(s *Store, ktx kv.Tx) *Tx {
	return &Tx{store: s, ktx: ktx}
}

// Wrote reports whether this transaction has changed anything so far: a key put or deleted, a
// bucket created or dropped, or a counter change waiting for the commit. It asks the engine (bbolt
// materialises a node of its B+tree only to change it; a read, even in a write transaction, never
// does), so no write method can forget to say it wrote. A write that puts a value back unchanged
// still counts. A write transaction that has not written can end in a rollback rather than a
// commit, which would write bbolt's meta page and freelist and fsync for nothing.
func (tx *Tx) Wrote() bool {
	if tx.ktx.Wrote() {
		return true
	}
	for _, d := range tx.deltas {
		if d != 0 {
			return true
		}
	}
	return false
}

// bucket returns a top-level bucket.
func (tx *Tx) bucket(name []byte) (kv.Bucket, error) {
	if tx.closed {
		return nil, ErrTxClosed
	}
	b := tx.ktx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("store is missing bucket %s", name)
	}
	return b, nil
}

// setFill tells an engine with pages (bbolt) how full to pack b's pages when it splits them, in
// this transaction: keys that only grow at the tail can fill them. Other engines ignore it.
func setFill(b kv.Bucket, f float64) {
	if fp, ok := b.(kv.FillPercenter); ok {
		fp.SetFillPercent(f)
	}
}

// writable reports an error for writes in a read transaction, before the engine would.
func (tx *Tx) writable() error {
	if tx.closed {
		return ErrTxClosed
	}
	if !tx.ktx.Writable() {
		return kv.ErrNotWritable
	}
	return nil
}
