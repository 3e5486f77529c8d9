package app

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// An upgrade fixture is a store (and its JSONL file) left behind by a wizfetch daemon stopped in the
// middle of a backfill: the created feed has committed at least three pages of 200, the JSONL sink delivered
// some of them, and the webhook sink "hook" delivered nothing (its receiver answered 400 to the first event,
// which went to the dead letter, then 503 to everything). Each is written by a release with
//
//	WIZFETCH_WRITE_UPGRADE_FIXTURE=1 go test ./pkg/app -run TestWriteUpgradeFixture -count=1
//
// into testdata/store/schema<N>/ at the repository root (N the release's store schema), gzipped:
//   - schema4: the release whose store schema is 4 (commit 0dbc14f plus issue 16's fixes);
//   - schema6: the release whose store schema is 6 (commit 52e5fcb, its upgradeFixtureDir set to
//     schema6 and the run stopped once the hook had answered twice, so that its dead letter is
//     there), which wrote every value with a codec byte.
//
// TestUpgrade opens each with the code of today, against the same simulated tenant, and finishes the
// backfill.
const (
	upgradeSeed        = 5
	upgradeIssues      = 1000
	upgradeHookSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	upgradeFetchesDone = 3
)

// upgradeFixtureDir is the fixture of the releases of store schema n.
func upgradeFixtureDir(n int) string { return fmt.Sprintf("../../testdata/store/schema%d", n) }

// upgradeNow is the simulated tenant's frozen clock, and the daemon's, in both phases.
var upgradeNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func upgradeConfig(sim *wizsim.Server, dir, hookURL string) *config.Config {
	cfg := testConfig(sim, dir, 200)
	hook := config.DefaultSink(config.SinkWebhook)
	hook.Name, hook.URL, hook.Secret = "hook", hookURL, upgradeHookSecret
	hook.RetryFor = config.Duration(time.Hour)
	cfg.Sinks = append(cfg.Sinks, hook)
	return cfg
}

func upgradeSim(t *testing.T) *wizsim.Server {
	return startSim(t, wizsim.Options{Issues: upgradeIssues, Seed: upgradeSeed, Now: func() time.Time { return upgradeNow }})
}

