package push

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// boundedStore is the daemon's queue: the real store, bounded per instance.
type boundedStore struct {
	st  *store.Store
	max int
}

func (b boundedStore) EnqueueRefetch(item store.RefetchItem) error {
	return b.st.EnqueueRefetchBounded(item, b.max)
}

// TestFullQueueAnswers429: beyond the per-instance cap a new issue is refused with 429 and a
// Retry-After, counted as queue_full, and not stored; a repeat of a queued issue and other instances
// are still accepted; a drained queue takes pushes again.
func TestFullQueueAnswers429(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "wizfetch.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	obs := &observations{}
	h := NewHandler(Options{
		Auth: Auth{BearerToken: testToken}, Instances: []string{"a", "b"},
		Queue: boundedStore{st: st, max: 3}, Observe: obs.observe,
	})
	f := &fixture{h: h}
	id := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }
	for i := 0; i < 3; i++ {
		if rec := f.do(http.MethodPost, Path+"/a", "Bearer "+testToken, body(id(i))); rec.Code != http.StatusAccepted {
			t.Fatalf("push %d: %d", i, rec.Code)
		}
	}
	rec := f.do(http.MethodPost, Path+"/a", "Bearer "+testToken, body(id(3)))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != QueueFullRetryAfter {
		t.Fatalf("push over the cap: %d Retry-After %q, want 429 %s", rec.Code, rec.Header().Get("Retry-After"), QueueFullRetryAfter)
	}
	if got := obs.last(); got != "a:"+ResultQueueFull {
		t.Fatalf("observed %q, want a:%s", got, ResultQueueFull)
	}
	if rec := f.do(http.MethodPost, Path+"/a", "Bearer "+testToken, body(id(1))); rec.Code != http.StatusAccepted {
		t.Fatalf("a repeat of a queued issue: %d, want 202", rec.Code)
	}
	if rec := f.do(http.MethodPost, Path+"/b", "Bearer "+testToken, body(id(3))); rec.Code != http.StatusAccepted {
		t.Fatalf("another instance: %d, want 202", rec.Code)
	}
	if n, err := st.RefetchDepth(); err != nil || n != 4 {
		t.Fatalf("queued %d (%v), want 4", n, err)
	}
	if err := st.CompleteRefetch("a", id(0)); err != nil {
		t.Fatal(err)
	}
	if rec := f.do(http.MethodPost, Path+"/a", "Bearer "+testToken, body(id(3))); rec.Code != http.StatusAccepted {
		t.Fatalf("after the queue drained by one: %d, want 202", rec.Code)
	}
}

// TestPushFieldsAreClippedInLogs: a push whose informational fields are huge writes short log lines.
func TestPushFieldsAreClippedInLogs(t *testing.T) {
	var logs bytes.Buffer
	q := &memQueue{}
	h := NewHandler(Options{
		Auth: Auth{BearerToken: testToken}, Instances: []string{"default"}, Queue: q,
		Now: func() time.Time { return fixedNow }, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	huge := strings.Repeat("A", 150<<10) // five of them stay under the 1 MiB body limit
	payload, _ := json.Marshal(map[string]any{
		"trigger":    map[string]any{"type": huge, "ruleName": huge},
		"issue":      map[string]any{"id": issueID, "status": huge, "severity": huge},
		"sourceRule": map[string]any{"name": huge},
	})
	f := &fixture{h: h}
	if rec := f.do(http.MethodPost, Path, "Bearer "+testToken, string(payload)); rec.Code != http.StatusAccepted {
		t.Fatalf("push: %d %s", rec.Code, rec.Body.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if len(line) > 2048 {
			t.Fatalf("a log line of %d bytes: %.200s…", len(line), line)
		}
	}
	if !strings.Contains(logs.String(), "AAAA") {
		t.Fatalf("the trigger is not logged at all: %s", logs.String())
	}
}
