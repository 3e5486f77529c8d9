package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	storepkg "github.com/wizfetch/wizfetch/pkg/store"
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

// TestDemoStartsFresh: each demo run simulates a new tenant, so it starts from a fresh store and
// file (DESIGN.md §4). With the last run's checkpoints the second run fetched only the issues
// created after them, and never the new tenant's backlog. A directory with a store the demo did
// not write is refused, and left as it is.
func TestDemoStartsFresh(t *testing.T) {
	dir := t.TempDir()
	run := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var out syncBuffer
		if err := Demo(ctx, DemoOptions{Issues: 400, Duration: 5 * time.Second, Dir: dir, Out: &out}); err != nil {
			t.Fatalf("demo: %v\n%s", err, out.String())
		}
	}
	run()
	firstRun := map[string]bool{}
	for _, ev := range readJSONL(t, filepath.Join(dir, "incidents.jsonl")) {
		firstRun[ev.IssueID] = true
	}
	run()
	created, left := 0, 0
	for _, ev := range readJSONL(t, filepath.Join(dir, "incidents.jsonl")) {
		switch {
		case firstRun[ev.IssueID]:
			left++
		case ev.Kind == "created":
			created++
		}
	}
	// The backfill is a page or two at the demo's 20 requests a second; the bounds leave room for a
	// slow machine, and the code before this test wrote 3 created events in the second run.
	if len(firstRun) < 20 || left != 0 || created < 20 {
		t.Errorf("first run: %d issues; after the second: %d events of the first run's issues and %d created of the new tenant's; "+
			"want ≥ 20, 0 (a fresh file) and ≥ 20 (the new tenant's backlog)", len(firstRun), left, created)
	}

	foreign := t.TempDir()
	store := filepath.Join(foreign, "wizfetch.db")
	if err := os.WriteFile(store, []byte("somebody's store"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Demo(context.Background(), DemoOptions{Issues: 10, Duration: time.Second, Dir: foreign})
	if _, ok := errors.AsType[*DemoDirError](err); !ok {
		t.Fatalf("demo in a directory with a foreign store: %v, want a DemoDirError", err)
	}
	if b, _ := os.ReadFile(store); string(b) != "somebody's store" {
		t.Errorf("the foreign store was changed: %q", b)
	}

	// A demo directory whose store another process holds (a demo still running) is refused before
	// anything is removed.
	held, err := storepkg.Open(filepath.Join(dir, "wizfetch.db"), storepkg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = Demo(context.Background(), DemoOptions{Issues: 10, Duration: time.Second, Dir: dir})
	held.Close()
	if e, ok := errors.AsType[*DemoDirError](err); !ok || !strings.Contains(e.Error(), "in use") {
		t.Fatalf("demo in a directory whose store is held: %v, want a DemoDirError saying it is in use", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "incidents.jsonl")); err != nil {
		t.Errorf("the running demo's file was removed: %v", err)
	}

	// The default directory of an older wizfetch (no marker) is the demo's own.
	old := filepath.Join(t.TempDir(), "wizfetch-demo")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "incidents.jsonl"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Demo(context.Background(), DemoOptions{Issues: 10, Duration: time.Second, Dir: old}); err != nil {
		t.Fatalf("demo in an older default directory: %v", err)
	}
}
