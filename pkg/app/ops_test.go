package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// daemon is a whole wizfetch running in-process in daemon mode.
type daemon struct {
	t      *testing.T
	url    string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
	reload chan struct{}
}

func startDaemon(t *testing.T, cfg *config.Config, configPath string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{t: t, cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}, reload: make(chan struct{}, 1)}
	listening := make(chan string, 1)
	go func() {
		d.done <- Run(ctx, Options{
			Config: cfg, ConfigPath: configPath, Reload: d.reload, Mode: schedule.Daemon,
			Logger:    slog.New(slog.NewJSONHandler(d.logs, nil)),
			PollEvery: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, WizRetryFor: time.Second,
			OnListen: func(u string) { listening <- u },
		})
	}()
	select {
	case d.url = <-listening:
	case err := <-d.done:
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not listen within 20s")
	}
	t.Cleanup(func() { d.stop() })
	waitFor(t, "readiness", 20*time.Second, func() bool {
		resp, err := http.Get(d.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return d
}

// stop cancels the daemon (like SIGTERM) and returns how long it took and its error.
func (d *daemon) stop() (time.Duration, error) {
	start := time.Now()
	d.cancel()
	select {
	case err := <-d.done:
		d.done <- err // keep it for a second call
		return time.Since(start), err
	case <-time.After(30 * time.Second):
		d.t.Fatal("daemon did not stop within 30s")
		return 0, nil
	}
}

func (d *daemon) get(path, token string) (int, []byte) {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, d.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

func TestDaemonServesEveryEndpoint(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 300, Seed: 3})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	cfg.Server.AuthToken = "operator-token-123"
	d := startDaemon(t, cfg, "")
	jsonl := filepath.Join(dir, "incidents.jsonl")
	waitFor(t, "the backfill to reach the JSONL file", 30*time.Second, func() bool { return countLines(jsonl) > 100 })

	if code, _ := d.get("/healthz", ""); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code, _ := d.get("/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz = %d once running", code)
	}
	for _, path := range []string{"/", "/metrics", "/v1/status", "/v1/incidents"} {
		if code, _ := d.get(path, ""); code != http.StatusUnauthorized {
			t.Fatalf("%s without the token = %d, want 401", path, code)
		}
		if code, _ := d.get(path, "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("%s with a wrong token = %d, want 401", path, code)
		}
	}
	code, body := d.get("/metrics", "operator-token-123")
	for _, name := range []string{"wizfetch_fetch_duration_seconds", "wizfetch_build_info", "wizfetch_outbox_depth"} {
		if code != http.StatusOK || !strings.Contains(string(body), name) {
			t.Fatalf("/metrics (%d) lacks %s", code, name)
		}
	}
	code, body = d.get("/v1/status", "operator-token-123")
	var st struct {
		Instances []struct {
			Name  string `json:"name"`
			Feeds []struct {
				Feed      string `json:"feed"`
				Watermark string `json:"watermark"`
			} `json:"feeds"`
		} `json:"instances"`
		Sinks []struct {
			Name string `json:"name"`
		} `json:"sinks"`
	}
	if err := json.Unmarshal(body, &st); err != nil || code != http.StatusOK {
		t.Fatalf("/v1/status %d: %v\n%s", code, err, body)
	}
	if len(st.Instances) != 1 || st.Instances[0].Name != "default" || len(st.Instances[0].Feeds) != 2 || st.Instances[0].Feeds[0].Watermark == "" {
		t.Fatalf("/v1/status does not show the default instance's two feeds with watermarks:\n%s", body)
	}
	if len(st.Sinks) != 1 || st.Sinks[0].Name != "file" {
		t.Fatalf("/v1/status sinks: %s", body)
	}
	if strings.Contains(string(body), "operator-token-123") || strings.Contains(string(body), "wizsim-secret") {
		t.Fatal("/v1/status leaks a secret")
	}
	code, body = d.get("/v1/incidents?limit=5", "operator-token-123")
	var list struct {
		Incidents []struct {
			IssueID string `json:"issue_id"`
		} `json:"incidents"`
		Next string `json:"next"`
	}
	if err := json.Unmarshal(body, &list); err != nil || code != http.StatusOK || len(list.Incidents) != 5 || list.Next == "" {
		t.Fatalf("/v1/incidents?limit=5 (%d): %v %s", code, err, body)
	}
	if code, body := d.get("/v1/incidents/"+list.Incidents[0].IssueID, "operator-token-123"); code != http.StatusOK || !strings.Contains(string(body), list.Incidents[0].IssueID) {
		t.Fatalf("/v1/incidents/{id} = %d", code)
	}
	if code, body := d.get("/", "operator-token-123"); code != http.StatusOK || !strings.Contains(string(body), "<svg") {
		t.Fatalf("status page = %d, has no chart", code)
	}

	took, err := d.stop()
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	if took > 10*time.Second {
		t.Fatalf("graceful stop took %s, want ≤ 10s", took)
	}
}

