package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHostCheckRefusesRebinding: a tokenless loopback server answers only Host values that name it;
// a rebinding page's own name (evil.example, or any name but localhost) gets 421 and no data.
func TestHostCheckRefusesRebinding(t *testing.T) {
	st := openStore(t)
	seedIncidents(t, st)
	tokenless := newServer(t, Options{Listen: "127.0.0.1:0", Store: st, Tracker: populatedTracker(2)})
	named := newServer(t, Options{Listen: "localhost:8080", Store: st, Tracker: populatedTracker(2)})
	withToken := newServer(t, Options{Listen: "127.0.0.1:0", AuthToken: token, Store: st, Tracker: populatedTracker(2)})
	cases := []struct {
		name string
		srv  *Server
		host string
		path string
		auth string
		want int
	}{
		{"rebound name", tokenless, "evil.example:8080", "/v1/incidents", "", http.StatusMisdirectedRequest},
		{"rebound name without port", tokenless, "evil.example", "/v1/status", "", http.StatusMisdirectedRequest},
		{"rebound name on the page", tokenless, "attacker.localhost.evil:80", "/", "", http.StatusMisdirectedRequest},
		{"rebound name on metrics", tokenless, "x.example", "/metrics", "", http.StatusMisdirectedRequest},
		{"127.0.0.1", tokenless, "127.0.0.1:8080", "/v1/incidents", "", http.StatusOK},
		{"other loopback IP", tokenless, "127.0.0.2:9", "/v1/incidents", "", http.StatusOK},
		{"localhost", tokenless, "localhost:8080", "/v1/incidents", "", http.StatusOK},
		{"LOCALHOST", tokenless, "LOCALHOST", "/v1/incidents", "", http.StatusOK},
		{"ipv6 loopback", tokenless, "[::1]:8080", "/v1/incidents", "", http.StatusOK},
		{"probes are exempt", tokenless, "evil.example", "/healthz", "", http.StatusOK},
		{"the configured host", named, "localhost:8080", "/v1/incidents", "", http.StatusOK},
		{"a token makes the check moot", withToken, "evil.example", "/v1/incidents", "Bearer " + token, http.StatusOK},
		{"a token is still required", withToken, "evil.example", "/v1/incidents", "", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			req.Host = tc.host
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			tc.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("GET %s with Host %q: %d, want %d: %s", tc.path, tc.host, rec.Code, tc.want, rec.Body.String())
			}
		})
	}
}

// TestHostCheckFollowsTokenReload: a token added by a reload lifts the check, and removing it (on
// loopback) brings it back.
func TestHostCheckFollowsTokenReload(t *testing.T) {
	s := newServer(t, Options{Listen: "127.0.0.1:0", Store: openStore(t), Tracker: populatedTracker(1)})
	do := func(auth string) int {
		req := httptest.NewRequest(http.MethodGet, "/v1/status", nil)
		req.Host = "evil.example"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if got := do(""); got != http.StatusMisdirectedRequest {
		t.Fatalf("tokenless: %d, want 421", got)
	}
	s.SetAuthToken(token)
	if got := do("Bearer " + token); got != http.StatusOK {
		t.Fatalf("with a token: %d, want 200", got)
	}
	s.SetAuthToken("")
	if got := do(""); got != http.StatusMisdirectedRequest {
		t.Fatalf("token removed: %d, want 421", got)
	}
}
