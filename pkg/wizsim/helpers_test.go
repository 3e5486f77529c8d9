package wizsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injected clock tests advance by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a simulator behind httptest with a fake clock.
type harness struct {
	t     *testing.T
	sim   *Server
	http  *httptest.Server
	clock *fakeClock
	token string
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	clock := newClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	sim, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		ts.Close()
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	h := &harness{t: t, sim: sim, http: ts, clock: clock}
	h.token = h.newToken()
	return h
}

// revealAll moves the clock past every issue's visibility lag.
func (h *harness) revealAll() { h.clock.Advance(maxLag) }

func (h *harness) postToken(form url.Values) (int, map[string]any) {
	h.t.Helper()
	resp, err := http.PostForm(h.http.URL+"/oauth/token", form)
	if err != nil {
		h.t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		h.t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, m
}

func goodForm(aud string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {"wizsim-client"},
		"client_secret": {"wizsim-secret"}, "audience": {aud}}
}

func (h *harness) newToken() string {
	h.t.Helper()
	aud := audiences[h.sim.opts.Auth]
	status, m := h.postToken(goodForm(aud))
	if status != http.StatusOK {
		h.t.Fatalf("token: status %d %v", status, m)
	}
	return m["access_token"].(string)
}

// raw posts a GraphQL request and returns the status, headers and body.
func (h *harness) raw(token, query string, vars map[string]any) (int, http.Header, []byte) {
	h.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("graphql request: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, resp.Header, b
}

// gqlResp is a decoded GraphQL response.
type gqlResp struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
}

func (h *harness) do(query string, vars map[string]any) (int, gqlResp) {
	h.t.Helper()
	status, _, b := h.raw(h.token, query, vars)
	var r gqlResp
	if err := json.Unmarshal(b, &r); err != nil {
		h.t.Fatalf("decode %q: %v", b, err)
	}
	return status, r
}

// pageNode is the part of a node the paging tests look at.
type pageNode struct {
	ID              string  `json:"id"`
	CreatedAt       string  `json:"createdAt"`
	StatusChangedAt *string `json:"statusChangedAt"`
	Severity        string  `json:"severity"`
	Status          string  `json:"status"`
	Type            string  `json:"type"`
}

type issuesPage struct {
	Nodes    []pageNode `json:"nodes"`
	PageInfo struct {
		HasNextPage bool    `json:"hasNextPage"`
		EndCursor   *string `json:"endCursor"`
	} `json:"pageInfo"`
}

// page runs the standard query and fails the test on any error.
func (h *harness) page(vars map[string]any) issuesPage {
	h.t.Helper()
	status, r := h.do(StandardQuery, vars)
	if status != http.StatusOK || len(r.Errors) > 0 {
		h.t.Fatalf("page: status %d errors %+v", status, r.Errors)
	}
	var p issuesPage
	if err := json.Unmarshal(r.Data["issues"], &p); err != nil {
		h.t.Fatalf("decode page: %v", err)
	}
	return p
}

// walk follows endCursor from the first page to the last and returns every node in order.
func (h *harness) walk(first int, filter, order map[string]any) []pageNode {
	h.t.Helper()
	var out []pageNode
	vars := map[string]any{"first": first}
	if filter != nil {
		vars["filterBy"] = filter
	}
	if order != nil {
		vars["orderBy"] = order
	}
	for n := 0; ; n++ {
		if n > 100000 {
			h.t.Fatal("walk does not end")
		}
		p := h.page(vars)
		if len(p.Nodes) > first {
			h.t.Fatalf("page of %d nodes for first=%d", len(p.Nodes), first)
		}
		out = append(out, p.Nodes...)
		if !p.PageInfo.HasNextPage {
			return out
		}
		if p.PageInfo.EndCursor == nil || *p.PageInfo.EndCursor == "" {
			h.t.Fatal("hasNextPage without endCursor")
		}
		vars["after"] = *p.PageInfo.EndCursor
	}
}

func ids(nodes []pageNode) []string {
	out := make([]string, len(nodes))
	for k, n := range nodes {
		out[k] = n.ID
	}
	return out
}

func sortedIDs(states []IssueState) []string {
	out := make([]string, len(states))
	for k, st := range states {
		out[k] = st.ID
	}
	sort.Strings(out)
	return out
}

func visible(states []IssueState, now time.Time) []IssueState {
	var out []IssueState
	for _, st := range states {
		if !now.Before(st.VisibleAt) {
			out = append(out, st)
		}
	}
	return out
}

// tsRE is Wiz's timestamp form (tsLayout): up to six fractional digits, the last not 0, or none.
var tsRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,5}[1-9])?Z$`)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	if !tsRE.MatchString(s) {
		t.Fatalf("timestamp %q is not RFC 3339 UTC to the microsecond, trailing zeros left out, as Wiz writes it", s)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}