func TestGracefulStopCancelsSlowRequests(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 300, Seed: 4, Faults: "slow:delay=60s"})
	cfg := testConfig(sim, t.TempDir(), 200)
	d := startDaemon(t, cfg, "")
	waitFor(t, "a request to be in flight", 10*time.Second, func() bool {
		return sim.Stats().Requests["graphql"] != nil || strings.Contains(d.logs.String(), "wizfetch started")
	})
	time.Sleep(200 * time.Millisecond) // let the feeds block inside the 60 s response
	took, err := d.stop()
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	if took > 10*time.Second {
		t.Fatalf("stop took %s with a 60 s request in flight; want ≤ 10s", took)
	}
}

func TestSecondDaemonOnTheSameStoreFailsFast(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 50, Seed: 5})
	cfg := testConfig(sim, t.TempDir(), 200)
	startDaemon(t, cfg, "")
	cfg2 := testConfig(sim, filepath.Dir(cfg.Store.Path), 200)
	cfg2.Server.Listen = "127.0.0.1:0"
	start := time.Now()
	err := Run(context.Background(), Options{Config: cfg2, Mode: schedule.Once})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second daemon: %v; want a store-in-use error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("second daemon took %s to fail", took)
	}
}

func TestNonLoopbackListenWithoutTokenIsRefused(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 10, Seed: 6})
	cfg := testConfig(sim, t.TempDir(), 200)
	cfg.Server.Listen = "0.0.0.0:0"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "server.auth_token") {
		t.Fatalf("validate: %v; want server.auth_token named", err)
	}
	err := Run(context.Background(), Options{Config: cfg, Mode: schedule.Once})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "auth_token") {
		t.Fatalf("run: %v; want a config error naming auth_token", err)
	}
}

