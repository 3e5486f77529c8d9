package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

type fakeContext struct{ calls int }

func (f *fakeContext) IssueContext(_ context.Context, instance, id string) (*wiz.IssueContext, error) {
	f.calls++
	switch {
	case instance == "nope":
		return nil, fmt.Errorf("%w %q", ErrUnknownInstance, instance)
	case id == "00000000-0000-4000-8000-000000000000":
		return nil, fmt.Errorf("issue context %s: %w", id, wiz.ErrNotFound)
	case id == "00000000-0000-4000-8000-000000000001":
		return nil, &wiz.APIError{Class: wiz.ErrTransient, Op: "IssuesTable", Message: "boom"}
	case id == "00000000-0000-4000-8000-000000000002":
		return nil, &RateLimitedError{RetryAfter: 11500 * time.Millisecond}
	}
	return &wiz.IssueContext{IssueID: id, IssueType: "THREAT_DETECTION", EvidenceKind: wiz.EvidenceNone}, nil
}

// TestIssueContextRoute maps the context source's answers to statuses, behind the server token,
// and leaves /mcp to its own handler (404 when MCP is not configured).
func TestIssueContextRoute(t *testing.T) {
	src := &fakeContext{}
	s, err := New(Options{Listen: "127.0.0.1:0", AuthToken: "tok", IssueContext: src})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Shutdown(context.Background()) }()
	const id = "5c2e3d4b-9b8a-4c1d-8e7f-0a1b2c3d4e5f"
	tests := []struct {
		name, path, token string
		want              int
	}{
		{"ok", "/v1/issues/" + id + "/context", "tok", http.StatusOK},
		{"no token", "/v1/issues/" + id + "/context", "", http.StatusUnauthorized},
		{"not a uuid", "/v1/issues/abc/context", "tok", http.StatusBadRequest},
		{"unknown instance", "/v1/issues/" + id + "/context?instance=nope", "tok", http.StatusNotFound},
		{"unknown issue", "/v1/issues/00000000-0000-4000-8000-000000000000/context", "tok", http.StatusNotFound},
		{"wiz failure", "/v1/issues/00000000-0000-4000-8000-000000000001/context", "tok", http.StatusBadGateway},
		{"budget spent", "/v1/issues/00000000-0000-4000-8000-000000000002/context", "tok", http.StatusTooManyRequests},
		{"mcp off", "/mcp", "tok", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL()+tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "12" {
				t.Fatalf("Retry-After %q, want 12", resp.Header.Get("Retry-After"))
			}
			if tt.want == http.StatusOK {
				var ic wiz.IssueContext
				if err := json.NewDecoder(resp.Body).Decode(&ic); err != nil || ic.IssueID != id {
					t.Fatalf("body %+v (%v)", ic, err)
				}
			}
		})
	}
	if src.calls != 5 {
		t.Fatalf("%d calls reached the source, want 5 (bad ids and missing tokens never do)", src.calls)
	}
}
