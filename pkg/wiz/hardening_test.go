package wiz

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testMutation is an operation sent through exec, the path of the write-back mutations.
const testMutation = `mutation DeleteIssueNote { deleteIssueNote(input: {id: "n-1"}) { _stub } }`

// hitCounter is a server that must never be reached: it counts requests and remembers their
// Authorization headers and bodies.
type hitCounter struct {
	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	seen []string // "Authorization | body" of each request
}

func newHitCounter(t *testing.T) *hitCounter {
	t.Helper()
	h := &hitCounter{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.hits.Add(1)
		h.mu.Lock()
		h.seen = append(h.seen, r.Header.Get("Authorization")+" | "+string(body))
		h.mu.Unlock()
		writeJSON(w, 200, map[string]any{"access_token": "stolen", "expires_in": 3600, "data": emptyIssues()})
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// redirectLocation is where the hostile servers send the client: another host, with user info and
// a query that must not appear in errors.
func redirectLocation(other *hitCounter, path string) string {
	u, _ := url.Parse(other.srv.URL)
	u.User = url.UserPassword("thief", "pw-in-location")
	u.Path = path
	u.RawQuery = "code=query-in-location"
	return u.String()
}

// checkRedirectError checks that err is a bad request naming the redirect target without its
// user info and query, with the key to fix.
func checkRedirectError(t *testing.T, err error, other *hitCounter, path, key string) {
	t.Helper()
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err = %v, want a bad request", err)
	}
	msg := err.Error()
	if want := other.srv.URL + path; !strings.Contains(msg, want) {
		t.Errorf("error %q does not name the target %s", msg, want)
	}
	for _, leak := range []string{"thief", "pw-in-location", "query-in-location"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q shows %q of the Location", msg, leak)
		}
	}
	if !strings.Contains(msg, key) {
		t.Errorf("error %q does not say to fix %s", msg, key)
	}
	if n := other.hits.Load(); n != 0 {
		other.mu.Lock()
		defer other.mu.Unlock()
		t.Fatalf("the redirect target received %d request(s): %q", n, other.seen)
	}
}

// A token endpoint that redirects never gets the client secret re-posted to the target.
func TestTokenRedirectIsNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(codeName(code), func(t *testing.T) {
			other := newHitCounter(t)
			f := newFakeWiz(t)
			f.setToken(func(w http.ResponseWriter, _ url.Values, _ int64) {
				w.Header().Set("Location", redirectLocation(other, "/steal"))
				w.WriteHeader(code)
			})
			c := newTestClient(t, f.options())
			err := c.Token(testCtx(t))
			checkRedirectError(t, err, other, "/steal", "wiz.auth_url")
			if got := len(f.recorded("/oauth/token")); got != 1 {
				t.Errorf("token requests = %d, want 1 (a redirect is not retried)", got)
			}
		})
	}
}

// A GraphQL endpoint that redirects never gets the Bearer token sent to the target, on the issues
// path (queryPage) or the library's (exec, as mutations use).
func TestGraphQLRedirectIsNotFollowed(t *testing.T) {
	calls := map[string]func(c *Client, ctx context.Context) error{
		"issues page": func(c *Client, ctx context.Context) error {
			_, err := c.Issues(ctx, IssueFilter{}, nil, 5, "")
			return err
		},
		"operation": func(c *Client, ctx context.Context) error {
			_, err := c.exec(ctx, "DeleteIssueNote", testMutation, nil)
			return err
		},
	}
	for name, call := range calls {
		for _, code := range []int{http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(name+" "+codeName(code), func(t *testing.T) {
				other := newHitCounter(t)
				f := newFakeWiz(t)
				f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
					w.Header().Set("Location", redirectLocation(other, "/graphql"))
					w.WriteHeader(code)
				})
				c := newTestClient(t, f.options())
				err := call(c, testCtx(t))
				checkRedirectError(t, err, other, "/graphql", "wiz.api_url")
			})
		}
	}
}

// codeName names a subtest after an HTTP status.
func codeName(code int) string { return fmt.Sprintf("%d", code) }

// endless writes prefix and then filler until the client stops reading (or max bytes, so that the
// test ends even against a client that reads everything).
func endless(w http.ResponseWriter, status int, contentType, prefix string, max int64) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	n, _ := io.WriteString(w, prefix)
	written := int64(n)
	chunk := bytes.Repeat([]byte("a"), 32<<10)
	for written < max {
		n, err := w.Write(chunk)
		written += int64(n)
		if err != nil {
			return
		}
	}
}