func writeYAML(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func simYAML(sim *wizsim.Server, dir, extraSinks string) string {
	return fmt.Sprintf(`wiz:
  api_url: %s
  auth_url: %s
  audience: wiz-api
  client_id: wizsim-client
  client_secret: wizsim-secret
  requests_per_second: 3
fetch:
  interval: 1s
store:
  path: %s
sinks:
  - {name: file, type: jsonl, path: %s}
%sserver:
  listen: 127.0.0.1:0
`, sim.GraphQLURL(), sim.TokenURL(), filepath.Join(dir, "wizfetch.db"), filepath.Join(dir, "incidents.jsonl"), extraSinks)
}

func TestReloadSwapsConfigAndKeepsTheOldOneWhenBad(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 100, Seed: 8})
	dir := t.TempDir()
	path := filepath.Join(dir, "wizfetch.yaml")
	writeYAML(t, path, simYAML(sim, dir, ""))
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, path)
	waitFor(t, "the backfill", 30*time.Second, func() bool { return countLines(filepath.Join(dir, "incidents.jsonl")) > 10 })

	// A bad config is rejected and the daemon keeps running.
	writeYAML(t, path, "fetch:\n  max_per_fetch: 900\n")
	d.reload <- struct{}{}
	waitFor(t, "the bad reload to be logged", 10*time.Second, func() bool {
		return strings.Contains(d.logs.String(), "reload rejected") && strings.Contains(d.logs.String(), "max_per_fetch")
	})
	// A changed store path needs a restart.
	writeYAML(t, path, strings.Replace(simYAML(sim, dir, ""), "wizfetch.db", "other.db", 1))
	d.reload <- struct{}{}
	waitFor(t, "the store.path change to be refused", 10*time.Second, func() bool {
		return strings.Contains(d.logs.String(), "needs a restart")
	})
	// A good config adds a second sink: new events reach it.
	second := filepath.Join(dir, "second.jsonl")
	writeYAML(t, path, simYAML(sim, dir, fmt.Sprintf("  - {name: second, type: jsonl, path: %s}\n", second)))
	d.reload <- struct{}{}
	waitFor(t, "the reload", 10*time.Second, func() bool { return strings.Contains(d.logs.String(), "config reloaded") })
	if _, err := sim.AddIssue(wizsim.NewIssue{Severity: "HIGH"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new issue in the second sink", 30*time.Second, func() bool { return countLines(second) >= 1 })
	if code, _ := d.get("/healthz", ""); code != http.StatusOK {
		t.Fatalf("/healthz after reloads = %d", code)
	}
}

// A tenant whose Wiz fails — 503s, a 429 storm, or credentials Wiz refuses — delays no other:
// the good tenant's backfill is delivered while the bad one retries (its answers take no page slot,
// its connections are its own), and the bad one's error shows in the status.
func TestFailingTenantDoesNotStallTheOther(t *testing.T) {
	for _, tc := range []struct {
		name    string
		faults  string
		secret  string
		wantErr string // in the bad tenant's last_error
	}{
		{name: "503s", faults: "5xx:code=503", wantErr: "503"},
		{name: "429 storm", faults: "429", wantErr: "429"},
		{name: "wrong credentials", secret: "not-the-secret", wantErr: "authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := startSim(t, wizsim.Options{Issues: 200, Seed: 9})
			bad := startSim(t, wizsim.Options{Issues: 200, Seed: 10, Faults: tc.faults})
			dir := t.TempDir()
			cfg := testConfig(good, dir, 200)
			okInst := cfg.Instances[0]
			okInst.Name = "good"
			badInst := okInst
			badInst.Name = "bad"
			badInst.Wiz.APIURL, badInst.Wiz.AuthURL = bad.GraphQLURL(), bad.TokenURL()
			if tc.secret != "" {
				badInst.Wiz.ClientSecret = config.Secret(tc.secret)
			}
			cfg.Instances = []config.Instance{badInst, okInst}
			d := startDaemon(t, cfg, "")
			jsonl := filepath.Join(dir, "incidents.jsonl")
			waitFor(t, "the good tenant's backfill", 30*time.Second, func() bool { return countLines(jsonl) > 50 })
			for _, ev := range readJSONL(t, jsonl) {
				if ev.Instance != "good" {
					t.Fatalf("event from instance %q", ev.Instance)
				}
			}
			waitFor(t, "the bad tenant's error in the status", 30*time.Second, func() bool {
				_, body := d.get("/v1/status", "")
				return strings.Contains(string(body), `"last_error":"fetch page 1 of bad/`) && strings.Contains(string(body), tc.wantErr)
			})
		})
	}
}

// pushTo posts a Wiz automation-rule body to the daemon's webhook.
func pushTo(t *testing.T, url, token, issueID string) int {
	t.Helper()
	body := fmt.Sprintf(`{"trigger":{"source":"ISSUES","type":"CREATED","ruleId":"r1","ruleName":"to wizfetch"},
"issue":{"id":%q,"status":"OPEN","severity":"HIGH","created":"2026-11-20T10:00:00Z","projects":"p1, p2"},
"resource":{"id":"arn:aws:s3:::b","name":"b","type":"BUCKET","cloudPlatform":"AWS"},
"control":{"id":"wc-id-1","name":"n","description":"d","severity":"HIGH"}}`, issueID)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/wiz/webhook", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPushBecomesOneCreatedAndNothingRepeats(t *testing.T) {
	clock := &simClock{}
	clock.set(time.Now())
	sim := startSim(t, wizsim.Options{Issues: 200, Seed: 11, Now: clock.now})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	cfg.Instances[0].Fetch.Enabled = false // push-only ("Do not fetch")
	cfg.Server.Webhook.BearerToken = "wiz-push-token"
	d := startDaemon(t, cfg, "")
	jsonl := filepath.Join(dir, "incidents.jsonl")

	id, err := sim.AddIssue(wizsim.NewIssue{Type: "THREAT_DETECTION", Severity: "CRITICAL"})
	if err != nil {
		t.Fatal(err)
	}
	if code := pushTo(t, d.url, "wrong", id); code != http.StatusUnauthorized {
		t.Fatalf("push with a wrong token = %d, want 401", code)
	}
	if code := pushTo(t, d.url, "wiz-push-token", id); code != http.StatusAccepted {
		t.Fatalf("push = %d, want 202", code)
	}
	waitFor(t, "the pushed issue's event", 20*time.Second, func() bool { return countLines(jsonl) == 1 })
	if code := pushTo(t, d.url, "wiz-push-token", id); code != http.StatusAccepted {
		t.Fatalf("repeated push = %d", code)
	}
	waitFor(t, "the repeated push to be processed", 20*time.Second, func() bool {
		return strings.Count(d.logs.String(), `"msg":"push processed"`) >= 2
	})
	if _, err := d.stop(); err != nil {
		t.Fatal(err)
	}

	// A later pull of the same issue adds nothing for it.
	cfg.Instances[0].Fetch.Enabled = true
	runUntilIdle(t, cfg, nil)
	created := 0
	for _, ev := range readJSONL(t, jsonl) {
		if ev.IssueID == id {
			created++
			if ev.Kind != "created" {
				t.Fatalf("pushed issue got a %s event", ev.Kind)
			}
		}
	}
	if created != 1 {
		t.Fatalf("pushed issue has %d events after push, repeat push and pull; want 1", created)
	}
}

