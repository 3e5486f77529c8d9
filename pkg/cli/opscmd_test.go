package cli_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// opsConfig writes a config whose daemon is not running (nothing listens on 127.0.0.1:1) and runs one
// backfill so that the store has checkpoints and incidents.
func opsConfig(t *testing.T) (path, dir string) {
	t.Helper()
	frozen := time.Now().Add(10 * time.Minute) // every generated issue is visible
	sim, err := wizsim.New(wizsim.Options{Issues: 300, Seed: 21, Now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir = t.TempDir()
	path = filepath.Join(dir, "ops.yaml")
	body := "wiz:\n  api_url: " + sim.GraphQLURL() + "\n  auth_url: " + sim.TokenURL() +
		"\n  audience: wiz-api\n  client_id: wizsim-client\n  client_secret: wizsim-secret\n  requests_per_second: 3\n" +
		"fetch:\n  updates: false\n" +
		"store:\n  path: " + filepath.Join(dir, "state.db") + "\n" +
		"sinks:\n  - {name: file, type: jsonl, path: " + filepath.Join(dir, "incidents.jsonl") + "}\n" +
		"server:\n  listen: 127.0.0.1:1\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, path, "run", "--until-idle"); r.code != 0 {
		t.Fatalf("run --until-idle: exit %d\n%s", r.code, r.stderr)
	}
	return path, dir
}

func TestOperatorViewsReadTheStoreWhenNoDaemonRuns(t *testing.T) {
	path, dir := opsConfig(t)

	r := runCLI(t, path, "status")
	if r.code != 0 || !strings.Contains(r.stdout, `"source": "store`) || !strings.Contains(r.stdout, `"created"`) {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, path, "checkpoint", "show", "--feed", "created")
	var cps []struct {
		Instance, Feed string
		Watermark      string `json:"watermark"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cps); err != nil || r.code != 0 || len(cps) != 1 || cps[0].Watermark == "" {
		t.Fatalf("checkpoint show: %v exit %d\n%s", err, r.code, r.stdout)
	}
	r = runCLI(t, path, "incidents", "list", "--limit", "3")
	var list struct {
		Incidents []struct {
			IssueID string `json:"issue_id"`
		} `json:"incidents"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Incidents) != 3 {
		t.Fatalf("incidents list: %v\n%s", err, r.stdout)
	}
	id := list.Incidents[0].IssueID
	r = runCLI(t, path, "incidents", "show", id)
	if r.code != 0 || !strings.Contains(r.stdout, `"dbotMirrorId": "`+id+`"`) {
		t.Fatalf("incidents show: exit %d\n%s", r.code, r.stdout)
	}
	if r := runCLI(t, path, "incidents", "show", "00000000-0000-4000-8000-000000000000"); r.code != 1 {
		t.Fatalf("show of an unknown issue: exit %d", r.code)
	}

	// Repairs: replay one incident to the file sink, then reset the checkpoint.
	r = runCLI(t, path, "incidents", "replay", "--sink", "file", "--issue", id)
	if r.code != 0 || !strings.Contains(r.stdout, "queued 1 event") {
		t.Fatalf("replay: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, path, "incidents", "replay", "--sink", "nope"); r.code != 2 {
		t.Fatalf("replay to an unknown sink: exit %d, want 2", r.code)
	}
	r = runCLI(t, path, "checkpoint", "reset", "--feed", "created", "--to", "2d")
	if r.code != 0 || !strings.Contains(r.stdout, "reset 1 checkpoint") {
		t.Fatalf("checkpoint reset: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, path, "checkpoint", "reset", "--to", "yesterday"); r.code != 2 {
		t.Fatalf("reset with a bad --to: exit %d, want 2", r.code)
	}
	if r := runCLI(t, path, "incidents", "dead-letter", "--sink", "file"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("dead-letter: exit %d %q", r.code, r.stdout)
	}

	// While a daemon holds the store, repairs refuse with a clear message.
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r = runCLI(t, path, "checkpoint", "reset")
	if r.code != 1 || !strings.Contains(r.stderr, "in use") || !strings.Contains(r.stderr, "stop the daemon") {
		t.Fatalf("reset while locked: exit %d\n%s", r.code, r.stderr)
	}
	r = runCLI(t, path, "incidents", "replay", "--sink", "file", "--dead-letter")
	if r.code != 1 || !strings.Contains(r.stderr, "in use") {
		t.Fatalf("replay while locked: exit %d\n%s", r.code, r.stderr)
	}
}

// daemonConfig writes a config whose daemon listens where the test server daemonURL does, with the
// server token token, and returns its path and text.
func daemonConfig(t *testing.T, daemonURL, token string) (path, text string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(daemonURL, "http://"))
	dir := t.TempDir()
	path = filepath.Join(dir, "c.yaml")
	text = "wiz:\n  api_url: https://api.us1.app.wiz.io/graphql\nstore:\n  path: " + filepath.Join(dir, "s.db") +
		"\nserver:\n  listen: 127.0.0.1:" + port + "\n  auth_token: " + token + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, text
}

func TestStatusAndHealthcheckUseTheRunningDaemon(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status" && r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"source":"daemon"}`))
	}))
	defer srv.Close()
	path, _ := daemonConfig(t, srv.URL, "tok-123")
	if r := runCLI(t, path, "status"); r.code != 0 || !strings.Contains(r.stdout, `"source": "daemon"`) {
		t.Fatalf("status via the API: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, path, "healthcheck"); r.code != 0 {
		t.Fatalf("healthcheck: exit %d\n%s", r.code, r.stderr)
	}
	srv.Close()
	if r := runCLI(t, path, "healthcheck"); r.code != 1 {
		t.Fatalf("healthcheck with no daemon: exit %d, want 1", r.code)
	}
}

// `checkpoint show` asks the running daemon first (DESIGN.md §4), with its filters, and prints its
// answer; it used to open the store first and, only when the daemon held it, print the whole
// /v1/status instead of checkpoints.
func TestCheckpointShowUsesTheRunningDaemon(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/checkpoints" || r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		json.NewEncoder(w).Encode([]map[string]any{{"instance": q.Get("instance"), "feed": q.Get("feed"), "mid_window": false}})
	}))
	defer srv.Close()
	path, cfg := daemonConfig(t, srv.URL, "tok-123")
	r := runCLI(t, path, "checkpoint", "show", "--instance", "eu", "--feed", "updates")
	var got []struct{ Instance, Feed string }
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 || len(got) != 1 || got[0].Instance != "eu" || got[0].Feed != "updates" {
		t.Fatalf("checkpoint show via the API: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if r := runCLI(t, path, "checkpoint", "show", "--feed", "push"); r.code != 2 || !strings.Contains(r.stderr, "--feed") {
		t.Fatalf("checkpoint show --feed push: exit %d, want 2 naming --feed\n%s", r.code, r.stderr)
	}
	// A daemon that refuses the token is reported as such, not hidden behind the store.
	bad := strings.Replace(cfg, "tok-123", "tok-wrong", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, path, "checkpoint", "show"); r.code != 1 || !strings.Contains(r.stderr, "daemon answered 401") {
		t.Fatalf("checkpoint show with a wrong token: exit %d, want 1 and the daemon's 401\n%s", r.code, r.stderr)
	}
}
