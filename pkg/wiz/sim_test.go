package wiz

import (
	"context"
	"errors"
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

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// startSim starts a simulator for the test. The simulator's clock runs 10 minutes ahead of the
// generation time so that every generated issue is visible (late visibility is under 5 minutes).
func startSim(t *testing.T, o wizsim.Options) *wizsim.Server {
	t.Helper()
	if o.Issues == 0 {
		o.Issues = 300
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.Now == nil {
		var ahead atomic.Bool
		o.Now = func() time.Time {
			if ahead.Load() {
				return time.Now().Add(10 * time.Minute)
			}
			return time.Now()
		}
		defer ahead.Store(true)
	}
	sim, err := wizsim.New(o)
	if err != nil {
		t.Fatalf("wizsim.New: %v", err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("wizsim.Start: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// simOptions points a client at sim with quick retries.
func simOptions(sim *wizsim.Server) Options {
	return Options{
		APIURL:       sim.URL(), // without /graphql on purpose
		AuthURL:      sim.TokenURL(),
		Audience:     AudienceCognito,
		ClientID:     "wizsim-client",
		ClientSecret: "wizsim-secret",
		Version:      "test",
		RetryFor:     20 * time.Second,
		backoff:      func(int) time.Duration { return 5 * time.Millisecond },
	}
}

func simCount(sim *wizsim.Server, endpoint string, status int) int {
	return sim.Stats().Requests[endpoint][status]
}

func TestSimAudienceModes(t *testing.T) {
	tests := []struct {
		mode, authURL string
		wantErr       error
	}{
		{mode: "cognito", authURL: "http://auth.app.wiz.io/oauth/token"},
		{mode: "cognito", authURL: "http://Auth.App.Wiz.US/oauth/token"},
		{mode: "auth0", authURL: "http://auth.wiz.io/oauth/token"},
		{mode: "auth0", authURL: "http://auth0.gov.wiz.io/oauth/token"},
		{mode: "auth0", authURL: "http://auth.app.wiz.io/oauth/token", wantErr: ErrAuth}, // Cognito audience at an Auth0 tenant
	}
	for _, tt := range tests {
		t.Run(tt.mode+" "+tt.authURL, func(t *testing.T) {
			sim := startSim(t, wizsim.Options{Auth: tt.mode, Issues: 20})
			u, _ := url.Parse(sim.URL())
			opts := simOptions(sim)
			opts.Audience = ""
			opts.AuthURL = tt.authURL
			opts.HTTPClient = dialTo(u.Host) // the real host name, served by the simulator
			c := newTestClient(t, opts)
			_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Issues: %v", err)
			}
			if n := sim.Stats().TokensIssued; n != 1 {
				t.Errorf("tokens issued = %d, want 1", n)
			}
		})
	}
}

func TestSimWrongSecret(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20})
	opts := simOptions(sim)
	opts.ClientSecret = testSecret
	c := newTestClient(t, opts)
	_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	msg := err.Error()
	for _, want := range []string{"authentication failed", sim.TokenURL(), "401", "wiz.client_secret"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, testSecret) || strings.Contains(msg, "client_secret=") {
		t.Errorf("error leaks the secret: %q", msg)
	}
	if n := simCount(sim, wizsim.EndpointToken, 401); n != 1 {
		t.Errorf("rejected token requests = %d, want 1 (a 401 is not retried)", n)
	}
	if n := len(sim.Stats().Requests[wizsim.EndpointGraphQL]); n != 0 {
		t.Errorf("graphql was called without a token")
	}
}

func TestSimManyCallsShareOneToken(t *testing.T) {
	sim := startSim(t, wizsim.Options{})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 20 {
		wg.Go(func() {
			for range 5 {
				if _, err := c.Issues(ctx, IssueFilter{Status: []string{"OPEN"}}, nil, 10, ""); err != nil {
					t.Errorf("Issues: %v", err)
					failed.Add(1)
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return
	}
	if n := sim.Stats().TokensIssued; n != 1 {
		t.Errorf("tokens issued for 100 calls = %d, want 1", n)
	}
	if n := simCount(sim, wizsim.EndpointGraphQL, 200); n != 100 {
		t.Errorf("graphql 200s = %d, want 100", n)
	}
}

func TestSimExpiringTokenRefreshed(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20, ExpiresIn: 2 * time.Second})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	// Refresh is due 1s (half of the 2s lifetime) after the first token; keep calling until a
	// second token is issued, with a generous deadline.
	deadline := time.Now().Add(20 * time.Second)
	for sim.Stats().TokensIssued < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d tokens issued after 20s of calls", sim.Stats().TokensIssued)
		}
		if _, err := c.Issues(ctx, IssueFilter{}, nil, 1, ""); err != nil {
			t.Fatalf("Issues: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // pacing only; nothing is asserted on timing
	}
	if n := simCount(sim, wizsim.EndpointGraphQL, 401); n != 0 {
		t.Errorf("graphql 401s = %d, want 0: the token must be refreshed before it expires", n)
	}
}

func TestSimExpiredTokenForcesRefresh(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	if _, err := c.Issues(ctx, IssueFilter{}, nil, 1, ""); err != nil {
		t.Fatal(err)
	}
	sim.ExpireTokens()
	if _, err := c.Issues(ctx, IssueFilter{}, nil, 1, ""); err != nil {
		t.Fatalf("Issues after ExpireTokens: %v", err)
	}
	if n := sim.Stats().TokensIssued; n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
	if n := simCount(sim, wizsim.EndpointGraphQL, 401); n != 1 {
		t.Errorf("graphql 401s = %d, want 1", n)
	}
	// The expire fault: every token is dropped mid-run and the request answers 401.
	if err := sim.SetFaults("expire:count=1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Issues(ctx, IssueFilter{}, nil, 1, ""); err != nil {
		t.Fatalf("Issues with expire fault: %v", err)
	}
	if n := sim.Stats().TokensIssued; n != 3 {
		t.Errorf("tokens issued = %d, want 3", n)
	}
}

func TestSimSecretRotation(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20})
	file := filepath.Join(t.TempDir(), "wiz_secret")
	if err := os.WriteFile(file, []byte("wizsim-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := simOptions(sim)
	opts.ClientSecret, opts.ClientSecretFile = "", file
	c := newTestClient(t, opts)
	ctx := testCtx(t)
	if _, err := c.Issues(ctx, IssueFilter{}, nil, 1, ""); err != nil {
		t.Fatal(err)
	}
	sim.SetClientSecret("rotated-secret")
	if err := os.WriteFile(file, []byte("rotated-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sim.ExpireTokens()
	if _, err := c.Issues(ctx, IssueFilter{}, nil, 1, ""); err != nil {
		t.Fatalf("Issues after rotation: %v", err)
	}
	if n := sim.Stats().TokensIssued; n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
}

func TestSim429BurstWithRetryAfter(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20, Faults: "429:count=2,retry_after=1s"})
	c := newTestClient(t, simOptions(sim)) // backoff 5ms: only Retry-After makes waits long
	start := time.Now()
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatalf("Issues: %v", err)
	}
	elapsed := time.Since(start)
	if n := sim.Stats().Throttled; n != 2 {
		t.Errorf("throttled = %d, want 2", n)
	}
	if elapsed < 2*time.Second {
		t.Errorf("two 429s with Retry-After: 1 survived in %v, want >= 2s", elapsed)
	}
}

// The simulator's graphql_ratelimit fault answers HTTP 200 with RATE_LIMIT_EXCEEDED (Wiz's
// Backstage plugin, types/index.ts): the fetch succeeds after backing off, with 429 retries counted.
func TestSimThrottledInsideHTTP200(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20, Faults: wizsim.FaultGraphQLRateLimit + ":count=2"})
	obs := &recordingObserver{}
	opts := simOptions(sim)
	opts.Metrics = obs
	c := newTestClient(t, opts)
	page, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, "")
	if err != nil || len(page.Issues) != 5 {
		t.Fatalf("Issues after two throttled answers: %v", err)
	}
	if n := sim.Stats().Faults[wizsim.FaultGraphQLRateLimit]; n != 2 {
		t.Errorf("throttled answers = %d, want 2", n)
	}
	if st := sim.Stats().Requests[wizsim.EndpointGraphQL]; st[200] != 3 || len(st) != 1 {
		t.Errorf("graphql statuses = %v, want three 200s", st)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if got := strings.Join(obs.retries, ","); got != "429,429" {
		t.Errorf("OnRetry calls = %q, want two 429 retries", got)
	}
}

func TestSim5xxBlips(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20, Faults: "5xx:count=2;5xx:code=502,count=1;5xx:code=500,count=1"})
	c := newTestClient(t, simOptions(sim))
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatalf("Issues: %v", err)
	}
	st := sim.Stats().Requests[wizsim.EndpointGraphQL]
	if st[503] != 2 || st[502] != 1 || st[500] != 1 || st[200] != 1 {
		t.Errorf("graphql statuses = %v, want 2×503, 502, 500, then 200", st)
	}
}

