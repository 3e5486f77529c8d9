package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/metrics"
	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const token = "tok-S3CRET-value"

// fixedNow is the clock of every tracker in these tests.
var fixedNow = time.Date(2025, 6, 1, 12, 0, 30, 0, time.UTC)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "wizfetch.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// populatedTracker has two instances, three feeds (one failing), two sinks, paused by one, and the
// given minutes of history.
func populatedTracker(minutes int) *status.Tracker {
	now := fixedNow.Add(-time.Duration(minutes) * time.Minute)
	tr := status.New("1.2.3", func() time.Time { return now })
	tr.AddSink("file", "jsonl", 10000)
	tr.AddSink("xsoar", "xsoar", 100)
	tr.AddFeed("default", feed.Updates)
	for i := 0; i < minutes; i++ {
		now = now.Add(time.Minute)
		tr.FetchDone("default", feed.Created, feed.Result{
			Fetched: 12, Created: 10 + i%7, Watermark: now.Add(-5 * time.Minute),
			Ignored: map[string]int{feed.ReasonDuplicate: 2},
		}, nil)
		tr.Delivery("file", 10+i%7, nil)
	}
	tr.FetchDone("default", feed.Updates, feed.Result{Fetched: 4, Updated: 3, Watermark: now.Add(-30 * time.Second), Backlog: true}, nil)
	now = fixedNow
	tr.FetchDone("eu", feed.Created, feed.Result{}, errors.New(`wiz: 401 <script>alert("x")</script>`))
	tr.Delivery("xsoar", 0, errors.New("xsoar: 502 Bad Gateway"))
	tr.SetPaused("default", "xsoar")
	return tr
}

