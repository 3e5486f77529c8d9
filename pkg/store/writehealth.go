package store

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// probeAfter is how long WriteHealth trusts the last commit's failure: when no commit was tried for
// that long (an idle daemon), it tries a small write of its own instead.
const probeAfter = 30 * time.Second

// writeHealth remembers the outcome of the last commit, so that readiness can report a store that
// no longer takes writes (a full disk, an I/O error): the daemon then cannot commit pages nor take
// pushes, and an orchestrator should know.
type writeHealth struct {
	mu        sync.Mutex
	err       error     // the last commit's failure; nil once a later commit succeeded
	failedAt  time.Time // when err was recorded
	attempted time.Time // the last commit tried (a probe included)
}

// record notes a commit's outcome (err nil: it succeeded).
func (w *writeHealth) record(err error, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err, w.attempted = err, now
	if err != nil {
		w.failedAt = now
	}
}

// WriteHealth reports whether the store takes writes: nil, or the last commit's failure. The feeds
// retry their commits, so the last one tells; when none was tried for probeAfter, it tries a small
// write of its own, so that an idle daemon turns healthy once the cause is gone. A read-only store
// is always healthy. On an engine replicas share, a write fenced off because this replica does not
// lead is no failure: the engine answered, and the replica still takes pushes (inbox.go).
func (s *Store) WriteHealth() error {
	s.writes.mu.Lock()
	err, failedAt := s.writes.err, s.writes.failedAt
	due := err != nil && s.now().Sub(s.writes.attempted) >= probeAfter
	if due {
		s.writes.attempted = s.now()
	}
	s.writes.mu.Unlock()
	if err == nil {
		return nil
	}
	if due {
		probeErr := s.Update(func(tx *Tx) error { return tx.putMeta(keyWriteProbe, []byte(s.now().UTC().Format(time.RFC3339))) })
		if errors.Is(probeErr, kv.ErrFenced) {
			s.writes.record(nil, s.now()) // Update records no fenced outcome
		}
		if probeErr == nil || errors.Is(probeErr, kv.ErrFenced) {
			return nil
		}
		s.writes.mu.Lock()
		err, failedAt = s.writes.err, s.writes.failedAt
		s.writes.mu.Unlock()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("store writes fail since %s: %w", failedAt.UTC().Format(time.RFC3339), err)
}

// keyWriteProbe is the meta key WriteHealth's probe writes.
var keyWriteProbe = []byte("write_probe")

// putMeta writes one key of the meta bucket.
func (tx *Tx) putMeta(key, val []byte) error {
	if err := tx.writable(); err != nil {
		return err
	}
	b, err := tx.bucket(bucketMeta)
	if err != nil {
		return err
	}
	return b.Put(key, val)
}
