package store

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrCorrupt means the store file is damaged (truncated, overwritten, or inconsistent). It is not
// retried: the daemon and the operator commands stop with an error that names the file and what
// to do (CorruptAdvice).
var ErrCorrupt = errors.New("store file is damaged")

// CorruptAdvice is what an operator can do about ErrCorrupt.
const CorruptAdvice = "stop wizfetch and restore the file from a backup, or move it away to start " +
	"fresh (the lookback window is then fetched again, and sinks that do not dedupe by event_id may " +
	"see those incidents again); `wizfetch store check` lists what is wrong"

// corruptError is ErrCorrupt with the file and the cause.
type corruptError struct {
	path  string
	cause string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("store %s is damaged (%s): %s", e.path, e.cause, CorruptAdvice)
}

func (e *corruptError) Unwrap() error { return ErrCorrupt }

// guarded runs fn so that damage found while reading the file surfaces as an ErrCorrupt error
// instead of killing the process. bbolt reads its file through a memory mapping and trusts what it
// finds: a page beyond the end of a truncated file faults (SIGBUS/SIGSEGV, fatal to a Go program
// unless the goroutine asked for a panic instead, which debug.SetPanicOnFault is for — memory-mapped
// files are its documented use), and a page overwritten with garbage trips one of bbolt's
// assertions (a panic). Both unwind through bbolt's own deferred rollback, so a write transaction
// interrupted this way commits nothing. Other engines (OpenKV) map no file: fn runs as it is.
func (s *Store) guarded(fn func() error) error {
	if s.bolt == nil {
		return fn()
	}
	return guard(s.path, fn)
}

// guard is guarded for the file at path, before a Store exists.
func guard(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = &corruptError{path: path, cause: "reading it failed, it is truncated or overwritten: " + clipCause(fmt.Sprint(r))}
		}
	}()
	return fn()
}

// damaged reports whether an error of bolt.Open means the file's header is damaged (rather than
// the file being locked, missing or unreadable).
func damaged(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
		errors.Is(err, berrors.ErrVersionMismatch) || strings.Contains(err.Error(), "file size too small")
}

// clipCause keeps a panic message readable (bbolt's can list page contents).
func clipCause(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// checkTruncated compares the size the file's metadata claims with the file's real size: bbolt maps
// more than the file holds, so reading a page past the end of a truncated file faults instead of
// failing. It runs once, before the store is used.
func checkTruncated(path string, db *bolt.DB) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	return db.View(func(btx *bolt.Tx) error {
		if want := btx.Size(); fi.Size() < want {
			return &corruptError{path: path, cause: fmt.Sprintf("the file holds %d bytes, its metadata needs %d: it was truncated", fi.Size(), want)}
		}
		return nil
	})
}

// Check runs bbolt's consistency check over the whole file in a read transaction (every page
// reachable once, freelist consistent, keys ordered) and returns what it found, at most max
// problems (max <= 0: all). It reads the whole file: seconds for a large store.
//
// bbolt's check runs in a goroutine of its own, where a page id pointing outside the file would
// fault fatally; so Check first walks every bucket and key itself, guarded, and a file that cannot
// be walked yields an error wrapping ErrCorrupt without running bbolt's check.
//
// The check is bbolt's: on a store opened by OpenKV it returns an error wrapping
// errors.ErrUnsupported (an engine such as etcd checks its own data).
func (s *Store) Check(max int) ([]error, error) {
	if s.bolt == nil {
		return nil, fmt.Errorf("check the store: only a bbolt file can be checked: %w", errors.ErrUnsupported)
	}
	var problems []error
	err := s.guarded(func() error {
		return s.bolt.View(func(btx *bolt.Tx) error {
			if err := btx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walkBucket(b) }); err != nil {
				return err
			}
			for err := range btx.Check() {
				if max <= 0 || len(problems) < max {
					problems = append(problems, err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return problems, nil
}

// walkBucket reads every key and value of b and its nested buckets, touching every page.
func walkBucket(b *bolt.Bucket) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := walkBucket(nb); err != nil {
					return err
				}
			}
			continue
		}
		_ = len(v) // the cursor read the element; the value's bytes are read below
		for i := 0; i < len(v); i += 4096 {
			_ = v[i]
		}
	}
	return nil
}
