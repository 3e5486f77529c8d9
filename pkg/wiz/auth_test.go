package wiz

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

func TestAudienceFor(t *testing.T) {
	tests := []struct {
		name, url, override, want string
		wantErr                   bool
	}{
		{name: "cognito commercial", url: "https://auth.app.wiz.io/oauth/token", want: AudienceCognito},
		{name: "cognito fedramp", url: "https://auth.app.wiz.us/oauth/token", want: AudienceCognito},
		{name: "cognito govcloud", url: "https://auth.gov.wiz.io/oauth/token", want: AudienceCognito},
		{name: "cognito test", url: "https://auth.test.wiz.io/oauth/token", want: AudienceCognito},
		{name: "cognito demo", url: "https://auth.demo.wiz.io/oauth/token", want: AudienceCognito},
		{name: "cognito gov wiz.us", url: "https://auth.gov.wiz.us/oauth/token", want: AudienceCognito},
		{name: "cognito test wiz.us", url: "https://auth.test.wiz.us/oauth/token", want: AudienceCognito},
		{name: "auth0 legacy", url: "https://auth.wiz.io/oauth/token", want: AudienceAuth0},
		{name: "auth0 gov", url: "https://auth0.gov.wiz.io/oauth/token", want: AudienceAuth0},
		{name: "auth0 test", url: "https://auth0.test.wiz.io/oauth/token", want: AudienceAuth0},
		{name: "upper case and trailing slash", url: "HTTPS://AUTH.APP.WIZ.IO/oauth/token/", want: AudienceCognito},
		{name: "no scheme", url: "auth.wiz.io/oauth/token", want: AudienceAuth0},
		{name: "port and trailing dot", url: "https://auth.app.wiz.us.:443/oauth/token", want: AudienceCognito},
		{name: "spaces", url: "  https://auth.app.wiz.io/oauth/token \n", want: AudienceCognito},
		{name: "override wins", url: "https://auth.app.wiz.io/oauth/token", override: "custom", want: "custom"},
		{name: "override for unknown host", url: "https://sso.example.com/token", override: AudienceAuth0, want: AudienceAuth0},
		{name: "unknown host", url: "https://sso.example.com/token", wantErr: true},
		{name: "look-alike host", url: "https://auth.app.wiz.io.evil.com/oauth/token", wantErr: true},
		{name: "empty", url: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AudienceFor(tt.url, tt.override)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("AudienceFor(%q) = %q, want an error", tt.url, got)
				}
				if !strings.Contains(err.Error(), "wiz.") {
					t.Errorf("error %q does not name the config key", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("AudienceFor(%q, %q) = %q, %v; want %q", tt.url, tt.override, got, err, tt.want)
			}
		})
	}
}

func TestNormalizeAPIURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://api.us1.app.wiz.io/graphql", "https://api.us1.app.wiz.io/graphql"},
		{"https://api.us1.app.wiz.io", "https://api.us1.app.wiz.io/graphql"},
		{"https://api.us1.app.wiz.io/", "https://api.us1.app.wiz.io/graphql"},
		{"https://api.us1.app.wiz.io/graphql/", "https://api.us1.app.wiz.io/graphql"},
		{"api.us1.app.wiz.io", "https://api.us1.app.wiz.io/graphql"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000/graphql"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeAPIURL(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("NormalizeAPIURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := NormalizeAPIURL(""); err == nil {
		t.Error("NormalizeAPIURL(\"\") succeeded")
	}
}

func TestTokenRequestWire(t *testing.T) {
	f := newFakeWiz(t)
	c := newTestClient(t, f.options())
	if err := c.Token(testCtx(t)); err != nil {
		t.Fatalf("Token: %v", err)
	}
	reqs := f.recorded("/oauth/token")
	if len(reqs) != 1 {
		t.Fatalf("token requests = %d, want 1", len(reqs))
	}
	r := reqs[0]
	form, err := url.ParseQuery(string(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"grant_type": {"client_credentials"}, "audience": {AudienceCognito},
		"client_id": {testClientID}, "client_secret": {testSecret}}
	for k, v := range want {
		if form.Get(k) != v[0] {
			t.Errorf("form %s = %q, want %q", k, form.Get(k), v[0])
		}
	}
	if got := r.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("credentials sent in a header too: %q", got)
	}
	if got := r.Header.Get("User-Agent"); got != "wizfetch/1.2.3" {
		t.Errorf("User-Agent = %q", got)
	}
	if r.ContentLength != int64(len(r.Body)) {
		t.Errorf("Content-Length = %d, body %d bytes", r.ContentLength, len(r.Body))
	}
}