// countingTransport counts the response body bytes its callers read.
type countingTransport struct {
	base http.RoundTripper
	read *atomic.Int64
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if resp != nil {
		resp.Body = countingBody{ReadCloser: resp.Body, read: c.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	read *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// Endless answers from the token endpoint, to an operation (mutations) and as an error body end in
// a bounded error after a bounded read. Before the bounds, the client read the whole body (all of
// max here, 1 MiB of a token answer; without end in life).
func TestEndlessBodiesAreBounded(t *testing.T) {
	const max = 32 << 20 // what the server writes at most
	// What the client may read: the largest bound, a drain, and a small token answer.
	const readLimit = 1<<20 + drainLimit + 4<<10
	tests := []struct {
		name      string
		token     bool // the endless body comes from the token endpoint, else from GraphQL
		status    int
		ctype     string
		prefix    string
		call      func(c *Client, ctx context.Context) error
		wantClass error
		wantText  string
	}{
		{name: "token JSON", token: true, status: 200, ctype: "application/json", prefix: `{"access_token":"`,
			wantClass: ErrTransient, wantText: "larger than 512 KiB"},
		// oauth2 stops reading a token answer at 1 MiB without an error: a form-encoded one then
		// parsed as a (cut) token.
		{name: "token form", token: true, status: 200, ctype: "application/x-www-form-urlencoded", prefix: "expires_in=3600&access_token=",
			wantClass: ErrTransient, wantText: "larger than 512 KiB"},
		{name: "token error body", token: true, status: 401, ctype: "application/json", prefix: `{"error":"`,
			wantClass: ErrAuth, wantText: "401"},
		{name: "operation", status: 200, ctype: "application/json", prefix: `{"data":{"deleteIssueNote":{"_stub":"`,
			call: func(c *Client, ctx context.Context) error {
				_, err := c.exec(ctx, "DeleteIssueNote", testMutation, nil)
				return err
			},
			wantClass: ErrTransient, wantText: "larger than 1 MiB"},
		{name: "operation error body", status: 400, ctype: "application/json", prefix: `{"errors":[{"message":"`,
			call: func(c *Client, ctx context.Context) error {
				_, err := c.exec(ctx, "DeleteIssueNote", testMutation, nil)
				return err
			},
			wantClass: ErrBadRequest, wantText: "400"},
		{name: "issues page error body", status: 400, ctype: "application/json", prefix: `{"errors":[{"message":"`,
			wantClass: ErrBadRequest, wantText: "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			if tt.token {
				f.setToken(func(w http.ResponseWriter, _ url.Values, _ int64) {
					endless(w, tt.status, tt.ctype, tt.prefix, max)
				})
			} else {
				f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
					endless(w, tt.status, tt.ctype, tt.prefix, max)
				})
			}
			var read atomic.Int64
			opts := f.options()
			opts.HTTPClient = &http.Client{Transport: countingTransport{base: f.srv.Client().Transport, read: &read}}
			opts.RetryFor = 1 // no retries
			c := newTestClient(t, opts)
			call := tt.call
			if call == nil {
				call = func(c *Client, ctx context.Context) error {
					_, err := c.Issues(ctx, IssueFilter{}, nil, 5, "")
					return err
				}
			}
			err := call(c, testCtx(t))
			if !errors.Is(err, tt.wantClass) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("err = %v, want %v with %q", err, tt.wantClass, tt.wantText)
			}
			if n := read.Load(); n > readLimit {
				t.Errorf("the client read %d bytes of the body, want at most %d", n, readLimit)
			}
		})
	}
}

// A page that announces more than maxPageBytes fails at once, naming the bound; a page above the
// 1 MiB bound of other operations is read (pages have their own bound).
func TestPageBound(t *testing.T) {
	t.Run("announced too large", func(t *testing.T) {
		f := newFakeWiz(t)
		f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
			w.Header().Set("Content-Length", fmt.Sprint(maxPageBytes+1))
			_, _ = io.WriteString(w, `{"data":`)
		})
		opts := f.options()
		opts.RetryFor = 1
		c := newTestClient(t, opts)
		_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
		if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "larger than 64 MiB") {
			t.Fatalf("err = %v, want a transient failure naming the 64 MiB bound", err)
		}
	})
	t.Run("large page", func(t *testing.T) {
		f := newFakeWiz(t)
		big := strings.Repeat("x", 3<<20)
		f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":{"issues":{"nodes":[{"id":"i-1","createdAt":"2024-05-01T10:00:00Z","padding":"`+
				big+`"}],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}`)
		})
		c := newTestClient(t, f.options())
		page, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
		if err != nil || len(page.Issues) != 1 {
			t.Fatalf("page = %+v, err = %v", page, err)
		}
	})
}