func TestSimBadRequestsNotRetried(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	_, err := c.Issues(ctx, IssueFilter{Status: []string{"BOGUS"}}, nil, 5, "")
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad enum: err = %v, want ErrBadRequest", err)
	}
	// An HTTP 400 (here: a request without a query) is not retried either.
	_, err = c.exec(ctx, "Empty", "", nil)
	var apiErr *APIError
	if !errors.Is(err, ErrBadRequest) || !errors.As(err, &apiErr) || apiErr.HTTPStatus != 400 {
		t.Fatalf("empty query: err = %v, want HTTP 400 ErrBadRequest", err)
	}
	st := sim.Stats().Requests[wizsim.EndpointGraphQL]
	if st[200] != 1 || st[400] != 1 {
		t.Errorf("graphql statuses = %v, want one 200 (validation error) and one 400", st)
	}
}

func TestSimFailedResponses(t *testing.T) {
	tests := []struct {
		faults string
		want   error
	}{
		{faults: "partial:count=1", want: ErrTransient},
		{faults: "malformed:count=1", want: ErrTransient},
	}
	for _, tt := range tests {
		t.Run(tt.faults, func(t *testing.T) {
			sim := startSim(t, wizsim.Options{Issues: 50, Faults: tt.faults})
			c := newTestClient(t, simOptions(sim))
			ctx := testCtx(t)
			page, err := c.Issues(ctx, IssueFilter{}, nil, 10, "")
			if !errors.Is(err, tt.want) || page != nil {
				t.Fatalf("err = %v, page %v; want %v and no page", err, page, tt.want)
			}
			if _, err := c.Issues(ctx, IssueFilter{}, nil, 10, ""); err != nil {
				t.Fatalf("next call: %v", err)
			}
		})
	}
}