func TestTokenFailureIsClearAndSecretFree(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      map[string]any
		wantClass error
		wantText  []string
	}{
		{name: "auth0 401", status: 401, body: map[string]any{"error": "access_denied", "error_description": "Unauthorized"},
			wantClass: ErrAuth, wantText: []string{"authentication failed", "401", "access_denied", "Unauthorized", "wiz.client_secret", "/oauth/token"}},
		{name: "cognito 400 invalid_client", status: 400, body: map[string]any{"error": "invalid_client"},
			wantClass: ErrAuth, wantText: []string{"authentication failed", "400", "invalid_client"}},
		{name: "server echoes the secret", status: 401, body: map[string]any{"error": "access_denied", "error_description": "bad secret " + testSecret},
			wantClass: ErrAuth, wantText: []string{"***"}},
		{name: "no JSON body", status: 403, body: nil, wantClass: ErrAuth, wantText: []string{"403", "Forbidden"}},
		{name: "server down", status: 503, body: map[string]any{"error": "unavailable"}, wantClass: ErrTransient, wantText: []string{"503"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setToken(func(w http.ResponseWriter, _ url.Values, _ int64) {
				if tt.body == nil {
					w.WriteHeader(tt.status)
					return
				}
				writeJSON(w, tt.status, tt.body)
			})
			opts := f.options()
			opts.RetryFor = 50 * time.Millisecond
			c := newTestClient(t, opts)
			_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 10, "")
			if !errors.Is(err, tt.wantClass) {
				t.Fatalf("err = %v, want class %v", err, tt.wantClass)
			}
			msg := err.Error()
			if strings.Contains(msg, testSecret) || strings.Contains(msg, "client_secret=") {
				t.Fatalf("error leaks the secret or the request: %q", msg)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q lacks %q", msg, s)
				}
			}
			if n := f.gqlCount.Load(); n != 0 {
				t.Errorf("graphql requests without a token = %d", n)
			}
		})
	}
}

func TestManyCallsShareOneToken(t *testing.T) {
	f := newFakeWiz(t)
	release := make(chan struct{})
	f.setToken(func(w http.ResponseWriter, _ url.Values, n int64) {
		<-release // hold the first refresh until every caller is waiting on it
		writeJSON(w, 200, map[string]any{"access_token": "shared", "expires_in": 3600})
	})
	var badAuth atomic.Int64
	f.setGraphQL(func(w http.ResponseWriter, r *http.Request, _ gqlRequest, _ int64) {
		if r.Header.Get("Authorization") != "Bearer shared" {
			badAuth.Add(1)
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	c := newTestClient(t, f.options())
	ctx := testCtx(t)
	const callers = 40
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := c.Issues(ctx, IssueFilter{}, nil, 5, "")
			errs <- err
		})
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Issues: %v", err)
		}
	}
	if n := f.tokenCount.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if n := f.gqlCount.Load(); n != callers {
		t.Errorf("graphql requests = %d, want %d", n, callers)
	}
	if n := badAuth.Load(); n != 0 {
		t.Errorf("%d requests without the bearer token", n)
	}
}

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn int
		stillGood time.Duration // no refresh yet
		due       time.Duration // refreshed by then
	}{
		{name: "24h token refreshes 60s early", expiresIn: 86400, stillGood: 86400*time.Second - 61*time.Second, due: 86400*time.Second - 59*time.Second},
		{name: "2s token refreshes at half-life", expiresIn: 2, stillGood: 900 * time.Millisecond, due: 1100 * time.Millisecond},
		{name: "100s token refreshes at half-life", expiresIn: 100, stillGood: 49 * time.Second, due: 51 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setToken(func(w http.ResponseWriter, _ url.Values, n int64) {
				writeJSON(w, 200, map[string]any{"access_token": "t" + string(rune('0'+n)), "expires_in": tt.expiresIn})
			})
			clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			opts := f.options()
			opts.now = clock.Now
			c := newTestClient(t, opts)
			ctx := testCtx(t)
			if err := c.Token(ctx); err != nil {
				t.Fatal(err)
			}
			clock.Advance(tt.stillGood)
			if err := c.Token(ctx); err != nil {
				t.Fatal(err)
			}
			if n := f.tokenCount.Load(); n != 1 {
				t.Fatalf("after %v: token requests = %d, want 1", tt.stillGood, n)
			}
			clock.Advance(tt.due - tt.stillGood)
			if err := c.Token(ctx); err != nil {
				t.Fatal(err)
			}
			if n := f.tokenCount.Load(); n != 2 {
				t.Fatalf("after %v: token requests = %d, want 2", tt.due, n)
			}
		})
	}
}

func TestRejectedTokenForcesOneRefreshAndRetry(t *testing.T) {
	tests := []struct {
		name   string
		reject func(w http.ResponseWriter)
	}{
		{name: "HTTP 401", reject: func(w http.ResponseWriter) { writeJSON(w, 401, gqlErrors("UNAUTHENTICATED", "token expired")) }},
		{name: "200 UNAUTHENTICATED", reject: func(w http.ResponseWriter) { writeJSON(w, 200, gqlErrors("UNAUTHENTICATED", "token expired")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, r *http.Request, _ gqlRequest, _ int64) {
				if r.Header.Get("Authorization") == "Bearer tok-1" {
					tt.reject(w)
					return
				}
				writeJSON(w, 200, map[string]any{"data": emptyIssues()})
			})
			c := newTestClient(t, f.options())
			if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
				t.Fatalf("Issues: %v", err)
			}
			if n := f.tokenCount.Load(); n != 2 {
				t.Errorf("token requests = %d, want 2", n)
			}
			if n := f.gqlCount.Load(); n != 2 {
				t.Errorf("graphql requests = %d, want 2", n)
			}
		})
		t.Run(tt.name+" persistent", func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) { tt.reject(w) })
			c := newTestClient(t, f.options())
			_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			if n := f.gqlCount.Load(); n != 2 {
				t.Errorf("graphql requests = %d, want exactly one retry (2)", n)
			}
		})
	}
}

