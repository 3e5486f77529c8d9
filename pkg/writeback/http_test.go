package writeback

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// failingClient answers every call with err.
type failingClient struct{ err error }

func (f failingClient) Issue(context.Context, string) (*wiz.Issue, json.RawMessage, error) {
	return nil, nil, f.err
}
func (f failingClient) UpdateIssue(context.Context, string, wiz.IssuePatch) (*wiz.Issue, error) {
	return nil, f.err
}
func (f failingClient) CreateIssueNote(context.Context, string, string) (*wiz.Note, error) {
	return nil, f.err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestHTTPHandler(t *testing.T) {
	env := newSimEnv(t)
	logs := &lockedBuffer{}
	outage := &wiz.APIError{Class: wiz.ErrTransient, HTTPStatus: 503, Op: "UpdateIssue", Message: "Service Unavailable"}
	h := NewHandler(map[string]Client{
		"default": env.client,
		"down":    failingClient{err: fmt.Errorf("update issue: %w", outage)},
	}, "default", slog.New(slog.NewJSONHandler(logs, nil)))
	srv := httptest.NewServer(h)
	defer srv.Close()

	threat := env.byType["THREAT_DETECTION"]
	config := env.byType["CLOUD_CONFIGURATION"]
	const operatorSecret = "Bearer operator-token-should-not-be-logged"

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		want       int
		wantBody   string // substring of the response
		wantStatus string // simulator status of the issue afterwards, for writes
		issue      string
	}{
		{name: "resolve threat", method: "POST", path: "/v1/issues/" + threat[0] + "/resolve",
			body: `{"reason":"FALSE_POSITIVE","note":"benign"}`, want: 200, wantBody: `"status":"RESOLVED"`, wantStatus: "RESOLVED", issue: threat[0]},
		{name: "resolve config refused", method: "POST", path: "/v1/issues/" + config[0] + "/resolve",
			body: `{"reason":"WONT_FIX"}`, want: 400, wantBody: "use `reject", wantStatus: "OPEN", issue: config[0]},
		{name: "reject", method: "POST", path: "/v1/issues/" + config[1] + "/reject?instance=default",
			body: `{"reason":"WONT_FIX","note":"accepted"}`, want: 200, wantBody: `"action":"reject"`, wantStatus: "REJECTED", issue: config[1]},
		{name: "reject without note", method: "POST", path: "/v1/issues/" + config[2] + "/reject",
			body: `{"reason":"WONT_FIX"}`, want: 400, wantBody: "reject needs a note", wantStatus: "OPEN", issue: config[2]},
		{name: "in-progress without body", method: "POST", path: "/v1/issues/" + config[2] + "/in-progress",
			want: 200, wantStatus: "IN_PROGRESS", issue: config[2]},
		{name: "note", method: "POST", path: "/v1/issues/" + config[3] + "/note",
			body: `{"text":"` + strings.Repeat("n", 1500) + `"}`, want: 200, wantBody: `"note_truncated":true`},
		{name: "due date", method: "POST", path: "/v1/issues/" + config[3] + "/due-date",
			body: `{"due_date":"2031-12-24"}`, want: 200, wantBody: `"due_at":"2031-12-24T00:00:00Z"`},
		{name: "bad id", method: "POST", path: "/v1/issues/not-a-uuid/reopen", want: 400, wantBody: "is not a UUID"},
		{name: "bad reason", method: "POST", path: "/v1/issues/" + threat[1] + "/resolve", body: `{"reason":"NOPE"}`, want: 400, wantBody: "use one of OBJECT_DELETED, ISSUE_FIXED"},
		{name: "reject with a resolve-only reason", method: "POST", path: "/v1/issues/" + config[3] + "/reject", body: `{"reason":"ISSUE_FIXED","note":"n"}`,
			want: 400, wantBody: "use one of FALSE_POSITIVE, EXCEPTION, WONT_FIX", wantStatus: "OPEN", issue: config[3]},
		{name: "unknown body field", method: "POST", path: "/v1/issues/" + threat[1] + "/reopen", body: `{"notes":"x"}`, want: 400, wantBody: "unknown field"},
		{name: "bad JSON", method: "POST", path: "/v1/issues/" + threat[1] + "/reopen", body: `{`, want: 400, wantBody: "not a valid request"},
		{name: "unknown action", method: "POST", path: "/v1/issues/" + threat[1] + "/close", want: 404, wantBody: "unknown action"},
		{name: "unknown instance", method: "POST", path: "/v1/issues/" + threat[1] + "/reopen?instance=qa", want: 404, wantBody: `unknown instance \"qa\"`},
		{name: "unknown issue", method: "POST", path: "/v1/issues/" + someID + "/reopen", want: 404, wantBody: "not found"},
		{name: "wiz down", method: "POST", path: "/v1/issues/" + threat[1] + "/reopen?instance=down", want: 502, wantBody: "temporary failure"},
		{name: "GET on an action", method: "GET", path: "/v1/issues/" + threat[1] + "/reopen", want: 405},
		{name: "POST on an issue", method: "POST", path: "/v1/issues/" + threat[1], want: 405},
		{name: "too deep", method: "GET", path: "/v1/issues/" + threat[1] + "/reopen/x", want: 404},
		{name: "get", method: "GET", path: "/v1/issues/" + strings.ToUpper(threat[2]), want: 200, wantBody: `"id":"` + threat[2] + `"`},
		{name: "get unknown", method: "GET", path: "/v1/issues/" + someID, want: 404},
		{name: "get bad id", method: "GET", path: "/v1/issues/123", want: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", operatorSecret)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !json.Valid(b) {
				t.Errorf("body is not JSON: %s", b)
			}
			if tt.wantBody != "" && !strings.Contains(string(b), tt.wantBody) {
				t.Errorf("body %s lacks %q", b, tt.wantBody)
			}
			if tt.wantStatus != "" {
				if got := env.status(t, tt.issue); got != tt.wantStatus {
					t.Errorf("simulator status %s, want %s", got, tt.wantStatus)
				}
			}
		})
	}

	// Audit lines: one per POST that reached an action, never the note text or the operator's token.
	var audits []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "audit" {
			audits = append(audits, m)
		}
	}
	if len(audits) < 10 {
		t.Fatalf("%d audit lines, want one per write", len(audits))
	}
	first := audits[0]
	for k, want := range map[string]any{"via": "http", "action": "resolve", "issue_id": threat[0], "instance": "default", "result": "ok", "reason": "FALSE_POSITIVE"} {
		if first[k] != want {
			t.Errorf("audit %s = %v, want %v (line %v)", k, first[k], want, first)
		}
	}
	if actor, _ := first["actor"].(string); !strings.HasPrefix(actor, "127.0.0.1:") {
		t.Errorf("audit actor %q, want the remote address", actor)
	}
	if _, ok := first["time"]; !ok {
		t.Error("audit line has no time")
	}
	all := logs.String()
	for _, secret := range []string{"operator-token", "benign", strings.Repeat("n", 50)} {
		if strings.Contains(all, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(all, `"result":"error"`) {
		t.Error("no audit line records a failed write")
	}
}

// TestHTTPRefusesReasonsWithoutCallingWiz: a reason Wiz does not accept for the action answers
// 400 naming the accepted ones, and Wiz is never called.
func TestHTTPRefusesReasonsWithoutCallingWiz(t *testing.T) {
	c := &recordingClient{typ: "THREAT_DETECTION"}
	srv := httptest.NewServer(NewHandler(map[string]Client{"default": c}, "default", nil))
	defer srv.Close()
	tests := []struct {
		action, body, want string
	}{
		{"reject", `{"reason":"ISSUE_FIXED","note":"n"}`, "FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
		{"reject", `{"reason":"DETECTION_EXPIRED","note":"n"}`, "FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
		{"resolve", `{"reason":"CONTROL_DELETED"}`, "OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
	}
	for _, tt := range tests {
		t.Run(tt.action+" "+tt.body, func(t *testing.T) {
			resp, err := srv.Client().Post(srv.URL+PathPrefix+someID+"/"+tt.action, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tt.want) {
				t.Fatalf("status %d body %s; want 400 naming %s", resp.StatusCode, b, tt.want)
			}
		})
	}
	if len(c.calls) != 0 {
		t.Errorf("Wiz was called: %v", c.calls)
	}
}

// A refusal Wiz will repeat is not a 502, which playbooks retry; only a failure for now is.
func TestStatusForWizFailures(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&wiz.APIError{Class: wiz.ErrPermission, Message: "missing write:issue_status"}, http.StatusUnprocessableEntity},
		{&wiz.APIError{Class: wiz.ErrBadRequest, Message: "invalid reason"}, http.StatusUnprocessableEntity},
		{&wiz.APIError{Class: wiz.ErrTransient, Message: "502"}, http.StatusBadGateway},
		{fmt.Errorf("resolve: %w", wiz.ErrNotFound), http.StatusNotFound},
		{fmt.Errorf("%w: bad date", ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("reject: %w: %w", ErrOutcomeUnknown, &wiz.APIError{Class: wiz.ErrTransient}), http.StatusFailedDependency},
		{&wiz.APIError{Class: wiz.ErrAuth, Message: "secret rotated"}, http.StatusBadGateway},
	} {
		if got := statusFor(tc.err); got != tc.want {
			t.Errorf("statusFor(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