func TestSimPagingAndCursorRejection(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 300})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	order := &IssueOrder{Field: "CREATED_AT", Direction: "ASC"}
	seen := map[string]bool{}
	after := ""
	var prev time.Time
	pages := 0
	for {
		page, err := c.Issues(ctx, IssueFilter{}, order, 70, after)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		for i, is := range page.Issues {
			if seen[is.ID] {
				t.Fatalf("issue %s returned twice", is.ID)
			}
			seen[is.ID] = true
			if is.CreatedAt.Before(prev) {
				t.Fatalf("order broken at %s", is.ID)
			}
			prev = is.CreatedAt
			if !strings.Contains(string(page.Raw[i]), is.ID) {
				t.Fatalf("raw %d does not match issue %s", i, is.ID)
			}
		}
		if !page.HasNextPage {
			break
		}
		after = page.EndCursor
	}
	if want := len(sim.Snapshot()); len(seen) != want || pages != (want+69)/70 {
		t.Errorf("walked %d issues in %d pages, want %d issues", len(seen), pages, want)
	}

	first, err := c.Issues(ctx, IssueFilter{}, order, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	sim.InvalidateCursors()
	// The simulator's refusal never says "cursor" (Wiz's wording is undocumented): the client knows
	// from the request that carried one.
	if _, err := c.Issues(ctx, IssueFilter{}, order, 10, first.EndCursor); !errors.Is(err, ErrCursorRejected) {
		t.Fatalf("stale cursor: err = %v, want ErrCursorRejected", err)
	}
}

