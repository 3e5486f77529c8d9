package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

const (
	testToken = "push-token-0123456789"
	testUser  = "wiz"
	testPass  = "basic-pass-9876543210"
	issueID   = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
)

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// memQueue records queued items; err makes every enqueue fail.
type memQueue struct {
	mu    sync.Mutex
	items []store.RefetchItem
	err   error
}

func (q *memQueue) EnqueueRefetch(item store.RefetchItem) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.items = append(q.items, item)
	return nil
}

func (q *memQueue) snapshot() []store.RefetchItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]store.RefetchItem(nil), q.items...)
}

// observations records Observe calls.
type observations struct {
	mu   sync.Mutex
	list []string
}

func (o *observations) observe(instance, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, instance+":"+result)
}

func (o *observations) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.list) == 0 {
		return ""
	}
	return o.list[len(o.list)-1]
}

type fixture struct {
	h    http.Handler
	q    *memQueue
	obs  *observations
	logs *bytes.Buffer
}

func newFixture(auth Auth, instances ...string) *fixture {
	if len(instances) == 0 {
		instances = []string{"default"}
	}
	f := &fixture{q: &memQueue{}, obs: &observations{}, logs: &bytes.Buffer{}}
	f.h = NewHandler(Options{
		Auth:      auth,
		Instances: instances,
		Queue:     f.q,
		Now:       func() time.Time { return fixedNow },
		Logger:    slog.New(slog.NewJSONHandler(&syncWriter{w: f.logs}, nil)),
		Observe:   f.obs.observe,
	})
	return f
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func body(id string) string {
	return `{"trigger":{"type":"Created","ruleName":"r"},"issue":{"id":"` + id + `","status":"OPEN"},"secretish":"do-not-log-me"}`
}

func (f *fixture) do(method, path, authz, b string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(b))
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func basic(user, pass string) string {
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

func TestDisabledIs404(t *testing.T) {
	f := newFixture(Auth{})
	for _, authz := range []string{"", "Bearer " + testToken, basic(testUser, testPass)} {
		if rec := f.do(http.MethodPost, Path, authz, body(issueID)); rec.Code != http.StatusNotFound {
			t.Errorf("authz %q: status %d, want 404", authz, rec.Code)
		}
	}
	if n := len(f.q.snapshot()); n != 0 {
		t.Errorf("%d items queued by a disabled receiver", n)
	}
}

func TestAuth(t *testing.T) {
	bearerOnly := Auth{BearerToken: testToken}
	basicOnly := Auth{Username: testUser, Password: testPass}
	both := Auth{BearerToken: testToken, Username: testUser, Password: testPass}
	tests := []struct {
		name      string
		auth      Auth
		authz     string
		want      int
		challenge string // a WWW-Authenticate scheme expected on 401
	}{
		{"bearer: none", bearerOnly, "", 401, "Bearer"},
		{"bearer: wrong", bearerOnly, "Bearer wrong-token", 401, "Bearer"},
		{"bearer: prefix of right", bearerOnly, "Bearer " + testToken[:5], 401, "Bearer"},
		{"bearer: right", bearerOnly, "Bearer " + testToken, 202, ""},
		{"bearer: scheme case-insensitive", bearerOnly, "bearer " + testToken, 202, ""},
		{"bearer: basic not configured", bearerOnly, basic(testUser, testPass), 401, "Bearer"},
		{"basic: none", basicOnly, "", 401, "Basic"},
		{"basic: wrong user", basicOnly, basic("other", testPass), 401, "Basic"},
		{"basic: wrong password", basicOnly, basic(testUser, "nope"), 401, "Basic"},
		{"basic: malformed", basicOnly, "Basic !!!", 401, "Basic"},
		{"basic: right", basicOnly, basic(testUser, testPass), 202, ""},
		{"basic: bearer not configured", basicOnly, "Bearer " + testToken, 401, "Basic"},
		{"both: bearer right", both, "Bearer " + testToken, 202, ""},
		{"both: basic right", both, basic(testUser, testPass), 202, ""},
		{"both: none", both, "", 401, "Basic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(tt.auth)
			rec := f.do(http.MethodPost, Path, tt.authz, body(issueID))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			queued := len(f.q.snapshot())
			if tt.want == 202 {
				if queued != 1 {
					t.Errorf("%d items queued, want 1", queued)
				}
				if got := f.obs.last(); got != "default:accepted" {
					t.Errorf("observed %q", got)
				}
				return
			}
			if queued != 0 {
				t.Errorf("%d items queued after %d", queued, rec.Code)
			}
			if got := f.obs.last(); got != "default:unauthorized" {
				t.Errorf("observed %q", got)
			}
			if !strings.Contains(strings.Join(rec.Header().Values("WWW-Authenticate"), ","), tt.challenge) {
				t.Errorf("WWW-Authenticate %q, want the %s scheme", rec.Header().Values("WWW-Authenticate"), tt.challenge)
			}
		})
	}
}

func TestAccepted(t *testing.T) {
	f := newFixture(Auth{BearerToken: testToken})
	rec := f.do(http.MethodPost, Path, "Bearer "+testToken, body(strings.ToUpper(issueID)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var resp map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp["status"] != "accepted" || resp["issue_id"] != issueID || resp["instance"] != "default" {
		t.Errorf("response %v", resp)
	}
	want := []store.RefetchItem{{Instance: "default", IssueID: issueID, ReceivedAt: fixedNow}}
	if got := f.q.snapshot(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("queued %+v, want %+v", got, want)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, issueID) || !strings.Contains(logs, `"trigger":"Created"`) {
		t.Errorf("log lacks the issue id or trigger: %s", logs)
	}
	for _, secret := range []string{testToken, "do-not-log-me"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q: %s", secret, logs)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(Auth{BearerToken: testToken})
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		rec := f.do(m, Path, "Bearer "+testToken, "")
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s: status %d Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

// unreadable fails the test if the handler reads the body.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("the body was read although Content-Length is over the limit")
	return 0, io.EOF
}

func TestBodyChecks(t *testing.T) {
	auth := "Bearer " + testToken
	padded := func(n int) string { // a valid push of exactly n bytes
		b := body(issueID)
		return b + strings.Repeat(" ", n-len(b))
	}
	tests := []struct {
		name       string
		authz      string
		body       string
		chunked    bool // no Content-Length: the limit is enforced while reading
		want       int
		wantResult string
		wantReason string
	}{
		{name: "exactly the limit", authz: auth, body: padded(MaxBodyBytes), want: 202, wantResult: ResultAccepted},
		{name: "exactly the limit, chunked", authz: auth, body: padded(MaxBodyBytes), chunked: true, want: 202, wantResult: ResultAccepted},
		{name: "one byte over, by length", authz: auth, body: padded(MaxBodyBytes + 1), want: 413, wantResult: ResultTooLarge},
		{name: "one byte over, chunked", authz: auth, body: padded(MaxBodyBytes + 1), chunked: true, want: 413, wantResult: ResultTooLarge},
		{name: "oversized garbage is 413 not 400", authz: auth, body: strings.Repeat("x", 2*MaxBodyBytes), chunked: true, want: 413, wantResult: ResultTooLarge},
		{name: "auth before size", authz: "Bearer wrong", body: strings.Repeat("x", 2*MaxBodyBytes), want: 401, wantResult: ResultUnauthorized},
		{name: "invalid JSON", authz: auth, body: `{"issue": {`, want: 400, wantResult: ResultBadJSON, wantReason: "invalid JSON"},
		{name: "empty body", authz: auth, body: ``, want: 400, wantResult: ResultBadJSON, wantReason: "not a JSON object"},
		{name: "array", authz: auth, body: `[1]`, want: 400, wantResult: ResultBadJSON, wantReason: "array"},
		{name: "no issue id", authz: auth, body: `{"trigger":{"type":"Created"},"issue":{}}`, want: 400, wantResult: ResultNoIssueID, wantReason: "no issue id"},
		{name: "issue id not a UUID", authz: auth, body: `{"issue":{"id":"{{issue.id}}"}}`, want: 400, wantResult: ResultNoIssueID, wantReason: "not a UUID"},
		{name: "legacy template", authz: auth, body: `{"id":"` + issueID + `","status":"OPEN"}`, want: 202, wantResult: ResultAccepted},
		{name: "content type not checked", authz: auth, body: body(issueID), want: 202, wantResult: ResultAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(Auth{BearerToken: testToken})
			req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", tt.authz)
			req.Header.Set("Content-Type", "text/plain")
			if tt.chunked {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if got := f.obs.last(); got != "default:"+tt.wantResult {
				t.Errorf("observed %q, want %q", got, "default:"+tt.wantResult)
			}
			if tt.wantReason != "" && !strings.Contains(rec.Body.String(), tt.wantReason) {
				t.Errorf("body %s lacks the reason %q", rec.Body, tt.wantReason)
			}
			if queued := len(f.q.snapshot()); (tt.want == 202) != (queued == 1) {
				t.Errorf("%d items queued with status %d", queued, rec.Code)
			}
		})
	}

	t.Run("over the limit by Content-Length is not read", func(t *testing.T) {
		f := newFixture(Auth{BearerToken: testToken})
		req := httptest.NewRequest(http.MethodPost, Path, nil)
		req.Body = io.NopCloser(unreadable{t})
		req.ContentLength = MaxBodyBytes + 1
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", rec.Code)
		}
	})
}

func TestRouting(t *testing.T) {
	auth := "Bearer " + testToken
	tests := []struct {
		name         string
		instances    []string
		path         string
		want         int
		wantInstance string
		wantObserved string
	}{
		{name: "one: bare path", instances: []string{"default"}, path: Path, want: 202, wantInstance: "default", wantObserved: "default:accepted"},
		{name: "one: trailing slash", instances: []string{"default"}, path: Path + "/", want: 202, wantInstance: "default", wantObserved: "default:accepted"},
		{name: "one: named", instances: []string{"default"}, path: Path + "/default", want: 202, wantInstance: "default", wantObserved: "default:accepted"},
		{name: "one: unknown", instances: []string{"default"}, path: Path + "/other", want: 404, wantObserved: ":unknown_instance"},
		{name: "several: bare path", instances: []string{"prod", "dev"}, path: Path, want: 400, wantObserved: ":unknown_instance"},
		{name: "several: second", instances: []string{"prod", "dev"}, path: Path + "/dev", want: 202, wantInstance: "dev", wantObserved: "dev:accepted"},
		{name: "several: unknown", instances: []string{"prod", "dev"}, path: Path + "/qa", want: 404, wantObserved: ":unknown_instance"},
		{name: "several: nested", instances: []string{"prod", "dev"}, path: Path + "/dev/x", want: 404, wantObserved: ":unknown_instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(Auth{BearerToken: testToken}, tt.instances...)
			rec := f.do(http.MethodPost, tt.path, auth, body(issueID))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if got := f.obs.last(); got != tt.wantObserved {
				t.Errorf("observed %q, want %q", got, tt.wantObserved)
			}
			items := f.q.snapshot()
			if tt.want != 202 {
				if len(items) != 0 {
					t.Errorf("queued %+v", items)
				}
				return
			}
			if len(items) != 1 || items[0].Instance != tt.wantInstance {
				t.Errorf("queued %+v, want instance %s", items, tt.wantInstance)
			}
		})
	}

	t.Run("mux wildcard", func(t *testing.T) {
		f := newFixture(Auth{BearerToken: testToken}, "prod", "dev")
		mux := http.NewServeMux()
		mux.Handle(Path, f.h)
		mux.Handle(Path+"/{instance}", f.h)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+Path+"/prod", strings.NewReader(body(issueID)))
		req.Header.Set("Authorization", auth)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if items := f.q.snapshot(); len(items) != 1 || items[0].Instance != "prod" {
			t.Errorf("queued %+v", items)
		}
	})
}

func TestQueueError(t *testing.T) {
	f := newFixture(Auth{BearerToken: testToken})
	f.q.err = errors.New("disk full")
	rec := f.do(http.MethodPost, Path, "Bearer "+testToken, body(issueID))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if got := f.obs.last(); got != "default:"+ResultQueueError {
		t.Errorf("observed %q", got)
	}
	if strings.Contains(rec.Body.String(), "disk full") {
		t.Errorf("internal error leaked to the caller: %s", rec.Body)
	}
}

// TestDurableQueue pushes through a real server into a real store: repeated pushes of one issue
// queue it once, and the item is still there after the store is closed and reopened (a restart
// while Wiz is down).
func TestDurableQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wizfetch.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(Options{
		Auth:      Auth{Username: testUser, Password: testPass},
		Instances: []string{"default"},
		Queue:     st,
		Now:       func() time.Time { return fixedNow },
	})
	srv := httptest.NewServer(h)
	const other = "0f8fad5b-d9cb-469f-a165-70867728950e"
	for _, id := range []string{issueID, issueID, other, issueID} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+Path, strings.NewReader(body(id)))
		req.SetBasicAuth(testUser, testPass)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("push %s: status %d", id, resp.StatusCode)
		}
	}
	srv.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	depth, err := st.RefetchDepth()
	if err != nil {
		t.Fatal(err)
	}
	items, err := st.RefetchBatch(fixedNow.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if depth != 2 || len(items) != 2 {
		t.Fatalf("depth %d, items %+v; want the two distinct issues", depth, items)
	}
	if items[0].IssueID != issueID || items[1].IssueID != other || !items[0].ReceivedAt.Equal(fixedNow) || items[0].Instance != "default" {
		t.Errorf("items %+v", items)
	}
}
