package wiz

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		script    []int // status per graphql request; beyond the script: 200
		wantErr   error
		wantCalls int64
	}{
		{name: "5xx blips survived", script: []int{500, 502, 503, 504}, wantCalls: 5},
		{name: "429 burst survived", script: []int{429, 429, 429}, wantCalls: 4},
		{name: "400 not retried", script: []int{400}, wantErr: ErrBadRequest, wantCalls: 1},
		{name: "403 not retried", script: []int{403}, wantErr: ErrPermission, wantCalls: 1},
		{name: "404 not retried", script: []int{404}, wantErr: ErrBadRequest, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
				if int(n) <= len(tt.script) {
					writeJSON(w, tt.script[n-1], gqlErrors("X", "scripted"))
					return
				}
				writeJSON(w, 200, map[string]any{"data": emptyIssues()})
			})
			c := newTestClient(t, f.options())
			_, err := c.Issues(testCtx(t), IssueFilter{Status: []string{"OPEN"}}, nil, 5, "")
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Issues: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := f.gqlCount.Load(); n != tt.wantCalls {
				t.Errorf("graphql requests = %d, want %d", n, tt.wantCalls)
			}
			// Every attempt replays the same body with a Content-Length.
			reqs := f.recorded("/graphql")
			for i, r := range reqs {
				if !bytes.Equal(r.Body, reqs[0].Body) || len(r.Body) == 0 {
					t.Errorf("attempt %d body differs or is empty", i)
				}
				if r.ContentLength != int64(len(r.Body)) {
					t.Errorf("attempt %d: Content-Length %d for %d bytes", i, r.ContentLength, len(r.Body))
				}
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	f := newFakeWiz(t)
	var mu sync.Mutex
	var times []time.Time
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, gqlErrors("RATE_LIMIT_EXCEEDED", "slow down"))
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	c := newTestClient(t, f.options()) // backoff 1ms: only Retry-After can make the gap long
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatalf("Issues: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("requests = %d, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retry came %v after the 429, want >= 1s", gap)
	}
}

func TestRetryGivesUp(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		writeJSON(w, 503, gqlErrors("INTERNAL", "down"))
	})
	opts := f.options()
	opts.RetryFor = 300 * time.Millisecond
	opts.backoff = func(int) time.Duration { return 40 * time.Millisecond }
	c := newTestClient(t, opts)
	start := time.Now()
	_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
	if !errors.Is(err, ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 503 {
		t.Errorf("err = %#v, want an APIError with HTTP 503", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v, want about RetryFor", d)
	}
	if n := f.gqlCount.Load(); n < 2 || n > 9 {
		t.Errorf("attempts = %d, want a few (bounded by RetryFor)", n)
	}
}

func TestRetryNetworkError(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
		if n == 1 { // drop the connection without a response
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	c := newTestClient(t, f.options())
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatalf("Issues: %v", err)
	}
	if n := f.gqlCount.Load(); n != 2 {
		t.Errorf("graphql requests = %d, want 2", n)
	}
}

func TestCreateNoteNotRetriedOn5xx(t *testing.T) {
	tests := []struct {
		status    int
		wantCalls int64
	}{{503, 1}, {429, 2}}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
				if n == 1 {
					writeJSON(w, tt.status, gqlErrors("X", "first attempt fails"))
					return
				}
				writeJSON(w, 200, map[string]any{"data": map[string]any{"createIssueNote": map[string]any{"issueNote": map[string]any{"id": "n1", "text": "x"}}}})
			})
			c := newTestClient(t, f.options())
			_, _ = c.CreateIssueNote(testCtx(t), "issue-1", "x")
			if n := f.gqlCount.Load(); n != tt.wantCalls {
				t.Errorf("graphql requests = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	f := newFakeWiz(t)
	first := make(chan struct{})
	var once sync.Once
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		once.Do(func() { close(first) })
		w.Header().Set("Retry-After", "3600")
		writeJSON(w, 429, gqlErrors("RATE_LIMIT_EXCEEDED", "slow down"))
	})
	opts := f.options()
	opts.RetryFor = 2 * time.Hour
	c := newTestClient(t, opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Issues(ctx, IssueFilter{}, nil, 5, "")
		done <- err
	}()
	<-first
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Issues did not return after cancellation")
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, r *http.Request, _ gqlRequest, n int64) {
		if n == 1 {
			<-r.Context().Done() // hang until the client gives up on this attempt
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	opts := f.options()
	opts.Timeout = 200 * time.Millisecond
	c := newTestClient(t, opts)
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatalf("Issues: %v", err)
	}
	if n := f.gqlCount.Load(); n != 2 {
		t.Errorf("graphql requests = %d, want 2 (timed out, then retried)", n)
	}
}

