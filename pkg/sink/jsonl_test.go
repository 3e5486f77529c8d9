package sink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func line(n int) []byte {
	return []byte(fmt.Sprintf(`{"event_id":"ev-%04d","kind":"created","incident":{"name":"n%d"}}`, n, n))
}

func enqueue(t *testing.T, st *store.Store, sink string, from, to int) {
	t.Helper()
	err := st.Update(func(tx *store.Tx) error {
		for n := from; n < to; n++ {
			if _, err := tx.Enqueue(sink, "default", line(n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fileIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("torn or invalid line %q: %v", sc.Text(), err)
		}
		ids = append(ids, ev.EventID)
	}
	return ids
}

func TestJSONLReconcilesAfterCrashBetweenWriteAndAck(t *testing.T) {
	st := openStore(t)
	path := filepath.Join(t.TempDir(), "out", "incidents.jsonl")
	enqueue(t, st, "file", 0, 10)

	// Simulate a crash: the batch reached the file (plus a torn half line) but was never acknowledged.
	j, err := OpenJSONL("file", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	items, _ := st.Outbox("file", 0, 100)
	if n, err := j.Deliver(context.Background(), items[:6]); err != nil || n != 6 {
		t.Fatalf("deliver: %d %v", n, err)
	}
	j.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(line(6)[:20])
	f.Close()

	// Restart: the dispatcher delivers the whole outbox again.
	j, err = OpenJSONL("file", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	n, err := j.Deliver(context.Background(), items)
	if err != nil || n != 10 {
		t.Fatalf("deliver after restart: %d %v", n, err)
	}
	ids := fileIDs(t, path)
	if len(ids) != 10 {
		t.Fatalf("file has %d lines, want 10: %v", len(ids), ids)
	}
	for i, id := range ids {
		if id != fmt.Sprintf("ev-%04d", i) {
			t.Fatalf("line %d is %s", i, id)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", fi.Mode().Perm())
	}
}

// failingFile makes every write fail, like a full disk.
type flakySink struct {
	name     string
	fail     atomic.Int32 // fail this many more calls
	perm     bool
	got      []string
	attempts atomic.Int32
}

func (s *flakySink) Name() string { return s.name }
func (s *flakySink) Close() error { return nil }
func (s *flakySink) Deliver(_ context.Context, items []store.OutboxItem) (int, error) {
	s.attempts.Add(1)
	if s.fail.Load() > 0 {
		s.fail.Add(-1)
		if s.perm {
			return 0, Permanent(errors.New("HTTP 400: bad incident"))
		}
		return 0, errors.New("HTTP 503")
	}
	for _, it := range items {
		s.got = append(s.got, string(it.Data))
	}
	return len(items), nil
}

func TestDispatcherRetriesInOrderAndDeadLettersPermanentFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perm     bool
		wantGot  int
		wantDead int
	}{
		{name: "transient failures are retried", perm: false, wantGot: 5, wantDead: 0},
		{name: "a permanent failure dead-letters the head", perm: true, wantGot: 4, wantDead: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			enqueue(t, st, "s", 0, 5)
			fs := &flakySink{name: "s", perm: tc.perm}
			fs.fail.Store(2)
			if tc.perm {
				fs.fail.Store(1)
			}
			d := NewDispatcher(st, []Target{{Sink: fs, Batch: 10}}, DispatcherOptions{
				BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, PollEvery: 5 * time.Millisecond,
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				depth, _ := st.OutboxDepth("s")
				if depth == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("outbox never drained (depth %d)", depth)
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(fs.got) != tc.wantGot {
				t.Fatalf("delivered %d, want %d", len(fs.got), tc.wantGot)
			}
			for i := 1; i < len(fs.got); i++ {
				if fs.got[i] <= fs.got[i-1] {
					t.Fatalf("out of order: %v", fs.got)
				}
			}
			dead, _ := st.DeadLetterCount("s")
			if dead != tc.wantDead {
				t.Fatalf("dead letters %d, want %d", dead, tc.wantDead)
			}
			if tc.perm {
				dl, _ := st.DeadLetters("s", 10)
				if !strings.Contains(dl[0].Reason, "HTTP 400") {
					t.Fatalf("dead-letter reason %q lacks the response reason", dl[0].Reason)
				}
			}
		})
	}
}

func TestDispatcherGivesUpAfterMaxFailures(t *testing.T) {
	st := openStore(t)
	enqueue(t, st, "s", 0, 1)
	fs := &flakySink{name: "s"}
	fs.fail.Store(1000)
	d := NewDispatcher(st, []Target{{Sink: fs}}, DispatcherOptions{
		BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxFailures: 5,
	})
	err := d.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "5 deliveries failed") {
		t.Fatalf("err = %v", err)
	}
	if depth, _ := st.OutboxDepth("s"); depth != 1 {
		t.Fatalf("the event must stay in the outbox, depth %d", depth)
	}
}

func TestJSONLWriteErrorAcknowledgesNothing(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	j, err := OpenJSONL("full", "/dev/full", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.file.Close()
	n, err := j.Deliver(context.Background(), []store.OutboxItem{{Seq: 1, Data: line(1)}})
	if err == nil || n != 0 {
		t.Fatalf("deliver to a full disk: n=%d err=%v; want an error and nothing acknowledged", n, err)
	}
}

// TestJSONLReconcilesAHugeLastLineCheaply: a last line of 32 MiB (written before incidents were
// clipped) is reconciled by its event_id without reading it into memory, and a torn huge line is cut.
func TestJSONLReconcilesAHugeLastLineCheaply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	huge := []byte(`{"event_id":"e-huge","kind":"created","incident":{"details":"` + strings.Repeat("x", 32<<20) + `"}}`)
	var file bytes.Buffer
	file.Write(line(1))
	file.WriteByte('\n')
	file.Write(huge)
	file.WriteByte('\n')
	file.Write(huge[:10<<20]) // torn
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJSONL("file", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, err := j.reconcile([]store.OutboxItem{{Seq: 1, Data: line(1)}, {Seq: 2, Data: huge}, {Seq: 3, Data: line(3)}})
	runtime.ReadMemStats(&after)
	if err != nil || n != 2 {
		t.Fatalf("reconcile: %d already written, %v; want 2", n, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("reconciling allocated %d bytes: the huge line was read into memory", alloc)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != int64(len(line(1))+1+len(huge)+1) {
		t.Fatalf("the torn line was not cut: size %d, %v", fi.Size(), err)
	}
}