func TestSecretFileReReadAfterRejectedRefresh(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("old-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeWiz(t)
	var mu sync.Mutex
	accepted := "old-secret"
	f.setToken(func(w http.ResponseWriter, form url.Values, n int64) {
		mu.Lock()
		ok := form.Get("client_secret") == accepted
		mu.Unlock()
		if !ok {
			writeJSON(w, 401, map[string]any{"error": "access_denied", "error_description": "Unauthorized"})
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": "tok-" + form.Get("client_secret"), "expires_in": 3600})
	})
	opts := f.options()
	opts.ClientSecret = ""
	opts.ClientSecretFile = file
	c := newTestClient(t, opts)
	ctx := testCtx(t)
	if err := c.Token(ctx); err != nil {
		t.Fatalf("first token: %v", err)
	}
	// Rotate: Wiz accepts only the new secret, the file is rewritten, the old token is rejected.
	mu.Lock()
	accepted = "new-secret"
	mu.Unlock()
	if err := os.WriteFile(file, []byte("new-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.setGraphQL(func(w http.ResponseWriter, r *http.Request, _ gqlRequest, _ int64) {
		if r.Header.Get("Authorization") != "Bearer tok-new-secret" {
			writeJSON(w, 401, gqlErrors("UNAUTHENTICATED", "expired"))
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	if _, err := c.Issues(ctx, IssueFilter{}, nil, 1, ""); err != nil {
		t.Fatalf("Issues after rotation: %v", err)
	}
	// old ok, old rejected, new ok
	if n := f.tokenCount.Load(); n != 3 {
		t.Errorf("token requests = %d, want 3", n)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	base := Options{APIURL: "https://api.us1.app.wiz.io", ClientID: "id", ClientSecret: "s"}
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{name: "no client id", mutate: func(o *Options) { o.ClientID = "" }, want: "wiz.client_id"},
		{name: "no secret", mutate: func(o *Options) { o.ClientSecret = "" }, want: "client secret"},
		{name: "missing secret file", mutate: func(o *Options) { o.ClientSecret = ""; o.ClientSecretFile = "/nonexistent/x" }, want: "wiz.client_secret_file"},
		{name: "unknown auth host", mutate: func(o *Options) { o.AuthURL = "https://login.example.com/token" }, want: "wiz.audience"},
		{name: "bad proxy", mutate: func(o *Options) { o.Proxy = "::nope" }, want: "wiz.proxy"},
		{name: "missing CA", mutate: func(o *Options) { o.CAFile = "/nonexistent/ca.pem" }, want: "wiz.ca_file"},
		{name: "no api url", mutate: func(o *Options) { o.APIURL = "" }, want: "wiz.api_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mutate(&o)
			_, err := New(t.Context(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: err = %v, want mention of %q", err, tt.want)
			}
		})
	}
	c, err := New(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthURL() != wizdef.AuthURLCommercial || c.Audience() != AudienceCognito || c.APIURL() != "https://api.us1.app.wiz.io/graphql" {
		t.Errorf("defaults: auth %q audience %q api %q", c.AuthURL(), c.Audience(), c.APIURL())
	}
}

// An empty AuthURL follows the API host: GovCloud-hosted commercial tenants (*.gov.wiz.io) take
// auth.gov.wiz.io (Sekoia token_refresher.py, Wiz pack get_token), FedRAMP keeps auth.app.wiz.us.
func TestNewDerivesAuthURLFromAPIHost(t *testing.T) {
	tests := []struct{ api, wantAuth string }{
		{"https://api.us17.app.wiz.io/graphql", "https://auth.app.wiz.io/oauth/token"},
		{"https://api.usgov1.gov.wiz.io/graphql", "https://auth.gov.wiz.io/oauth/token"},
		{"https://api.us1.app.wiz.us/graphql", "https://auth.app.wiz.us/oauth/token"},
	}
	for _, tt := range tests {
		t.Run(tt.api, func(t *testing.T) {
			c, err := New(t.Context(), Options{APIURL: tt.api, ClientID: testClientID, ClientSecret: testSecret})
			if err != nil {
				t.Fatal(err)
			}
			if c.AuthURL() != tt.wantAuth || c.Audience() != AudienceCognito {
				t.Errorf("auth %q audience %q, want %q %q", c.AuthURL(), c.Audience(), tt.wantAuth, AudienceCognito)
			}
		})
	}
}
