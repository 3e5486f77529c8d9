package wiz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testClientID = "test-client-id"
	testSecret   = "S3CRET-value-that-must-never-leak-0123456789abcdef0123456789abcd"
)

// gqlRequest is a decoded GraphQL request body.
type gqlRequest struct {
	Query         string          `json:"query"`
	Variables     json.RawMessage `json:"variables"`
	OperationName string          `json:"operationName"`
}

// recorded is one request as the fake server saw it.
type recorded struct {
	Path          string
	Header        http.Header
	Body          []byte
	ContentLength int64
}

// fakeWiz is a scriptable Wiz: POST /oauth/token and POST /graphql.
type fakeWiz struct {
	srv        *httptest.Server
	tokenCount atomic.Int64
	gqlCount   atomic.Int64

	mu       sync.Mutex
	token    func(w http.ResponseWriter, form url.Values, n int64)
	graphql  func(w http.ResponseWriter, r *http.Request, req gqlRequest, n int64)
	requests []recorded
}

func newFakeWiz(t *testing.T) *fakeWiz {
	t.Helper()
	f := &fakeWiz{}
	f.token = func(w http.ResponseWriter, form url.Values, n int64) {
		writeJSON(w, 200, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer", "expires_in": 3600})
	}
	f.graphql = func(w http.ResponseWriter, r *http.Request, req gqlRequest, n int64) {
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWiz) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, ContentLength: r.ContentLength})
	tokenH, gqlH := f.token, f.graphql
	f.mu.Unlock()
	switch r.URL.Path {
	case "/oauth/token":
		n := f.tokenCount.Add(1)
		form, _ := url.ParseQuery(string(body))
		tokenH(w, form, n)
	case "/graphql":
		n := f.gqlCount.Add(1)
		var req gqlRequest
		_ = json.Unmarshal(body, &req)
		gqlH(w, r, req, n)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeWiz) setToken(h func(w http.ResponseWriter, form url.Values, n int64)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = h
}

func (f *fakeWiz) setGraphQL(h func(w http.ResponseWriter, r *http.Request, req gqlRequest, n int64)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.graphql = h
}

func (f *fakeWiz) recorded(path string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.requests {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// options returns client options pointing at the fake with near-zero backoff.
func (f *fakeWiz) options() Options {
	return Options{
		APIURL:       f.srv.URL + "/graphql",
		AuthURL:      f.srv.URL + "/oauth/token",
		Audience:     AudienceCognito,
		ClientID:     testClientID,
		ClientSecret: testSecret,
		Version:      "1.2.3",
		HTTPClient:   f.srv.Client(),
		RetryFor:     10 * time.Second,
		backoff:      func(int) time.Duration { return time.Millisecond },
	}
}

func newTestClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func emptyIssues() map[string]any {
	return map[string]any{"issues": map[string]any{"nodes": []any{}, "pageInfo": map[string]any{"hasNextPage": false, "endCursor": nil}}}
}

func gqlErrors(code, msg string) map[string]any {
	return map[string]any{"errors": []any{map[string]any{"message": msg, "extensions": map[string]any{"code": code}}}}
}

// mustTestCtx returns a context that ends with the test, bounded by a generous deadline.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
