package app

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the demo's concurrent progress lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoWritesCreatedAndUpdatedEvents runs the 15 s demo the README promises: at least 50 events,
// including at least one `updated`, and a clean exit.
func TestDemoWritesCreatedAndUpdatedEvents(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Demo(ctx, DemoOptions{Duration: 15 * time.Second, Dir: dir, Out: &out}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	events := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	kinds := map[string]int{}
	for _, ev := range events {
		kinds[ev.Kind]++
	}
	if len(events) < 50 || kinds["updated"] < 1 {
		t.Fatalf("demo wrote %d events (%v); want ≥ 50 with ≥ 1 updated\n%s", len(events), kinds, out.String())
	}
	if !strings.Contains(out.String(), "status page: http://127.0.0.1:") || !strings.Contains(out.String(), "demo finished") {
		t.Fatalf("demo output lacks the status page URL or the summary:\n%s", out.String())
	}
}