func TestGraphQLRequestHeaders(t *testing.T) {
	f := newFakeWiz(t)
	c := newTestClient(t, f.options())
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatal(err)
	}
	r := f.recorded("/graphql")[0]
	checks := map[string]string{"Authorization": "Bearer tok-1", "Content-Type": "application/json", "User-Agent": "wizfetch/1.2.3"}
	for k, want := range checks {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if r.ContentLength <= 0 || r.ContentLength != int64(len(r.Body)) {
		t.Errorf("Content-Length = %d for %d bytes", r.ContentLength, len(r.Body))
	}
}

func TestProxyIsUsed(t *testing.T) {
	f := newFakeWiz(t)
	var proxied atomic.Int64
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL = pr.In.URL // forward proxy: the request line carries the absolute URL
		pr.Out.Host = pr.In.Host
	}}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		proxied.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	opts := f.options()
	opts.HTTPClient = nil // build the transport from Proxy
	opts.Proxy = proxy.URL
	c := newTestClient(t, opts)
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatalf("Issues via proxy: %v", err)
	}
	if n := proxied.Load(); n != 2 {
		t.Errorf("proxied requests = %d, want 2 (token + graphql)", n)
	}
	if n := f.gqlCount.Load(); n != 1 {
		t.Errorf("graphql requests at the server = %d, want 1", n)
	}
}

func TestCAFile(t *testing.T) {
	var handshakes atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			writeJSON(w, 200, map[string]any{"access_token": "t", "expires_in": 3600})
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			handshakes.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case makes handshakes fail
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{APIURL: srv.URL, AuthURL: srv.URL + "/oauth/token", Audience: "wiz-api", ClientID: "id",
		ClientSecret: testSecret, RetryFor: 100 * time.Millisecond, backoff: func(int) time.Duration { return time.Millisecond }}

	t.Run("trusted with ca_file", func(t *testing.T) {
		o := opts
		o.CAFile = caFile
		c := newTestClient(t, o)
		if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 1, ""); err != nil {
			t.Fatalf("Issues: %v", err)
		}
	})
	t.Run("untrusted without", func(t *testing.T) {
		c := newTestClient(t, opts)
		before := handshakes.Load()
		err := c.Token(testCtx(t))
		var unknown x509.UnknownAuthorityError
		if err == nil || !(errors.As(err, &unknown) || strings.Contains(err.Error(), "certificate")) {
			t.Fatalf("Token: err = %v, want a certificate error", err)
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Fatal("error leaks the secret")
		}
		if n := handshakes.Load() - before; n != 1 {
			t.Errorf("TLS handshakes = %d, want 1 (a certificate error is not retried)", n)
		}
	})
}