func TestPushWhileWizIsDownIsRetriedAfterRestart(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 50, Seed: 12, Faults: "5xx:code=503"})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	cfg.Instances[0].Fetch.Enabled = false
	cfg.Server.Webhook.Basic = config.BasicAuth{Username: "wiz", Password: "push-pass"}
	d := startDaemon(t, cfg, "")
	id, err := sim.AddIssue(wizsim.NewIssue{Severity: "HIGH"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, d.url+"/v1/wiz/webhook", strings.NewReader(fmt.Sprintf(`{"id":%q,"status":"OPEN"}`, id)))
	req.SetBasicAuth("wiz", "push-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push = %d", resp.StatusCode)
	}
	waitFor(t, "a failed refetch", 20*time.Second, func() bool { return strings.Contains(d.logs.String(), "refetch failed") })
	if _, err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if n := countLines(filepath.Join(dir, "incidents.jsonl")); n != 0 {
		t.Fatalf("%d events while Wiz was down", n)
	}

	// Wiz is back; the restarted daemon works the queue from the store.
	if err := sim.SetFaults(""); err != nil {
		t.Fatal(err)
	}
	runUntilIdle(t, cfg, nil)
	events := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	if len(events) != 1 || events[0].IssueID != id || events[0].Kind != "created" {
		t.Fatalf("after restart: %+v; want one created event for the pushed issue", events)
	}
}

func TestStartDropsRemovedSinksAndPrunesOldIncidents(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20, Seed: 13})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	st, err := store.Open(cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	longAgo := time.Now().Add(-100 * 24 * time.Hour)
	recently := time.Now().Add(-24 * time.Hour)
	err = st.Update(func(tx *store.Tx) error {
		for i := 0; i < 3; i++ {
			if _, err := tx.Enqueue("gone", "default", []byte(`{"event_id":"x"}`)); err != nil {
				return err
			}
		}
		if err := tx.PutIncident(&store.IncidentRecord{Instance: "default", IssueID: "old-closed", Status: "RESOLVED", ClosedAt: &longAgo}); err != nil {
			return err
		}
		return tx.PutIncident(&store.IncidentRecord{Instance: "default", IssueID: "recently-closed", Status: "RESOLVED", ClosedAt: &recently})
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	if err := Run(context.Background(), Options{Config: cfg, Mode: schedule.Once, NoServer: true, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "dropped the outbox of a sink no longer configured") {
		t.Fatalf("no log line about the dropped outbox:\n%s", logs.String())
	}
	st, err = store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, _ := st.OutboxDepth("gone"); n != 0 {
		t.Fatalf("outbox of the removed sink still holds %d events", n)
	}
	st.View(func(tx *store.Tx) error {
		if _, ok, _ := tx.Incident("default", "old-closed"); ok {
			t.Fatal("an incident closed 100 days ago survived store.retention (90d)")
		}
		if _, ok, _ := tx.Incident("default", "recently-closed"); !ok {
			t.Fatal("an incident closed yesterday was pruned")
		}
		return nil
	})
}