// seedIncidents writes incidents for two instances; updated times are 1..n minutes after base.
func seedIncidents(t *testing.T, st *store.Store) {
	t.Helper()
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	recs := []struct{ inst, id, status string }{
		{"default", "id-01", "OPEN"},
		{"default", "id-02", "RESOLVED"},
		{"default", "id-03", "IN_PROGRESS"},
		{"default", "id-04", "OPEN"},
		{"default", "shared", "OPEN"},
		{"eu", "id-05", "REJECTED"},
		{"eu", "id-06", "OPEN"},
		{"eu", "shared", "RESOLVED"},
	}
	err := st.Update(func(tx *store.Tx) error {
		for i, r := range recs {
			up := base.Add(time.Duration(i+1) * time.Minute)
			rec := &store.IncidentRecord{
				Instance: r.inst, IssueID: r.id, Status: r.status, CreatedAt: base, FirstSeen: base, UpdatedAt: up,
				Version: i + 1, LastEventID: fmt.Sprintf("ev-%d", i),
				Incident: []byte(fmt.Sprintf(`{"name":"Rule - %s","dbotMirrorId":%q}`, r.id, r.id)),
			}
			if r.status == "RESOLVED" || r.status == "REJECTED" {
				rec.ClosedAt = &up
			}
			if err := tx.PutIncident(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed incidents: %v", err)
	}
}

func newServer(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// get runs one request against the server's handler in process.
func get(t *testing.T, h http.Handler, method, target, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Host = "127.0.0.1:8080" // the listener's own name (hostcheck.go refuses foreign ones)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body.String(), err)
	}
	return v
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.1.2.3:80", true},
		{"[::1]:80", true},
		{"localhost:8080", true},
		{"LOCALHOST:8080", true},
		{"127.0.0.1", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"example.com:8080", false},
		{"localhost.example.com:8080", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.listen, func(t *testing.T) {
			if got := IsLoopback(tc.listen); got != tc.want {
				t.Errorf("IsLoopback(%q) = %v, want %v", tc.listen, got, tc.want)
			}
		})
	}
}

func TestNewListenRules(t *testing.T) {
	tests := []struct {
		name, listen, token, wantErr string
	}{
		{"any interface without token", "0.0.0.0:8080", "",
			"server.auth_token is required when server.listen (0.0.0.0:8080) is not a loopback address"},
		{"empty host without token", ":8080", "",
			"server.auth_token is required when server.listen (:8080) is not a loopback address"},
		{"any interface with token", "0.0.0.0:8080", token, ""},
		{"loopback without token", "127.0.0.1:8080", "", ""},
		{"not host:port", "8080", "", `server.listen "8080" is not host:port`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Listen: tc.listen, AuthToken: tc.token})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestAuthRules(t *testing.T) {
	st := openStore(t)
	webhook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The push receiver sees the request's own Authorization header and does its own auth.
		w.Header().Set("X-Webhook", "yes")
		w.WriteHeader(http.StatusAccepted)
	})
	actions := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Actions", r.URL.Path)
		w.WriteHeader(http.StatusOK)
	})
	const (
		right = "Bearer " + token
		lower = "bearer " + token
		wrong = "Bearer nope"
		basic = "Basic dXNlcjpwYXNz"
	)
	type call struct {
		method, path, auth string
		want               int
	}
	tests := []struct {
		name  string
		token string
		calls []call
	}{
		{"no token configured", "", []call{
			{"GET", "/healthz", "", 200},
			{"GET", "/readyz", "", 503}, // not ready yet, but never 401
			{"GET", "/", "", 200},
			{"GET", "/metrics", "", 200},
			{"GET", "/v1/status", "", 200},
			{"GET", "/v1/incidents", "", 200},
			{"GET", "/v1/incidents/nope", "", 404},
			{"POST", "/v1/wiz/webhook", "", 202},
			{"POST", "/v1/wiz/webhook/default", "", 202},
			{"POST", "/v1/issues/abc/resolve", "", 403},
			{"POST", "/v1/issues/abc/resolve", right, 403}, // no token configured: writes are closed
		}},
		{"token configured", token, []call{
			{"GET", "/healthz", "", 200},
			{"GET", "/readyz", "", 503},
			{"GET", "/", "", 401},
			{"GET", "/", wrong, 401},
			{"GET", "/", basic, 401},
			{"GET", "/", right, 200},
			{"GET", "/", lower, 200},
			{"GET", "/metrics", "", 401},
			{"GET", "/metrics", right, 200},
			{"GET", "/v1/status", wrong, 401},
			{"GET", "/v1/status", right, 200},
			{"GET", "/v1/incidents", "", 401},
			{"GET", "/v1/incidents", right, 200},
			{"GET", "/v1/incidents/x", "", 401},
			{"POST", "/v1/wiz/webhook", "", 202},       // never behind the server token
			{"POST", "/v1/wiz/webhook/eu", wrong, 202}, // its own auth decides
			{"POST", "/v1/issues/abc/resolve", "", 401},
			{"POST", "/v1/issues/abc/resolve", wrong, 401},
			{"POST", "/v1/issues/abc/resolve", right, 200},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{AuthToken: tc.token, Store: st, Tracker: populatedTracker(60),
				Metrics: metrics.New("1.2.3"), Webhook: webhook, Actions: actions})
			for _, c := range tc.calls {
				rec := get(t, s.Handler(), c.method, c.path, c.auth)
				if rec.Code != c.want {
					t.Errorf("%s %s (auth %q) = %d, want %d: %s", c.method, c.path, c.auth, rec.Code, c.want, rec.Body)
				}
				if rec.Code == http.StatusUnauthorized {
					if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
						t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer (got %q)", c.method, c.path, got)
					}
				}
				if strings.Contains(rec.Body.String(), token) {
					t.Errorf("%s %s: response contains the token", c.method, c.path)
				}
				if strings.HasPrefix(c.path, "/v1/wiz/webhook") && rec.Header().Get("X-Webhook") != "yes" {
					t.Errorf("%s %s: webhook handler not reached", c.method, c.path)
				}
			}
		})
	}
}