// TestBoundedBody pins the bound itself: a 2xx body fails past its limit (not at it), any other
// body ends quietly at maxErrorBody, and a Content-Length over the limit fails before reading.
func TestBoundedBody(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		length   int64 // Content-Length; -1 unknown
		body     int
		limit    int64
		wantRead int
		wantErr  bool
	}{
		{"2xx at the limit", 200, -1, 100, 100, 100, false},
		{"2xx over the limit", 200, -1, 101, 100, 100, true},
		{"2xx announced over the limit", 200, 101, 101, 100, 0, true},
		{"error body cut quietly", 500, -1, maxErrorBody + 10, 1 << 20, maxErrorBody, false},
		{"error body under a smaller limit", 404, -1, 200, 100, 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, ContentLength: tt.length, Header: http.Header{},
				Body: io.NopCloser(bytes.NewReader(bytes.Repeat([]byte("a"), tt.body)))}
			got, err := io.ReadAll(boundedBody(resp, tt.limit))
			var tooLarge *bodyTooLargeError
			if (err != nil) != tt.wantErr || (tt.wantErr && !errors.As(err, &tooLarge)) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if len(got) != tt.wantRead {
				t.Errorf("read %d bytes, want %d", len(got), tt.wantRead)
			}
		})
	}
}

// secretForms are the encodings a token endpoint may echo the client secret in.
func secretForms(secret string) map[string]string {
	j, _ := json.Marshal(secret)
	return map[string]string{
		"raw":          secret,
		"form":         url.QueryEscape(secret),
		"json-escaped": string(j[1 : len(j)-1]),
		"base64":       base64.StdEncoding.EncodeToString([]byte(secret)),
	}
}

// checkNoSecret fails when text holds secret in any form, or 8 or more leading bytes of a form.
func checkNoSecret(t *testing.T, text, secret string) {
	t.Helper()
	for name, form := range secretForms(secret) {
		for n := len(form); n >= 8; n-- {
			if strings.Contains(text, form[:n]) {
				t.Errorf("%s form of the secret (first %d bytes) in %q", name, n, text)
				break
			}
		}
	}
}

// A token endpoint that answers 401 echoing the request — the raw form body (the secret
// URL-encoded), a JSON-escaped and a base64 copy — yields an error that holds none of them, nor a
// prefix of one that the 500-byte cut left behind (masking comes before shortening).
func TestTokenErrorMasksEchoedSecretInEveryForm(t *testing.T) {
	// Characters that each encoding changes: space, +, /, =, &, %, ", \ and a non-ASCII rune.
	const secret = `Zq+/=&%"\ é-secret-0123456789-ABCDEFGHIJ-klmnopqrstuvwxyz-0123456789`
	tests := []struct {
		name    string
		padding int // bytes before the echo
	}{
		{"whole echo", 0},
		{"echo across the cut", maxMessageLen - 10}, // a cut keeps 10 bytes of the URL-encoded secret
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			var rawBody atomic.Value
			f.setToken(func(w http.ResponseWriter, form url.Values, _ int64) {
				body := form.Encode()
				rawBody.Store(body)
				forms := secretForms(secret)
				writeJSON(w, 401, map[string]any{
					"error": "invalid_client",
					"error_description": strings.Repeat("p", tt.padding) + forms["form"] + " body:" + body +
						" json:" + forms["json-escaped"] + " b64:" + forms["base64"],
				})
			})
			opts := f.options()
			opts.ClientSecret = secret
			c := newTestClient(t, opts)
			err := c.Token(testCtx(t))
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want an authentication failure", err)
			}
			if b, _ := rawBody.Load().(string); !strings.Contains(b, url.QueryEscape(secret)) {
				t.Fatalf("the server did not see the URL-encoded secret: %q", b)
			}
			checkNoSecret(t, err.Error(), secret)
			// And Check, whose details `wizfetch check` prints.
			steps := Check(testCtx(t), opts)
			if steps[0].OK {
				t.Fatalf("check: %+v", steps)
			}
			checkNoSecret(t, steps[0].Detail, secret)
		})
	}
}

