package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// JSONL appends one event per line to a file and is exactly-once across crashes: a batch is written
// with one write and fsynced before it is acknowledged, and on the first delivery after start (or after
// a failed write) the file's tail is reconciled with the outbox: a torn last line is cut off, and
// events already in the file are acknowledged instead of written again. This works because lines are
// appended in outbox order and at most one batch can be written but not yet acknowledged.
type JSONL struct {
	name  string
	path  string
	file  *os.File
	log   *slog.Logger
	dirty bool // the tail must be reconciled before the next write
	buf   []byte
	// uncached is the file offset below which written lines have been dropped from the page cache
	// (see dropWritten).
	uncached int64
}

// The JSONL file is written once and read by others (a SIEM agent tailing it, a batch job): the
// daemon never reads it back, so once a batch is on disk its pages only crowd the page cache — a
// 1M-issue backfill writes 3.6 GB — and every new write then pays for reclaiming (or, on a VM,
// first touching) memory: the write syscalls cost 13× more per byte at 1M issues than at 50k. So
// after each fsync the sink advises the kernel to drop what it wrote, except the last keepCached
// bytes, which a tailing reader is about to read (posix_fadvise DONTNEED; a hint, Linux only).
const (
	keepCached = 8 << 20
	dropStep   = 8 << 20 // drop in steps of at least this much: one syscall per few batches
)

// dropWritten advises the kernel to drop the file's pages below end - keepCached.
func (j *JSONL) dropWritten(end int64) {
	if end < j.uncached {
		j.uncached = 0 // truncated behind our back (copytruncate): start over
	}
	if upto := end - keepCached; upto-j.uncached >= dropStep {
		if err := dropPageCache(j.file, j.uncached, upto-j.uncached); err != nil {
			j.log.Debug("drop written lines from the page cache", "err", err)
			return
		}
		j.uncached = upto
	}
}

// OpenJSONL opens (creating it 0600, and its directory 0700) the file at path for appending. The
// caller must hold the store lock first, so two daemons never repair the same file (DESIGN.md §7).
func OpenJSONL(name, path string, log *slog.Logger) (*JSONL, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("jsonl sink %s: create directory: %w", name, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("jsonl sink %s: open %s: %w", name, path, err)
	}
	return &JSONL{name: name, path: path, file: f, log: log.With("component", "sink", "sink", name), dirty: true}, nil
}

// Name implements Sink.
func (j *JSONL) Name() string { return j.name }

// Close implements Sink.
func (j *JSONL) Close() error {
	if err := j.file.Sync(); err != nil {
		j.file.Close()
		return fmt.Errorf("jsonl sink %s: sync: %w", j.name, err)
	}
	return j.file.Close()
}

// Deliver implements Sink: everything not yet in the file is written in one write and fsynced.
func (j *JSONL) Deliver(_ context.Context, items []store.OutboxItem) (int, error) {
	done := 0
	if j.dirty {
		n, err := j.reconcile(items)
		if err != nil {
			return 0, err
		}
		j.dirty = false
		done = n
	}
	if done == len(items) {
		return done, nil
	}
	size, err := j.file.Seek(0, io.SeekEnd)
	if err != nil {
		j.dirty = true
		return done, fmt.Errorf("jsonl sink %s: seek: %w", j.name, err)
	}
	j.buf = j.buf[:0]
	for _, it := range items[done:] {
		j.buf = append(j.buf, it.Data...)
		j.buf = append(j.buf, '\n')
	}
	if _, err := j.file.Write(j.buf); err != nil {
		j.dirty = true
		// Leave no partial line behind; reconcile cleans up if even this fails.
		_ = j.file.Truncate(size)
		return done, fmt.Errorf("jsonl sink %s: write %s: %w", j.name, j.path, err)
	}
	if err := j.file.Sync(); err != nil {
		j.dirty = true
		return done, fmt.Errorf("jsonl sink %s: fsync %s: %w", j.name, j.path, err)
	}
	j.dropWritten(size + int64(len(j.buf)))
	if cap(j.buf) > 4<<20 {
		j.buf = nil // don't pin a huge buffer after a burst
	}
	return len(items), nil
}

// reconcile cuts a torn last line and returns how many leading items are already in the file.
func (j *JSONL) reconcile(items []store.OutboxItem) (int, error) {
	last, err := j.repairTail()
	if err != nil {
		return 0, err
	}
	if last == "" {
		return 0, nil
	}
	for i, it := range items {
		if eventID(it.Data) == last {
			j.log.Info("reconciled file with outbox", "already_written", i+1)
			return i + 1, nil
		}
	}
	return 0, nil
}

// repairTail truncates an incomplete last line and returns the event_id of the last complete line.
func (j *JSONL) repairTail() (string, error) {
	size, err := j.file.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("jsonl sink %s: seek: %w", j.name, err)
	}
	if size == 0 {
		return "", nil
	}
	// Read backwards in chunks until the last complete line is in hand.
	const chunk = 64 << 10
	var tail []byte
	off := size
	for {
		n := int64(chunk)
		if off < n {
			n = off
		}
		off -= n
		b := make([]byte, n)
		if _, err := j.file.ReadAt(b, off); err != nil {
			return "", fmt.Errorf("jsonl sink %s: read tail: %w", j.name, err)
		}
		tail = append(b, tail...)
		end := len(tail)
		if tail[end-1] != '\n' {
			cut := bytes.LastIndexByte(tail, '\n')
			if cut < 0 && off > 0 {
				continue
			}
			// A torn write: drop the partial line.
			keep := off + int64(cut+1)
			j.log.Warn("cutting a torn last line", "bytes", size-keep)
			if err := j.file.Truncate(keep); err != nil {
				return "", fmt.Errorf("jsonl sink %s: truncate torn line: %w", j.name, err)
			}
			if err := j.file.Sync(); err != nil {
				return "", fmt.Errorf("jsonl sink %s: fsync: %w", j.name, err)
			}
			return j.repairTail()
		}
		start := bytes.LastIndexByte(tail[:end-1], '\n')
		if start < 0 && off > 0 {
			continue
		}
		return eventID(tail[start+1 : end-1]), nil
	}
}

// eventID extracts event_id from an event line ("" if there is none).
func eventID(line []byte) string {
	var head struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return ""
	}
	return head.EventID
}

var _ Sink = (*JSONL)(nil)
