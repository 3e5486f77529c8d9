package app

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// simClock is a settable clock for the simulator.
type simClock struct{ t atomic.Int64 }

func (c *simClock) now() time.Time      { return time.Unix(0, c.t.Load()).UTC() }
func (c *simClock) set(t time.Time)     { c.t.Store(t.UnixNano()) }
func (c *simClock) add(d time.Duration) { c.t.Add(int64(d)) }

func startSim(t *testing.T, opts wizsim.Options) *wizsim.Server {
	t.Helper()
	sim, err := wizsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func testConfig(sim *wizsim.Server, dir string, maxPerFetch int) *config.Config {
	cfg := DemoConfig(sim.GraphQLURL(), sim.TokenURL(), dir, "127.0.0.1:0")
	cfg.Wiz.RequestsPerSecond = 0 // unlimited against the local simulator
	for i := range cfg.Instances {
		cfg.Instances[i].Wiz.RequestsPerSecond = 0
		cfg.Instances[i].Fetch.MaxPerFetch = maxPerFetch
	}
	return cfg
}

type jsonlEvent struct {
	EventID     string `json:"event_id"`
	Kind        string `json:"kind"`
	Instance    string `json:"instance"`
	IssueID     string `json:"issue_id"`
	IssueStatus string `json:"issue_status"`
	Incident    struct {
		Name         string  `json:"name"`
		Severity     float64 `json:"severity"`
		RawJSON      string  `json:"rawJSON"`
		DbotMirrorID string  `json:"dbotMirrorId"`
	} `json:"incident"`
}

// readJSONL parses every line, failing on a torn or invalid one.
func readJSONL(t *testing.T, path string) []jsonlEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []jsonlEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		var ev jsonlEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is not a whole event: %v", len(out)+1, err)
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// firstStart reads the created feed's pinned first-run start from the store.
func firstStart(t *testing.T, path string) time.Time {
	t.Helper()
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var cp store.Checkpoint
	if err := st.View(func(tx *store.Tx) error {
		var err error
		cp, _, err = tx.Checkpoint("default", feed.Created)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return cp.FirstStart
}

// expectedCreated is every issue the created feed's filters match, inside the window, visible at now.
func expectedCreated(sim *wizsim.Server, start, now time.Time) map[string]bool {
	want := map[string]bool{}
	for _, is := range sim.Snapshot() {
		if (is.Status == "OPEN" || is.Status == "IN_PROGRESS") && is.CreatedAt.After(start) && !now.Before(is.VisibleAt) {
			want[is.ID] = true
		}
	}
	return want
}

// checkExactlyOnce asserts one created event per expected issue, none for others, and unique ids.
func checkExactlyOnce(t *testing.T, events []jsonlEvent, want map[string]bool) {
	t.Helper()
	ids := map[string]bool{}
	created := map[string]int{}
	for _, ev := range events {
		if ids[ev.EventID] {
			t.Fatalf("event %s written twice", ev.EventID)
		}
		ids[ev.EventID] = true
		if ev.Kind == "created" {
			created[ev.IssueID]++
		}
		if ev.Incident.DbotMirrorID != ev.IssueID || ev.Incident.RawJSON == "" {
			t.Fatalf("event %s carries a broken incident: %+v", ev.EventID, ev.Incident)
		}
	}
	for id := range want {
		if created[id] != 1 {
			t.Fatalf("issue %s: %d created events, want 1 (%d expected issues, %d created)", id, created[id], len(want), len(created))
		}
	}
	for id, n := range created {
		if !want[id] {
			t.Fatalf("issue %s got %d created events but is outside the filters or window", id, n)
		}
	}
}

func runUntilIdle(t *testing.T, cfg *config.Config, fetches *[]feed.Result) {
	t.Helper()
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, Options{
		Config: cfg, Mode: schedule.UntilIdle, PollEvery: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, WizRetryFor: 5 * time.Second,
		OnFetch: func(_, _ string, res feed.Result, err error) {
			if fetches != nil && err == nil {
				mu.Lock()
				*fetches = append(*fetches, res)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatalf("run --until-idle: %v", err)
	}
}

func TestUntilIdleExactlyOnceUnderFaults(t *testing.T) {
	clock := &simClock{}
	clock.set(time.Now().Add(10 * time.Minute)) // every generated issue is visible
	sim := startSim(t, wizsim.Options{
		Issues: 3000, Seed: 42, Now: clock.now,
		// 429 bursts, 5xx blips, partial data, a malformed body and cursor invalidation, all bounded.
		Faults: "429:every=9,burst=2;5xx:every=13,count=4;partial:every=17,count=2;malformed:count=1;cursor:every=11,count=2",
	})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 150)
	var fetches []feed.Result
	runUntilIdle(t, cfg, &fetches)

	events := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	want := expectedCreated(sim, firstStart(t, cfg.Store.Path), clock.now())
	if len(want) < 1000 {
		t.Fatalf("only %d expected issues: the simulator data is not what this test assumes", len(want))
	}
	checkExactlyOnce(t, events, want)
	for _, r := range fetches {
		if r.Emitted() > 150 {
			t.Fatalf("a fetch emitted %d events, above max_per_fetch 150", r.Emitted())
		}
	}
	st := sim.Stats()
	if st.Throttled == 0 {
		t.Fatalf("no 429 was sent: the fault spec did not apply (stats %+v)", st)
	}

	// A second run emits nothing new.
	runUntilIdle(t, cfg, nil)
	if again := readJSONL(t, filepath.Join(dir, "incidents.jsonl")); len(again) != len(events) {
		t.Fatalf("second run wrote %d more events", len(again)-len(events))
	}

	// Status changes give exactly one updated event each, with the new status.
	var changed []string
	for id := range want {
		if len(changed) == 5 {
			break
		}
		if err := sim.SetStatus(id, "RESOLVED"); err != nil {
			t.Fatal(err)
		}
		changed = append(changed, id)
	}
	clock.add(time.Second)
	runUntilIdle(t, cfg, nil)
	runUntilIdle(t, cfg, nil)
	after := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	updates := map[string][]string{}
	for _, ev := range after[len(events):] {
		if ev.Kind != "updated" {
			t.Fatalf("unexpected %s event for %s", ev.Kind, ev.IssueID)
		}
		updates[ev.IssueID] = append(updates[ev.IssueID], ev.IssueStatus)
	}
	for _, id := range changed {
		if got := updates[id]; len(got) != 1 || got[0] != "RESOLVED" {
			t.Fatalf("issue %s: updated events %v, want exactly one RESOLVED", id, got)
		}
	}
	if len(updates) != len(changed) {
		t.Fatalf("updated events for %d issues, want %d", len(updates), len(changed))
	}

	// The dedup state stays bounded: marks older than watermark - 2×overlap are gone.
	s, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.View(func(tx *store.Tx) error {
		n, err := tx.MarkCount("default", feed.Updates)
		if err != nil {
			t.Fatal(err)
		}
		cp, _, err := tx.Checkpoint("default", feed.Updates)
		if err != nil {
			t.Fatal(err)
		}
		// Only changes within 2×overlap of the watermark may keep a mark.
		cutoff := cp.Watermark.Add(-2 * cfg.Instances[0].Fetch.Overlap.D())
		recent := 0
		for _, is := range sim.Snapshot() {
			if is.StatusChangedAt != nil && !is.StatusChangedAt.Before(cutoff) {
				recent++
			}
		}
		if n > recent {
			t.Fatalf("%d updates-feed marks kept, but only %d changes are within 2×overlap of the watermark", n, recent)
		}
		if c, _ := tx.MarkCount("default", feed.Created); c != 0 {
			t.Fatalf("the created feed keeps %d marks; its incidents are its marks", c)
		}
		return nil
	})
}

func TestLateVisibleIssuesArriveOnceWithinOverlap(t *testing.T) {
	clock := &simClock{}
	clock.set(time.Now())
	sim := startSim(t, wizsim.Options{Issues: 1500, Seed: 7, Now: clock.now})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	runUntilIdle(t, cfg, nil)
	hidden := 0
	for _, is := range sim.Snapshot() {
		if clock.now().Before(is.VisibleAt) {
			hidden++
		}
	}
	if hidden == 0 {
		t.Fatal("no issue was hidden by ingestion lag: the test would prove nothing")
	}
	first := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))

	clock.add(6 * time.Minute) // every lag has passed
	runUntilIdle(t, cfg, nil)
	events := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	if len(events) <= len(first) {
		t.Fatalf("no late issue arrived (%d hidden before)", hidden)
	}
	want := expectedCreated(sim, firstStart(t, cfg.Store.Path), clock.now())
	created := map[string]int{}
	for _, ev := range events {
		if ev.Kind == "created" {
			created[ev.IssueID]++
		}
	}
	for id := range want {
		if created[id] != 1 {
			t.Fatalf("issue %s: %d created events, want 1", id, created[id])
		}
	}
}
