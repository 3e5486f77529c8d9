package wiz

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
)

func TestOptionsFromConfig(t *testing.T) {
	t.Setenv("WIZ_TEST_SECRET", "from-env")
	tests := []struct {
		name       string
		in         config.Wiz
		wantSecret string
	}{
		{name: "inline secret", in: config.Wiz{ClientSecret: "inline"}, wantSecret: "inline"},
		{name: "env secret", in: config.Wiz{ClientSecretEnv: "WIZ_TEST_SECRET"}, wantSecret: "from-env"},
		{name: "file secret is read by New", in: config.Wiz{ClientSecretFile: "/run/secrets/wiz", ClientSecretEnv: "WIZ_TEST_SECRET"}, wantSecret: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.in
			w.APIURL, w.AuthURL, w.ClientID, w.Audience = "https://api.us1.app.wiz.io", "https://auth.app.wiz.io/oauth/token", "cid", "aud"
			w.RequestsPerSecond, w.Timeout, w.Proxy, w.CAFile = 2, config.Duration(90*time.Second), "http://proxy:3128", "/ca.pem"
			o := OptionsFromConfig(w, "1.0.0")
			if o.ClientSecret != tt.wantSecret || o.ClientSecretFile != w.ClientSecretFile {
				t.Errorf("secret = %q, file %q", o.ClientSecret, o.ClientSecretFile)
			}
			if o.APIURL != w.APIURL || o.AuthURL != w.AuthURL || o.ClientID != "cid" || o.Audience != "aud" ||
				o.RequestsPerSecond != 2 || o.Timeout != 90*time.Second || o.Proxy != w.Proxy || o.CAFile != w.CAFile || o.Version != "1.0.0" {
				t.Errorf("options = %+v", o)
			}
		})
	}
}

// recordingObserver records Observer calls.
type recordingObserver struct {
	mu       sync.Mutex
	requests []string
	retries  []string
	causes   []string // OnRetrying calls: "endpoint: cause"
	refresh  []bool
	// onCause, when set, receives each OnRetrying cause (tests waiting for the first one).
	onCause chan<- string
}

func (r *recordingObserver) OnRequest(endpoint string, status int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, endpoint+" "+http.StatusText(status))
}

func (r *recordingObserver) OnRetry(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries = append(r.retries, reason)
}

func (r *recordingObserver) OnRetrying(endpoint, cause string) {
	r.mu.Lock()
	r.causes = append(r.causes, endpoint+": "+cause)
	ch := r.onCause
	r.mu.Unlock()
	if ch != nil {
		select {
		case ch <- cause:
		default:
		}
	}
}

func (r *recordingObserver) OnTokenRefresh(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh = append(r.refresh, ok)
}

func TestObserverAndLogsHoldNoSecrets(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
		if n == 1 {
			writeJSON(w, 503, gqlErrors("INTERNAL", "blip"))
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	var logs bytes.Buffer
	obs := &recordingObserver{}
	opts := f.options()
	opts.Metrics = obs
	opts.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestClient(t, opts)
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 1, ""); err != nil {
		t.Fatal(err)
	}
	// A failing refresh too, so its log lines are checked.
	f.setToken(func(w http.ResponseWriter, _ url.Values, _ int64) {
		writeJSON(w, 401, map[string]any{"error": "access_denied"})
	})
	c.tokens.Invalidate("")
	_ = c.Token(testCtx(t))

	obs.mu.Lock()
	defer obs.mu.Unlock()
	wantReq := []string{"token OK", "graphql Service Unavailable", "graphql OK", "token Unauthorized"}
	if strings.Join(obs.requests, ",") != strings.Join(wantReq, ",") {
		t.Errorf("OnRequest calls = %q, want %q", obs.requests, wantReq)
	}
	if strings.Join(obs.retries, ",") != "503" {
		t.Errorf("OnRetry calls = %q", obs.retries)
	}
	if len(obs.refresh) != 2 || !obs.refresh[0] || obs.refresh[1] {
		t.Errorf("OnTokenRefresh calls = %v, want [true false]", obs.refresh)
	}
	out := logs.String()
	if !strings.Contains(out, "retrying request") {
		t.Errorf("no retry log line: %s", out)
	}
	for _, secret := range []string{testSecret, "tok-1", "Bearer"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q: %s", secret, out)
		}
	}
}

// Without a Timeout (or with the config default) every attempt, to the GraphQL and to the token
// endpoint, is bounded at 115 s: under the Wiz gateway's own timeout, as in the Wiz XSOAR pack
// (PR #44400), so a slow answer still arrives instead of the gateway's error.
func TestDefaultTimeoutStaysUnderTheGateway(t *testing.T) {
	const want = 115 * time.Second
	for _, timeout := range []time.Duration{0, config.Default().Wiz.Timeout.D()} {
		c := newTestClient(t, Options{APIURL: "https://api.us1.app.wiz.io", ClientID: testClientID, ClientSecret: testSecret, Timeout: timeout})
		token := c.tokens.httpClient.Transport.(*retryTransport)
		if c.retry.timeout != want || token.timeout != want {
			t.Errorf("Timeout %v: graphql attempts %v, token attempts %v, want %v", timeout, c.retry.timeout, token.timeout, want)
		}
	}
}
