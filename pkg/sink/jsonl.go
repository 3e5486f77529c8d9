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
// events already in the file are acknowledged instead of written again. This works because at most
// one batch can be written but not yet acknowledged, and the dispatcher hands out the rest of that
// batch, in the same order, before any other (store.Store.NextBatch), also after a restart.
type JSONL struct {
	name  string
	path  string
	file  *os.File
	log   *slog.Logger
	dirty bool // the tail must be reconciled before the next write
	buf   []byte
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
// It reads the file backwards a chunk at a time and keeps nothing but offsets, then reads only the
// start of the last line: a huge last line (written before incidents were clipped) costs no memory.
func (j *JSONL) repairTail() (string, error) {
	size, err := j.file.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("jsonl sink %s: seek: %w", j.name, err)
	}
	if size == 0 {
		return "", nil
	}
	lastNL, err := j.lastNewline(size)
	if err != nil {
		return "", err
	}
	if lastNL != size-1 {
		// A torn write: drop the partial line.
		keep := lastNL + 1
		j.log.Warn("cutting a torn last line", "bytes", size-keep)
		if err := j.file.Truncate(keep); err != nil {
			return "", fmt.Errorf("jsonl sink %s: truncate torn line: %w", j.name, err)
		}
		if err := j.file.Sync(); err != nil {
			return "", fmt.Errorf("jsonl sink %s: fsync: %w", j.name, err)
		}
		if keep == 0 {
			return "", nil
		}
		size = keep
	}
	prev, err := j.lastNewline(size - 1)
	if err != nil {
		return "", err
	}
	return j.lineEventID(prev+1, size-1)
}

// lastNewline returns the offset of the last '\n' before end, or -1 when there is none.
func (j *JSONL) lastNewline(end int64) (int64, error) {
	const chunk = 64 << 10
	b := make([]byte, chunk)
	for end > 0 {
		n := min(int64(chunk), end)
		off := end - n
		if _, err := j.file.ReadAt(b[:n], off); err != nil {
			return 0, fmt.Errorf("jsonl sink %s: read tail: %w", j.name, err)
		}
		if i := bytes.LastIndexByte(b[:n], '\n'); i >= 0 {
			return off + int64(i), nil
		}
		end = off
	}
	return -1, nil
}

// lineEventID reads the event_id of the line in [start, end). event_id is the first member of every
// line this sink writes (DESIGN.md §6), so only the line's first bytes are read.
func (j *JSONL) lineEventID(start, end int64) (string, error) {
	dec := json.NewDecoder(io.NewSectionReader(j.file, start, end-start))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", nil
	}
	if key, err := dec.Token(); err != nil || key != "event_id" {
		return "", nil
	}
	var id string
	if err := dec.Decode(&id); err != nil {
		return "", nil
	}
	return id, nil
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