// A GraphQL endpoint that echoes the Authorization header in its error yields an error without
// the access token, whole or cut.
func TestGraphQLErrorMasksEchoedToken(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.access-token-that-must-not-leak-0123456789"
	for _, status := range []int{http.StatusBadRequest, http.StatusOK} {
		t.Run(codeName(status), func(t *testing.T) {
			f := newFakeWiz(t)
			f.setToken(func(w http.ResponseWriter, _ url.Values, _ int64) {
				writeJSON(w, 200, map[string]any{"access_token": token, "expires_in": 3600})
			})
			f.setGraphQL(func(w http.ResponseWriter, r *http.Request, _ gqlRequest, _ int64) {
				echo := strings.Repeat("p", 470) + " you sent " + r.Header.Get("Authorization")
				writeJSON(w, status, gqlErrors("BAD_USER_INPUT", echo))
			})
			c := newTestClient(t, f.options())
			_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err = %v, want a bad request", err)
			}
			checkNoSecret(t, err.Error(), token)
		})
	}
}

// A client whose proxy is a closed port reports the cause through the observer at the first
// failed attempt, long before the retry budget is spent; the proxy's password is not in it.
func TestRetryCauseReportedAtFirstFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now: connections are refused

	f := newFakeWiz(t)
	causes := make(chan string, 1)
	obs := &recordingObserver{onCause: causes}
	opts := f.options()
	opts.HTTPClient = nil // build the transport from Proxy
	opts.Proxy = "http://proxyuser:Pr0xyPassw0rd@" + addr
	opts.Metrics = obs
	opts.RetryFor = 2 * time.Hour
	opts.backoff = func(int) time.Duration { return time.Hour } // one attempt, then a long wait
	c := newTestClient(t, opts)

	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- c.Token(ctx) }()
	var cause string
	select {
	case cause = <-causes:
	case err := <-done:
		t.Fatalf("Token returned %v before any retry cause was reported", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no retry cause reported after the first failed attempt")
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Token succeeded through a closed proxy")
	}
	if !strings.Contains(cause, "token request") || !strings.Contains(cause, "connection refused") {
		t.Errorf("cause = %q, want the token request's connection failure", cause)
	}
	if strings.Contains(cause, "Pr0xyPassw0rd") {
		t.Errorf("cause shows the proxy password: %q", cause)
	}
	if n := f.tokenCount.Load(); n != 0 {
		t.Errorf("the token endpoint was reached %d times around the proxy", n)
	}
}

// The retry cause is cleared once the retried request ends, and carries the HTTP status.
func TestRetryCauseClearedAfterRecovery(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, n int64) {
		if n == 1 {
			writeJSON(w, 503, gqlErrors("INTERNAL", "blip"))
			return
		}
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	})
	obs := &recordingObserver{}
	opts := f.options()
	opts.Metrics = obs
	c := newTestClient(t, opts)
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 1, ""); err != nil {
		t.Fatal(err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := []string{"graphql: graphql request: HTTP 503 Service Unavailable", "graphql: "}
	if strings.Join(obs.causes, "|") != strings.Join(want, "|") {
		t.Errorf("OnRetrying calls = %q, want %q", obs.causes, want)
	}
}

// A wiz.proxy that is not an absolute URL is named in New's error without its password (an opaque
// "user:password@host:port" keeps it through url.URL.Redacted).
func TestBadProxyErrorHidesPassword(t *testing.T) {
	for _, proxy := range []string{"alice:Pr0xyPassw0rd@proxy.internal:3128", "http//alice:Pr0xyPassw0rd@proxy.internal:3128", "alice:Pr0xyPassw0rd%zz@proxy:1"} {
		t.Run(proxy, func(t *testing.T) {
			f := newFakeWiz(t)
			opts := f.options()
			opts.HTTPClient = nil
			opts.Proxy = proxy
			_, err := New(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), "wiz.proxy") {
				t.Fatalf("err = %v, want a wiz.proxy error", err)
			}
			if strings.Contains(err.Error(), "Pr0xyPassw0rd") {
				t.Errorf("error shows the proxy password: %v", err)
			}
		})
	}
}