func TestUnmountedHandlers(t *testing.T) {
	s := newServer(t, Options{AuthToken: token})
	tests := []struct {
		method, path string
		want         int
	}{
		{"POST", "/v1/wiz/webhook", 404}, // DESIGN §7: 404 when no push auth is configured
		{"POST", "/v1/wiz/webhook/default", 404},
		{"POST", "/v1/issues/x/resolve", 404},
		{"GET", "/metrics", 404},
		{"GET", "/v1/incidents", 503}, // no store
		{"GET", "/v1/status", 200},    // no tracker: an empty document
		{"DELETE", "/v1/status", 405},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := get(t, s.Handler(), tc.method, tc.path, "Bearer "+token)
			if rec.Code != tc.want {
				t.Errorf("= %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

func TestSetAuthToken(t *testing.T) {
	s := newServer(t, Options{AuthToken: "old"})
	if rec := get(t, s.Handler(), "GET", "/v1/status", "Bearer old"); rec.Code != 200 {
		t.Fatalf("old token: %d", rec.Code)
	}
	s.SetAuthToken("new")
	if rec := get(t, s.Handler(), "GET", "/v1/status", "Bearer old"); rec.Code != 401 {
		t.Errorf("old token after reload: %d, want 401", rec.Code)
	}
	if rec := get(t, s.Handler(), "GET", "/v1/status", "Bearer new"); rec.Code != 200 {
		t.Errorf("new token after reload: %d, want 200", rec.Code)
	}
	s.SetAuthToken("") // loopback: allowed, the API opens
	if rec := get(t, s.Handler(), "GET", "/v1/status", ""); rec.Code != 200 {
		t.Errorf("token removed on loopback: %d, want 200", rec.Code)
	}

	public := newServer(t, Options{Listen: "0.0.0.0:0", AuthToken: "keep"})
	public.SetAuthToken("") // refused: a public listener never opens up
	if rec := get(t, public.Handler(), "GET", "/v1/status", ""); rec.Code != 401 {
		t.Errorf("token removed on a public listener: %d, want 401", rec.Code)
	}
	if rec := get(t, public.Handler(), "GET", "/v1/status", "Bearer keep"); rec.Code != 200 {
		t.Errorf("kept token: %d, want 200", rec.Code)
	}
}

// TestLifecycle starts a real listener: readiness goes not ready → ready → 503 as soon as Shutdown
// begins (while a request is still in flight), and the in-flight request completes.
func TestLifecycle(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	actions := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	s := newServer(t, Options{AuthToken: token, Actions: actions})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("URL %q / Addr %q: not the bound address", s.URL(), s.Addr())
	}
	probe := func(path string) int {
		t.Helper()
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := probe("/healthz"); got != 200 {
		t.Errorf("healthz = %d", got)
	}
	if got := probe("/readyz"); got != 503 {
		t.Errorf("readyz before SetReady = %d, want 503", got)
	}
	s.SetReady(true)
	if got := probe("/readyz"); got != 200 {
		t.Errorf("readyz when ready = %d, want 200", got)
	}

	inflight := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.URL()+"/v1/issues/x/resolve", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if string(body) != "done" {
				err = fmt.Errorf("in-flight body %q", body)
			}
		}
		inflight <- err
	}()
	<-entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// Readiness flips before Shutdown returns (it waits for the in-flight request).
	deadline := time.Now().Add(10 * time.Second)
	for get(t, s.Handler(), "GET", "/readyz", "").Code != 503 {
		if time.Now().After(deadline) {
			t.Fatal("readyz never went 503 during shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.SetReady(true) // a late SetReady cannot make a closing server ready
	if got := get(t, s.Handler(), "GET", "/readyz", "").Code; got != 503 {
		t.Errorf("readyz after SetReady during shutdown = %d, want 503", got)
	}
	close(release)
	if err := <-inflight; err != nil {
		t.Errorf("in-flight request: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := http.Get(s.URL() + "/healthz"); err == nil {
		t.Error("server still answers after Shutdown")
	}
}

func TestStartErrorNamesAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newServer(t, Options{Listen: ln.Addr().String()})
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Start on a busy port: %v, want an error naming %s", err, ln.Addr())
	}
}

func TestStatusJSON(t *testing.T) {
	st := openStore(t)
	seedIncidents(t, st)
	err := st.Update(func(tx *store.Tx) error {
		for i := 0; i < 3; i++ {
			if _, err := tx.Enqueue("xsoar", "default", []byte(`{"e":1}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MoveToDeadLetter("xsoar", store.OutboxItem{Instance: "default", Seq: 1}, "400", 5); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Options{Store: st, Tracker: populatedTracker(3)})
	rec := get(t, s.Handler(), "GET", "/v1/status", "")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	doc := decode[StatusDoc](t, rec)
	if len(doc.Instances) != 2 || doc.Instances[0].Name != "default" || doc.Instances[1].Name != "eu" {
		t.Fatalf("instances %+v, want default and eu", doc.Instances)
	}
	if got := len(doc.Instances[0].Feeds); got != 2 {
		t.Errorf("default has %d feeds, want 2", got)
	}
	if doc.Instances[0].Incidents != 5 || doc.Instances[1].Incidents != 3 {
		t.Errorf("incidents per instance %d/%d, want 5/3", doc.Instances[0].Incidents, doc.Instances[1].Incidents)
	}
	var xsoar status.Sink
	for _, sk := range doc.Sinks {
		if sk.Name == "xsoar" {
			xsoar = sk
		}
	}
	if xsoar.Pending != 2 || xsoar.DeadLetters != 1 || xsoar.MaxPending != 100 {
		t.Errorf("xsoar sink %+v, want pending 2, dead letters 1, max 100", xsoar)
	}
	if !doc.Paused || doc.PausedBy != "instance default: xsoar" {
		t.Errorf("paused %v by %q, want instance default paused by xsoar", doc.Paused, doc.PausedBy)
	}

	// The exact shape and field order are pinned by a golden file (store path and size normalised).
	var indented bytes.Buffer
	if err := json.Indent(&indented, rec.Body.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`"path": "[^"]*"`).ReplaceAll(indented.Bytes(), []byte(`"path": "STORE"`))
	got = regexp.MustCompile(`"file_size_bytes": \d+`).ReplaceAll(got, []byte(`"file_size_bytes": 0`))
	golden(t, "status.golden.json", got)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update and review the diff):\n%s", path, got)
	}
}

func TestIncidentsPaging(t *testing.T) {
	st := openStore(t)
	seedIncidents(t, st)
	s := newServer(t, Options{Store: st})

	var ids []string
	cursor, pages := "", 0
	for {
		target := "/v1/incidents?limit=3"
		if cursor != "" {
			target += "&after=" + cursor
		}
		rec := get(t, s.Handler(), "GET", target, "")
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		page := decode[IncidentList](t, rec)
		pages++
		if len(page.Incidents) > 3 {
			t.Fatalf("page of %d, limit 3", len(page.Incidents))
		}
		for _, inc := range page.Incidents {
			ids = append(ids, inc.Instance+"/"+inc.IssueID)
		}
		if page.Next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		cursor = page.Next
	}
	want := "default/id-01 default/id-02 default/id-03 default/id-04 default/shared eu/id-05 eu/id-06 eu/shared"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("paged order\n got %s\nwant %s", got, want)
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
}

// Pages follow the store's order, in which createdAt comes before the issue id: incidents created
// in the order c, a, d, b come back as c a | d b, each exactly once.
func TestIncidentsPagingFollowsCreatedAt(t *testing.T) {
	st := openStore(t)
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	err := st.Update(func(tx *store.Tx) error {
		for i, id := range []string{"c", "a", "d", "b"} {
			rec := &store.IncidentRecord{Instance: "default", IssueID: id, Status: "OPEN",
				CreatedAt: base.Add(time.Duration(i) * time.Second), Incident: []byte(`{}`)}
			if err := tx.PutIncident(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Options{Store: st})
	var ids []string
	for cursor, pages := "", 0; ; pages++ {
		if pages > 4 {
			t.Fatal("paging does not end")
		}
		target := "/v1/incidents?limit=2"
		if cursor != "" {
			target += "&after=" + cursor
		}
		rec := get(t, s.Handler(), "GET", target, "")
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		page := decode[IncidentList](t, rec)
		for _, inc := range page.Incidents {
			ids = append(ids, inc.IssueID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if got := strings.Join(ids, " "); got != "c a d b" {
		t.Fatalf("paged ids %q, want \"c a d b\"", got)
	}
}

func TestIncidentsFilters(t *testing.T) {
	st := openStore(t)
	seedIncidents(t, st)
	s := newServer(t, Options{Store: st})
	tests := []struct {
		query string
		want  string
	}{
		{"", "default/id-01 default/id-02 default/id-03 default/id-04 default/shared eu/id-05 eu/id-06 eu/shared"},
		{"instance=eu", "eu/id-05 eu/id-06 eu/shared"},
		{"instance=nobody", ""},
		{"status=OPEN", "default/id-01 default/id-04 default/shared eu/id-06"},
		{"status=resolved,rejected", "default/id-02 eu/id-05 eu/shared"},
		{"instance=default&status=OPEN&limit=2", "default/id-01 default/id-04"},
		{"since=2025-06-01T00:07:00Z", "eu/id-06 eu/shared"}, // updated at or after
		{"since=2025-06-01T02:07:00%2B02:00&instance=eu", "eu/id-06 eu/shared"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			rec := get(t, s.Handler(), "GET", "/v1/incidents?"+tc.query, "")
			if rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			page := decode[IncidentList](t, rec)
			var ids []string
			for _, inc := range page.Incidents {
				ids = append(ids, inc.Instance+"/"+inc.IssueID)
			}
			if got := strings.Join(ids, " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIncidentsBadQuery(t *testing.T) {
	s := newServer(t, Options{Store: openStore(t)})
	tests := []struct{ query, param string }{
		{"limit=0", "limit"},
		{"limit=abc", "limit"},
		{"limit=5000", "limit"},
		{"since=yesterday", "since"},
		{"since=2025-06-01", "since"},
		{"status=DONE", "status"},
		{"status=OPEN,", "status"},
		{"after=!!!", "after"},
		{"after=" + "YWJj", "after"}, // valid base64, no separator
		{"instance=a%00b", "instance"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			rec := get(t, s.Handler(), "GET", "/v1/incidents?"+tc.query, "")
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("= %d, want 400: %s", rec.Code, rec.Body)
			}
			e := decode[errorDoc](t, rec)
			if e.Parameter != tc.param || !strings.Contains(e.Error, tc.param) {
				t.Errorf("error %+v, want one naming %q", e, tc.param)
			}
		})
	}
}

func TestIncidentByID(t *testing.T) {
	st := openStore(t)
	seedIncidents(t, st)
	s := newServer(t, Options{Store: st})
	tests := []struct {
		target   string
		code     int
		instance string
		status   string
	}{
		{"/v1/incidents/id-05", 200, "eu", "REJECTED"},
		{"/v1/incidents/id-05?instance=eu", 200, "eu", "REJECTED"},
		{"/v1/incidents/id-05?instance=default", 404, "", ""},
		{"/v1/incidents/shared?instance=default", 200, "default", "OPEN"},
		{"/v1/incidents/shared", 400, "", ""}, // in two instances: which?
		{"/v1/incidents/missing", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			rec := get(t, s.Handler(), "GET", tc.target, "")
			if rec.Code != tc.code {
				t.Fatalf("= %d, want %d: %s", rec.Code, tc.code, rec.Body)
			}
			if tc.code != 200 {
				e := decode[errorDoc](t, rec)
				if e.Error == "" {
					t.Error("error body without a message")
				}
				return
			}
			doc := decode[IncidentDoc](t, rec)
			if doc.Instance != tc.instance || doc.Status != tc.status || doc.LastEventID == "" {
				t.Errorf("got %+v", doc)
			}
			if doc.Status == "REJECTED" && doc.ClosedAt == nil {
				t.Error("closed_at missing for a rejected issue")
			}
			var inc map[string]string
			if err := json.Unmarshal(doc.Incident, &inc); err != nil || inc["dbotMirrorId"] == "" {
				t.Errorf("incident is not the stored JSON object: %s (%v)", doc.Incident, err)
			}
		})
	}
}

func TestStatusPageRenders(t *testing.T) {
	st := openStore(t)
	seedIncidents(t, st)
	s := newServer(t, Options{AuthToken: token, Store: st, Tracker: populatedTracker(60)})
	rec := get(t, s.Handler(), "GET", "/", "Bearer "+token)
	if rec.Code != 200 {
		t.Fatalf("= %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`<meta http-equiv="refresh" content="10">`,
		"version 1.2.3",
		"up 1h 00m",
		"Fetching is paused by back-pressure for instance default: xsoar",
		"Instance default", "Instance eu", "5 incidents", "3 incidents",
		">created<", ">updates<",
		"2025-06-01 11:55:30Z", // the created feed's watermark
		"5m 00s",               // its lag, humanised
		"catching up",          // updates feed backlog
		`<span class="dot failing"`,
		`wiz: 401 &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, // escaped, in red
		`class="err"`,
		"xsoar: 502 Bad Gateway",
		"0 / 100", // xsoar pending / max_pending
		"<svg", `class="bar"`, "<polyline", "events / minute", "max lag", "time (UTC)",
		"events per minute (left axis)", "Throughput and lag, last 1h01m",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>", token, "<no value>"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if bars := strings.Count(body, `class="bar"><title>`); bars != 60 {
		t.Errorf("%d bars, want 60 (one per minute with events)", bars)
	}
}

func TestStatusPageEmpty(t *testing.T) {
	s := newServer(t, Options{Tracker: status.New("", func() time.Time { return fixedNow })})
	rec := get(t, s.Handler(), "GET", "/", "")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "No feeds yet") || !strings.Contains(body, "No activity recorded yet") {
		t.Errorf("empty page: %d\n%s", rec.Code, body)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	m := metrics.New("9.9.9")
	m.Delivery("file", 2, nil)
	s := newServer(t, Options{Metrics: m})
	rec := get(t, s.Handler(), "GET", "/metrics", "")
	if rec.Code != 200 {
		t.Fatalf("= %d", rec.Code)
	}
	for _, want := range []string{`wizfetch_build_info{goversion="`, `version="9.9.9"} 1`, `wizfetch_events_delivered_total{sink="file"} 2`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		sec  float64
		want string
	}{
		{0, "0s"}, {-3, "0s"}, {42.4, "42s"}, {59.6, "1m 00s"}, {245, "4m 05s"},
		{7620, "2h 07m"}, {86400*3 + 3600*4, "3d 04h"},
	}
	for _, tc := range tests {
		if got := humanDuration(tc.sec); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.sec, got, tc.want)
		}
	}
}

func TestChartScales(t *testing.T) {
	tests := []struct {
		name            string
		top, step       float64
		wantTop, wantSt float64
	}{
		{"events 0", first(niceScale(0)), second(niceScale(0)), 4, 1},
		{"events 150", first(niceScale(150)), second(niceScale(150)), 150, 50},
		{"events 7", first(niceScale(7)), second(niceScale(7)), 8, 2},
		{"lag 0", first(lagScale(0)), second(lagScale(0)), 10, 5},
		{"lag 2s", first(lagScale(2)), second(lagScale(2)), 10, 5},
		{"lag 330s", first(lagScale(330)), second(lagScale(330)), 360, 120},
		{"lag 3h", first(lagScale(3 * 3600)), second(lagScale(3 * 3600)), 3 * 3600, 3600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.top != tc.wantTop || tc.step != tc.wantSt {
				t.Errorf("top %v step %v, want %v %v", tc.top, tc.step, tc.wantTop, tc.wantSt)
			}
		})
	}
	c := buildChart([]status.Sample{
		{At: fixedNow.Add(-3 * time.Hour).Truncate(time.Minute), Events: 999, LagSeconds: 1}, // outside the span
		{At: fixedNow.Add(-time.Minute).Truncate(time.Minute), Events: 10, LagSeconds: 60},
		{At: fixedNow.Truncate(time.Minute), Events: 0, LagSeconds: 30},
	}, fixedNow, time.Time{})
	if c.Span != "2h" {
		t.Errorf("span %q without a start time, want 2h", c.Span)
	}
	if len(c.Bars) != 1 || c.MaxEvents != 10 || len(c.LagDots) != 2 || c.Empty {
		t.Errorf("chart: %d bars, max %d, %d lag points, empty %v", len(c.Bars), c.MaxEvents, len(c.LagDots), c.Empty)
	}
	if b := c.Bars[0]; b.Y < c.PlotY || b.Y+b.H > c.PlotBottom+0.01 || b.X < c.PlotX || b.X+b.W > c.PlotRight {
		t.Errorf("bar %+v outside the plot", b)
	}
	if !regexp.MustCompile(`^[0-9.]+,[0-9.]+ [0-9.]+,[0-9.]+$`).MatchString(c.LagPoints) {
		t.Errorf("lag points %q", c.LagPoints)
	}
}

func TestChartSpan(t *testing.T) {
	tests := []struct {
		name     string
		started  time.Time
		wantSpan string
		ticks    int
	}{
		{"just started", fixedNow.Add(-30 * time.Second), "15m", 8}, // 11:46..12:01, labels every 2m
		{"40 minutes", fixedNow.Add(-40 * time.Minute), "41m", 9},   // 11:20..12:01, every 5m
		{"a day", fixedNow.Add(-24 * time.Hour), "2h", 8},           // 10:01..12:01, every 15m
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := buildChart(nil, fixedNow, tc.started)
			if c.Span != tc.wantSpan || len(c.TimeTicks) != tc.ticks {
				var labels []string
				for _, tk := range c.TimeTicks {
					labels = append(labels, tk.Label)
				}
				t.Errorf("span %q ticks %v, want %q and %d ticks", c.Span, labels, tc.wantSpan, tc.ticks)
			}
			for _, tk := range c.TimeTicks {
				if tk.X < c.PlotX-0.01 || tk.X > c.PlotRight+0.01 {
					t.Errorf("tick %s at x=%v outside the plot", tk.Label, tk.X)
				}
			}
		})
	}
}

func first(a, _ float64) float64  { return a }
func second(_, b float64) float64 { return b }
