package wiz

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		token    func(w http.ResponseWriter, form url.Values, n int64)
		graphql  func(w http.ResponseWriter, r *http.Request, req gqlRequest, n int64)
		mutate   func(o *Options)
		wantOK   []bool
		wantText []string // per step
	}{
		{name: "all pass", wantOK: []bool{true, true}, wantText: []string{"audience wiz-api", "with 0 issue(s)"}},
		{name: "wrong secret", wantOK: []bool{false, false}, wantText: []string{"authentication failed", "skipped"},
			token: func(w http.ResponseWriter, _ url.Values, _ int64) {
				writeJSON(w, 401, map[string]any{"error": "access_denied", "error_description": "Unauthorized"})
			}},
		{name: "missing scope", wantOK: []bool{true, false}, wantText: []string{"token obtained", "permission denied"},
			graphql: func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
				writeJSON(w, 200, gqlErrors("UNAUTHORIZED", "missing read:issues"))
			}},
		{name: "bad options", wantOK: []bool{false, false}, wantText: []string{"wiz.audience", "skipped"},
			mutate: func(o *Options) { o.Audience = ""; o.AuthURL = "https://login.example.com/token" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			if tt.token != nil {
				f.setToken(tt.token)
			}
			if tt.graphql != nil {
				f.setGraphQL(tt.graphql)
			}
			opts := f.options()
			opts.RetryFor = 100 * time.Millisecond
			if tt.mutate != nil {
				tt.mutate(&opts)
			}
			steps := Check(testCtx(t), opts)
			if len(steps) != 2 || steps[0].Name != CheckStepToken || steps[1].Name != CheckStepQuery {
				t.Fatalf("steps = %+v", steps)
			}
			for i, s := range steps {
				if s.OK != tt.wantOK[i] {
					t.Errorf("step %q OK = %v, want %v (%s)", s.Name, s.OK, tt.wantOK[i], s.Detail)
				}
				if !strings.Contains(s.Detail, tt.wantText[i]) {
					t.Errorf("step %q detail %q lacks %q", s.Name, s.Detail, tt.wantText[i])
				}
				if strings.Contains(s.Detail, testSecret) {
					t.Errorf("step %q leaks the secret", s.Name)
				}
			}
		})
	}
}