func TestLimiterPacesAttempts(t *testing.T) {
	f := newFakeWiz(t)
	var mu sync.Mutex
	var times []time.Time
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if n%2 == 1 { // every other attempt is a retry: retries are paced too
			writeJSON(w, 503, gqlErrors("INTERNAL", "blip"))
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	opts := f.options()
	opts.RequestsPerSecond = 20
	c := newTestClient(t, opts)
	ctx := testCtx(t)
	for range 3 {
		if _, err := c.Issues(ctx, IssueFilter{}, nil, 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 6 {
		t.Fatalf("attempts = %d, want 6", len(times))
	}
	// 6 attempts at 20/s with burst 1 take at least 5 intervals of 50ms.
	if span := times[5].Sub(times[0]); span < 5*50*time.Millisecond-10*time.Millisecond {
		t.Errorf("6 attempts took %v, want >= ~250ms at 20 rps", span)
	}
}

// dialTo returns an HTTP client whose connections all go to addr, whatever the URL's host: it
// lets tests use real Wiz host names against a local server.
func dialTo(addr string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

func TestAudienceSentFromHost(t *testing.T) {
	tests := []struct{ authURL, want string }{
		{"http://auth.app.wiz.io/oauth/token", AudienceCognito},
		{"HTTP://AUTH.WIZ.IO/oauth/token", AudienceAuth0},
	}
	for _, tt := range tests {
		t.Run(tt.authURL, func(t *testing.T) {
			f := newFakeWiz(t)
			u, _ := url.Parse(f.srv.URL)
			opts := f.options()
			opts.Audience = ""
			opts.AuthURL = tt.authURL
			opts.HTTPClient = dialTo(u.Host)
			c := newTestClient(t, opts)
			if err := c.Token(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			form, _ := url.ParseQuery(string(f.recorded("/oauth/token")[0].Body))
			if got := form.Get("audience"); got != tt.want {
				t.Errorf("audience = %q, want %q", got, tt.want)
			}
		})
	}
}

// A response the JSON decoder stops reading before its end (chunked, with a trailing newline, as
// many servers send) does not cost the connection: the client's requests share one.
func TestConnectionReusedAfterUnreadTail(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/oauth/token" {
			writeJSON(w, 200, map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]any{"data": emptyIssues()})
		_, _ = w.Write(b)
		w.(http.Flusher).Flush() // chunked from here on
		// The tail comes after the client has its JSON: without draining, the client closes the
		// body before the tail and its terminating chunk, and the connection with it.
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte("\n"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newTestClient(t, (&fakeWiz{srv: srv}).options())
	for i := 0; i < 5; i++ {
		// Alternately through go-graphql-client (exec, which stops reading at the end of the JSON
		// value) and through queryPage (which reads bodies to their end).
		var err error
		if i%2 == 0 {
			_, err = c.exec(testCtx(t), issuesOp, IssuesQuery, issuesVariables(IssueFilter{}, nil, 5, ""))
		} else {
			_, err = c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
		}
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	// One connection for the token (the OAuth client may keep its own) and one for the queries; a
	// request may still dial a second while the previous connection is on its way back to the idle
	// pool, but without draining every query opens its own (6 in all).
	if n := conns.Load(); n >= 5 {
		t.Fatalf("5 queries opened %d connections, want them to share", n)
	}
}

// Closing a body whose rest never comes does not hang: the drain gives up after drainTimeout.
// (queryPage reads bodies to their end instead: a page whose body stalls is a timed-out attempt.)
func TestCloseGivesUpOnAStalledBody(t *testing.T) {
	release := make(chan struct{})
	f := newFakeWiz(t)
	t.Cleanup(func() { close(release) }) // before the server closes (cleanups run last first)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]any{"data": emptyIssues()})
		_, _ = w.Write(b)
		w.(http.Flusher).Flush()
		<-release // the rest of the body never comes while the client waits
	})
	c := newTestClient(t, f.options())
	start := time.Now()
	if _, err := c.exec(testCtx(t), issuesOp, IssuesQuery, issuesVariables(IssueFilter{}, nil, 5, "")); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if d := time.Since(start); d > 10*drainTimeout {
		t.Fatalf("the query took %v with a stalled tail, want about drainTimeout (%v)", d, drainTimeout)
	}
}

// A retried 5xx whose body stalls does not hold the retry for the whole attempt timeout: its drain
// gives up after drainTimeout like any other.
func TestRetryDoesNotWaitForAStalledErrorBody(t *testing.T) {
	release := make(chan struct{})
	f := newFakeWiz(t)
	t.Cleanup(func() { close(release) })
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			<-release // the rest of the error body never comes while the client waits
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	opts := f.options()
	opts.RetryFor, opts.Timeout = 30*time.Second, 30*time.Second
	c := newTestClient(t, opts)
	start := time.Now()
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatalf("Issues: %v", err)
	}
	if d := time.Since(start); d > 10*drainTimeout {
		t.Fatalf("the retry took %v after a stalled 503 body, want about drainTimeout (%v)", d, drainTimeout)
	}
	if n := f.gqlCount.Load(); n != 2 {
		t.Fatalf("%d queries, want the 503 and its retry", n)
	}
}

// RATE_LIMIT_EXCEEDED inside an HTTP 200 is throttling (Wiz maps the code to 429: Wiz's Backstage
// plugin, types/index.ts): the client backs off and retries it as a 429, for issue pages and for
// operations through the GraphQL library alike (a mutation too: a throttled request was not
// processed), and counts each retry under reason "429".
func TestThrottledInsideHTTP200IsRetriedAs429(t *testing.T) {
	tests := []struct {
		name string
		data map[string]any
		call func(ctx context.Context, c *Client) error
	}{
		{name: "issues page", data: emptyIssues(), call: func(ctx context.Context, c *Client) error {
			_, err := c.Issues(ctx, IssueFilter{}, nil, 5, "")
			return err
		}},
		{name: "mutation", data: map[string]any{"createIssueNote": map[string]any{"issueNote": map[string]any{"id": "n1", "text": "x"}}},
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateIssueNote(ctx, "issue-1", "x")
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
				if n <= 2 {
					writeJSON(w, 200, map[string]any{"data": nil, "errors": gqlErrors("RATE_LIMIT_EXCEEDED", "slow down")["errors"]})
					return
				}
				writeJSON(w, 200, map[string]any{"data": tt.data})
			})
			obs := &recordingObserver{}
			opts := f.options()
			opts.Metrics = obs
			c := newTestClient(t, opts)
			if err := tt.call(testCtx(t), c); err != nil {
				t.Fatalf("call after two throttled answers: %v", err)
			}
			if n := f.gqlCount.Load(); n != 3 {
				t.Errorf("graphql requests = %d, want 3", n)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if got := strings.Join(obs.retries, ","); got != "429,429" {
				t.Errorf("OnRetry calls = %q, want two 429 retries", got)
			}
		})
	}
}

// Throttling inside a 200 that outlasts RetryFor ends as ErrTransient, with the code kept.
func TestThrottledInsideHTTP200GivesUp(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		writeJSON(w, 200, gqlErrors("RATE_LIMIT_EXCEEDED", "slow down"))
	})
	opts := f.options()
	opts.RetryFor = 300 * time.Millisecond
	opts.backoff = func(int) time.Duration { return 40 * time.Millisecond }
	c := newTestClient(t, opts)
	_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
	if !errors.Is(err, ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
	if apiErr, ok := errors.AsType[*APIError](err); !ok || apiErr.Code != "RATE_LIMIT_EXCEEDED" {
		t.Errorf("err = %#v, want an APIError with code RATE_LIMIT_EXCEEDED", err)
	}
	if n := f.gqlCount.Load(); n < 2 || n > 9 {
		t.Errorf("attempts = %d, want a few (bounded by RetryFor)", n)
	}
}

// A throttled answer inside a 200 whose backoff outlives the caller's context returns the
// context's error at once.
func TestThrottledInsideHTTP200Cancel(t *testing.T) {
	f := newFakeWiz(t)
	first := make(chan struct{})
	var once sync.Once
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		once.Do(func() { close(first) })
		writeJSON(w, 200, gqlErrors("RATE_LIMIT_EXCEEDED", "slow down"))
	})
	opts := f.options()
	opts.RetryFor = 2 * time.Hour
	opts.backoff = func(int) time.Duration { return time.Hour }
	c := newTestClient(t, opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Issues(ctx, IssueFilter{}, nil, 5, "")
		done <- err
	}()
	<-first
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Issues did not return after cancellation")
	}
}