func TestSimIssueByIDAndMutations(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 100})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	var target wizsim.IssueState
	for _, s := range sim.Snapshot() {
		if s.Status == "OPEN" {
			target = s
			break
		}
	}
	if target.ID == "" {
		t.Fatal("no open issue in the simulator")
	}
	issue, raw, err := c.Issue(ctx, target.ID)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if issue.ID != target.ID || !strings.Contains(string(raw), target.ID) {
		t.Errorf("Issue returned %s", issue.ID)
	}
	if _, _, err := c.Issue(ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}

	updated, err := c.UpdateIssue(ctx, target.ID, IssuePatch{Status: "IN_PROGRESS"})
	if err != nil {
		t.Fatalf("UpdateIssue: %v", err)
	}
	if updated.Status != "IN_PROGRESS" {
		t.Errorf("status after update = %q", updated.Status)
	}
	note, err := c.CreateIssueNote(ctx, target.ID, "looking into it")
	if err != nil {
		t.Fatalf("CreateIssueNote: %v", err)
	}
	if note.ID == "" || note.Text != "looking into it" {
		t.Errorf("note = %+v", note)
	}
	if err := c.DeleteIssueNote(ctx, note.ID); err != nil {
		t.Fatalf("DeleteIssueNote: %v", err)
	}
	due := time.Now().Add(72 * time.Hour)
	if got, err := c.UpdateIssue(ctx, target.ID, IssuePatch{DueAt: &due}); err != nil || got.DueAt == nil {
		t.Fatalf("set due date: %+v, %v", got, err)
	}
	if got, err := c.UpdateIssue(ctx, target.ID, IssuePatch{ClearDueAt: true}); err != nil || got.DueAt != nil {
		t.Fatalf("clear due date: %+v, %v", got, err)
	}
	if got, err := c.UpdateIssue(ctx, target.ID, IssuePatch{Status: "REJECTED", ResolutionReason: "WONT_FIX", Note: "accepted risk"}); err != nil || got.Status != "REJECTED" {
		t.Fatalf("reject: %+v, %v", got, err)
	}
	var status string
	for _, s := range sim.Snapshot() {
		if s.ID == target.ID {
			status = s.Status
		}
	}
	if status != "REJECTED" {
		t.Errorf("simulator status = %q, want REJECTED", status)
	}
}

func TestSimCheck(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20})
	steps := Check(testCtx(t), simOptions(sim))
	for _, s := range steps {
		if !s.OK {
			t.Errorf("step %q failed: %s", s.Name, s.Detail)
		}
	}
	opts := simOptions(sim)
	opts.ClientSecret = testSecret
	steps = Check(testCtx(t), opts)
	if steps[0].OK || steps[1].OK || strings.Contains(steps[0].Detail, testSecret) {
		t.Errorf("wrong secret: steps = %+v", steps)
	}
}

func TestSimThroughProxy(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 20})
	var proxied atomic.Int64
	// The proxy's own transport: http.DefaultTransport is shared with every test of the package,
	// and each httptest.Server.Close closes its idle connections.
	upstream := &http.Transport{}
	t.Cleanup(upstream.CloseIdleConnections)
	rp := &httputil.ReverseProxy{Transport: upstream, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL = pr.In.URL
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
	opts := simOptions(sim)
	opts.Proxy = proxy.URL
	c := newTestClient(t, opts)
	if _, err := c.Issues(testCtx(t), IssueFilter{}, nil, 5, ""); err != nil {
		t.Fatalf("Issues: %v", err)
	}
	if n := proxied.Load(); n != 2 {
		t.Errorf("requests through the proxy = %d, want 2 (token and graphql)", n)
	}
}

func TestSimRateLimiterHoldsRate(t *testing.T) {
	const rps = 3.0
	sim := startSim(t, wizsim.Options{Issues: 20, Rate: rps})
	opts := simOptions(sim)
	opts.RequestsPerSecond = rps
	c := newTestClient(t, opts)
	ctx := testCtx(t)
	if err := c.Token(ctx); err != nil {
		t.Fatal(err)
	}
	// Several goroutines hammer the client; the shared limiter must hold the rate.
	window := 3500 * time.Millisecond
	start := time.Now()
	wctx, cancel := context.WithDeadline(ctx, start.Add(window))
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for wctx.Err() == nil {
				_, err := c.Issues(wctx, IssueFilter{}, nil, 1, "")
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Issues: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	got := float64(simCount(sim, wizsim.EndpointGraphQL, 200))
	want := rps * elapsed.Seconds()
	t.Logf("%v requests in %v at the simulator (%.2f/s, want %.1f/s)", got, elapsed.Round(time.Millisecond), got/elapsed.Seconds(), rps)
	if got < want*0.8 || got > want*1.2 {
		t.Errorf("requests = %v in %v, want %.1f ± 20%%", got, elapsed, want)
	}
	if n := sim.Stats().Throttled; n != 0 {
		t.Errorf("throttled = %d, want 0", n)
	}
}