// TestWriteUpgradeFixture writes the fixture; it runs only when asked to (see above).
func TestWriteUpgradeFixture(t *testing.T) {
	if os.Getenv("WIZFETCH_WRITE_UPGRADE_FIXTURE") == "" {
		t.Skip("writes testdata/store/schema<N>; set WIZFETCH_WRITE_UPGRADE_FIXTURE=1 to write this release's")
	}
	sim := upgradeSim(t)
	var mu sync.Mutex
	first := true
	hits, fetches := 0, 0
	var cancel context.CancelFunc
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		// Stop once the hook has answered twice (its dead letter is written) and three pages are in.
		if hits++; hits >= 2 && fetches >= upgradeFetchesDone {
			cancel()
		}
		if first {
			first = false
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"fixture: refused for good"}`)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer receiver.Close()
	dir := t.TempDir()
	cfg := upgradeConfig(sim, dir, receiver.URL)
	for i := range cfg.Instances {
		cfg.Instances[i].Fetch.Updates = false
	}
	ctx, cancelRun := context.WithCancel(context.Background())
	cancel = cancelRun
	defer cancel()
	err := Run(ctx, Options{
		Config: cfg, Mode: schedule.Daemon, Now: func() time.Time { return upgradeNow }, NoServer: true,
		PollEvery: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, WizRetryFor: 5 * time.Second,
		OnFetch: func(_, name string, res feed.Result, err error) {
			if err == nil && name == feed.Created && res.Created > 0 {
				mu.Lock()
				defer mu.Unlock()
				if fetches++; fetches >= upgradeFetchesDone && hits >= 2 {
					cancel()
				}
			}
		},
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	fixture := upgradeFixtureDir(store.SchemaVersion)
	if err := os.MkdirAll(fixture, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wizfetch.db", "incidents.jsonl"} {
		gzipFile(t, filepath.Join(dir, name), filepath.Join(fixture, name+".gz"))
	}
}

// TestUpgrade opens the fixture written by each older release and finishes its backfill: every
// expected issue reaches the JSONL exactly once (the fixture's lines included), the webhook sink
// delivers every event it held exactly once, its dead letter is still readable, and the store ends
// at this release's schema.
func TestUpgrade(t *testing.T) {
	for _, schema := range []int{4, 6} {
		t.Run(fmt.Sprintf("schema%d", schema), func(t *testing.T) { testUpgrade(t, schema) })
	}
}

func testUpgrade(t *testing.T, schema int) {
	sim := upgradeSim(t)
	dir := t.TempDir()
	for _, name := range []string{"wizfetch.db", "incidents.jsonl"} {
		gunzipFile(t, filepath.Join(upgradeFixtureDir(schema), name+".gz"), filepath.Join(dir, name))
	}
	if schema >= 6 {
		// A read-only open reads a store it needs not migrate, and leaves it as it is.
		st, err := store.Open(filepath.Join(dir, "wizfetch.db"), store.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only open of the schema-%d fixture: %v", schema, err)
		}
		stats, err := st.Stats()
		_ = st.Close()
		if err != nil || stats.SchemaVersion != schema || stats.Incidents["default"] < upgradeFetchesDone*200 || stats.DeadLetters["hook"] != 1 {
			t.Fatalf("the schema-%d fixture read-only: %+v, %v", schema, stats, err)
		}
	}
	before := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	if len(before) == 0 || len(before) >= upgradeFetchesDone*200 {
		// The daemon was stopped while the JSONL sink was still delivering the committed pages.
		t.Fatalf("the fixture's JSONL holds %d events, want some but not all of the %d committed", len(before), upgradeFetchesDone*200)
	}
	var mu sync.Mutex
	hookIDs := map[string]int{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			IssueID string `json:"issue_id"`
			Kind    string `json:"kind"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &ev); err != nil || ev.IssueID == "" {
			t.Errorf("the webhook got a broken event: %.200s", body)
		}
		mu.Lock()
		hookIDs[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()
	cfg := upgradeConfig(sim, dir, receiver.URL)
	for i := range cfg.Instances {
		cfg.Instances[i].Fetch.Updates = false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, Options{
		Config: cfg, Mode: schedule.UntilIdle, Now: func() time.Time { return upgradeNow.Add(time.Second) }, NoServer: true,
		PollEvery: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, WizRetryFor: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("run --until-idle on the upgraded store: %v", err)
	}

	events := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	want := expectedCreated(sim, firstStart(t, cfg.Store.Path), upgradeNow)
	if len(want) <= len(before) {
		t.Fatalf("only %d expected issues: the fixture already held them all", len(want))
	}
	checkExactlyOnce(t, events, want)

	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if stats, err := st.Stats(); err != nil || stats.SchemaVersion != store.SchemaVersion {
		t.Fatalf("the upgraded store's schema: %+v, %v; want %d", stats, err, store.SchemaVersion)
	}
	dls, err := st.DeadLetters("hook", 0)
	if err != nil || len(dls) != 1 {
		t.Fatalf("the hook's dead letters: %d, %v; want the fixture's one", len(dls), err)
	}
	var dead jsonlEvent
	if err := json.Unmarshal(dls[0].Data, &dead); err != nil || dead.Incident.DbotMirrorID != dead.IssueID || dead.Incident.RawJSON == "" {
		t.Fatalf("the fixture's dead letter no longer reads as an event: %v %.200s", err, dls[0].Data)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range events {
		n := hookIDs[ev.EventID]
		switch {
		case ev.EventID == dead.EventID && n != 0:
			t.Fatalf("the dead-lettered event %s was delivered %d times", ev.EventID, n)
		case ev.EventID != dead.EventID && n != 1:
			t.Fatalf("event %s reached the webhook %d times, want once", ev.EventID, n)
		}
	}
	if len(hookIDs) != len(events)-1 {
		t.Fatalf("the webhook got %d distinct events, want %d", len(hookIDs), len(events)-1)
	}
}

func gzipFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	zw, err := gzip.NewWriterLevel(out, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func gunzipFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
