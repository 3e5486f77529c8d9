package app

import (
	"compress/gzip"
	"context"
	"encoding/json"
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

// The upgrade fixture is a store (and its JSONL file) left behind by a wizfetch daemon stopped in the
// middle of a backfill: the created feed has committed three pages of 200, the JSONL sink delivered
// some of them, and the webhook sink "hook" delivered nothing (its receiver answered 400 to the first event,
// which went to the dead letter, then 503 to everything). It was written by the release whose store
// schema is 4 (commit 0dbc14f plus issue 16's fixes) with
//
//	WIZFETCH_WRITE_UPGRADE_FIXTURE=1 go test ./pkg/app -run TestWriteUpgradeFixture -count=1
//
// and lives in testdata/store/schema4/ at the repository root, gzipped. TestUpgradeFromSchema4
// opens it with the code of today, against the same simulated tenant, and finishes the backfill.
const (
	upgradeSeed        = 5
	upgradeIssues      = 1000
	upgradeFixtureDir  = "../../testdata/store/schema4"
	upgradeHookSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	upgradeFetchesDone = 3
)

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
		t.Skip("writes testdata/store/schema4; set WIZFETCH_WRITE_UPGRADE_FIXTURE=1 to regenerate it")
	}
	sim := upgradeSim(t)
	var mu sync.Mutex
	first := true
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fetches := 0
	err := Run(ctx, Options{
		Config: cfg, Mode: schedule.Daemon, Now: func() time.Time { return upgradeNow }, NoServer: true,
		PollEvery: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, WizRetryFor: 5 * time.Second,
		OnFetch: func(_, name string, res feed.Result, err error) {
			if err == nil && name == feed.Created && res.Created > 0 {
				mu.Lock()
				defer mu.Unlock()
				if fetches++; fetches == upgradeFetchesDone {
					cancel()
				}
			}
		},
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := os.MkdirAll(upgradeFixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wizfetch.db", "incidents.jsonl"} {
		gzipFile(t, filepath.Join(dir, name), filepath.Join(upgradeFixtureDir, name+".gz"))
	}
}

// TestUpgradeFromSchema4 opens the fixture written by the schema-4 release and finishes its backfill:
// every expected issue reaches the JSONL exactly once (the fixture's lines included), the webhook
// sink delivers every event it held exactly once, and its dead letter is still readable.
func TestUpgradeFromSchema4(t *testing.T) {
	sim := upgradeSim(t)
	dir := t.TempDir()
	for _, name := range []string{"wizfetch.db", "incidents.jsonl"} {
		gunzipFile(t, filepath.Join(upgradeFixtureDir, name+".gz"), filepath.Join(dir, name))
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
