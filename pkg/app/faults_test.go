package app

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// faultFixture is one fault-matrix run: the simulator, the config and what the run observed.
type faultFixture struct {
	sim   *wizsim.Server
	clock *simClock
	cfg   *config.Config
	dir   string
	logs  *syncBuffer

	// onFetch, when a case sets it, runs inside Options.OnFetch (in the feed's goroutine).
	onFetch func(feedName string, res feed.Result, err error)

	mu      sync.Mutex
	results []fetchRecord
}

// fetchRecord is one fetch the run observed.
type fetchRecord struct {
	feed string
	res  feed.Result
	err  error
}

// inst is the single instance of the fixture's config: the one the engine builds clients from.
func (fx *faultFixture) inst() *config.Instance { return &fx.cfg.Instances[0] }

// failedFetches counts fetches that returned an error.
func (fx *faultFixture) failedFetches() int {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	n := 0
	for _, r := range fx.results {
		if r.err != nil {
			n++
		}
	}
	return n
}

// restarts sums the window restarts after rejected cursors.
func (fx *faultFixture) restarts() int {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	n := 0
	for _, r := range fx.results {
		n += r.res.Restarts
	}
	return n
}

// logRecord is one JSON log line.
type logRecord map[string]any

// logLines returns the fixture's log records whose msg is msg.
func logLines(t *testing.T, logs string, msg string) []logRecord {
	t.Helper()
	var out []logRecord
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// faultCase is one row of the fault matrix.
type faultCase struct {
	name        string
	issues      int
	maxPerFetch int
	faults      string
	// sim adjusts the simulator's options (token lifetime).
	sim func(*wizsim.Options)
	// prepare adjusts the config and sets hooks before the run.
	prepare func(t *testing.T, fx *faultFixture)
	// verify proves the fault really happened (and the case's own promises).
	verify func(t *testing.T, fx *faultFixture, st wizsim.Stats)
}

// TestFaultMatrix runs the whole daemon in --until-idle mode against the simulator with one kind of
// fault per row and proves nothing was lost or duplicated, and that the fault really happened.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	cases := []faultCase{
		{
			// every=4,burst=3: three 429s in a row, then one answer, again and again. (every=3,burst=3
			// would be an endless storm: the next burst starts on the request after the last one.)
			name: "429 storm", issues: 1000, maxPerFetch: 200, faults: "429:every=4,burst=3",
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				if st.Throttled < 3 || st.Faults["429"] != st.Throttled {
					t.Fatalf("throttled %d times (faults %v); want a storm of injected 429s", st.Throttled, st.Faults)
				}
			},
		},
		{
			name: "429 with Retry-After, count-limited", issues: 1000, maxPerFetch: 200,
			faults: "429:every=2,count=3,retry_after=1s",
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				if st.Throttled != 3 {
					t.Fatalf("throttled %d times; want exactly the 3 injected", st.Throttled)
				}
				var retries int
				for _, r := range logLines(t, fx.logs.String(), "retrying request") {
					if r["reason"] != "429" {
						continue
					}
					retries++
					if wait, _ := r["wait_ms"].(float64); time.Duration(wait)*time.Millisecond < time.Second {
						t.Fatalf("retried a 429 with Retry-After: 1 after %v ms", wait)
					}
				}
				if retries != 3 {
					t.Fatalf("%d retries after a 429 logged; want 3", retries)
				}
			},
		},
		{
			name: "5xx", issues: 2000, maxPerFetch: 100, faults: "5xx:p=0.2",
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				if st.Faults["5xx"] == 0 || st.Requests[wizsim.EndpointGraphQL][http.StatusServiceUnavailable] != st.Faults["5xx"] {
					t.Fatalf("faults %v, graphql answers %v; want injected 503s", st.Faults, st.Requests[wizsim.EndpointGraphQL])
				}
			},
		},
		{
			// Each slow answer outlasts the 300 ms request timeout: the attempt is cancelled and retried.
			name: "slow pages beyond the timeout", issues: 2000, maxPerFetch: 100, faults: "slow:every=5,delay=2s",
			prepare: func(t *testing.T, fx *faultFixture) {
				fx.cfg.Wiz.Timeout = config.Duration(300 * time.Millisecond)
				fx.inst().Wiz.Timeout = config.Duration(300 * time.Millisecond)
			},
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				timedOut := 0
				for _, r := range logLines(t, fx.logs.String(), "retrying request") {
					if r["reason"] == "network" && r["endpoint"] == "graphql" {
						timedOut++
					}
				}
				if st.Faults["slow"] == 0 || timedOut < st.Faults["slow"] {
					t.Fatalf("%d slow answers, %d timed-out attempts retried; want every slow answer timed out and retried", st.Faults["slow"], timedOut)
				}
			},
		},
		{
			// One feed only, so requests are sequential and the retry after a refreshed token is never
			// itself the 7th request (two 401s in a row are an authentication failure, rightly fatal).
			name: "token expiry", issues: 2000, maxPerFetch: 100, faults: "expire:every=7",
			sim: func(o *wizsim.Options) { o.ExpiresIn = 2 * time.Second },
			prepare: func(t *testing.T, fx *faultFixture) {
				fx.inst().Fetch.Updates = false
			},
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				expired := st.Faults["expire"]
				refreshed := len(logLines(t, fx.logs.String(), "access token rejected: refreshing it and retrying once"))
				if expired == 0 || st.TokensIssued < expired+1 || refreshed < expired {
					t.Fatalf("%d expiries, %d tokens issued, %d refreshes after a 401; want a new token after each expiry", expired, st.TokensIssued, refreshed)
				}
			},
		},
		{
			// The same inside an HTTP 200 (WIZ_API.md §4): refreshed and retried as a 401 is.
			name: "token expiry inside a 200", issues: 2000, maxPerFetch: 100, faults: "expire200:every=7",
			sim: func(o *wizsim.Options) { o.ExpiresIn = 2 * time.Second },
			prepare: func(t *testing.T, fx *faultFixture) {
				fx.inst().Fetch.Updates = false
			},
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				expired := st.Faults["expire200"]
				refreshed := len(logLines(t, fx.logs.String(), "access token rejected: refreshing it and retrying once"))
				if expired == 0 || st.TokensIssued < expired+1 || refreshed < expired {
					t.Fatalf("%d expiries in a 200, %d tokens issued, %d refreshes; want a new token after each", expired, st.TokensIssued, refreshed)
				}
			},
		},
		{
			// A gateway's HTML 502 or 504, not Wiz's JSON: server trouble, retried.
			name: "gateway HTML", issues: 2000, maxPerFetch: 100, faults: "gateway:every=5;gateway:every=6,code=504",
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				g := st.Requests[wizsim.EndpointGraphQL]
				if st.Faults["gateway"] == 0 || g[http.StatusBadGateway]+g[http.StatusGatewayTimeout] != st.Faults["gateway"] || g[http.StatusGatewayTimeout] == 0 {
					t.Fatalf("faults %v, graphql answers %v; want injected 502s and 504s", st.Faults, g)
				}
				retried := 0
				for _, r := range logLines(t, fx.logs.String(), "retrying request") {
					if r["reason"] == "502" || r["reason"] == "504" {
						retried++
					}
				}
				if retried < st.Faults["gateway"] {
					t.Fatalf("%d gateway answers, %d retries logged; want each retried", st.Faults["gateway"], retried)
				}
			},
		},
		secretRotationCase(),
		{
			// count=6 bounds the invalidations: unbounded every=4 stalls the created feed on the
			// simulator's 601-issue createdAt tie run (see TestCursorInvalidationEveryFourthRequest).
			name: "cursor invalidation", issues: 2000, maxPerFetch: 100, faults: "cursor:every=4,count=6",
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				restarted := len(logLines(t, fx.logs.String(), "cursor rejected; restarting window"))
				if st.Faults["cursor"] == 0 || restarted == 0 || fx.restarts() == 0 {
					t.Fatalf("%d invalidations, %d window restarts logged, %d in results; want rejected cursors survived", st.Faults["cursor"], restarted, fx.restarts())
				}
			},
		},
		{
			name: "partial data", issues: 2000, maxPerFetch: 100, faults: "partial:every=5",
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				if st.Faults["partial"] == 0 || fx.failedFetches() == 0 {
					t.Fatalf("%d partial answers, %d failed fetches; want partial pages treated as failures", st.Faults["partial"], fx.failedFetches())
				}
			},
		},
		{
			name: "malformed JSON", issues: 2000, maxPerFetch: 100, faults: "malformed:every=6",
			verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
				if st.Faults["malformed"] == 0 || fx.failedFetches() == 0 {
					t.Fatalf("%d malformed answers, %d failed fetches; want truncated bodies treated as failures", st.Faults["malformed"], fx.failedFetches())
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // rows mostly wait on backoff; -parallel (GOMAXPROCS) bounds the load
			start := time.Now()
			fx := runFaultCase(t, tc)
			t.Logf("%s: %s, sim stats %+v", tc.name, time.Since(start).Round(time.Millisecond), fx.sim.Stats())
		})
	}
}

// secretRotationCase rotates the client secret mid-run: the file is rewritten first, then the
// simulator accepts only the new secret and revokes every token. The client's refresh is rejected,
// it re-reads client_secret_file and carries on.
func secretRotationCase() faultCase {
	const oldSecret, newSecret = "old-secret-7f3a9c1e", "new-secret-0b5d2e84"
	var file string
	var rotated atomic.Bool
	var fetchesAfter atomic.Int32
	return faultCase{
		name: "secret rotation", issues: 2000, maxPerFetch: 100,
		sim: func(o *wizsim.Options) { o.ClientSecret = oldSecret },
		prepare: func(t *testing.T, fx *faultFixture) {
			file = filepath.Join(fx.dir, "client_secret")
			if err := os.WriteFile(file, []byte(oldSecret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, w := range []*config.Wiz{&fx.cfg.Wiz, &fx.inst().Wiz} {
				w.ClientSecret, w.ClientSecretFile = "", file
			}
			createdFetches := 0
			fx.onFetch = func(feedName string, res feed.Result, err error) {
				if rotated.Load() {
					fetchesAfter.Add(1)
					return
				}
				if feedName != feed.Created || err != nil {
					return
				}
				if createdFetches++; createdFetches < 2 {
					return
				}
				// Rotate in a goroutine, as an operator would, and hold this feed until it is done so
				// the rotation lands mid-run.
				done := make(chan error, 1)
				go func() {
					tmp := file + ".new"
					if err := os.WriteFile(tmp, []byte(newSecret+"\n"), 0o600); err != nil {
						done <- err
						return
					}
					if err := os.Rename(tmp, file); err != nil { // atomic: never a half-written secret
						done <- err
						return
					}
					fx.sim.SetClientSecret(newSecret)
					fx.sim.ExpireTokens()
					done <- nil
				}()
				if err := <-done; err != nil {
					t.Errorf("rotate the secret: %v", err)
				}
				rotated.Store(true)
			}
		},
		verify: func(t *testing.T, fx *faultFixture, st wizsim.Stats) {
			logs := fx.logs.String()
			if !rotated.Load() || fetchesAfter.Load() == 0 {
				t.Fatalf("rotated %v, %d fetches after the rotation; want the rotation mid-run", rotated.Load(), fetchesAfter.Load())
			}
			if len(logLines(t, logs, "client secret file changed: retrying token request with the new secret")) == 0 || st.TokensIssued < 2 {
				t.Fatalf("%d tokens issued and no re-read of the secret file logged", st.TokensIssued)
			}
			if strings.Contains(logs, oldSecret) || strings.Contains(logs, newSecret) {
				t.Fatal("a client secret appears in the log")
			}
		},
	}
}

// runFaultCase runs one row: simulator with a frozen clock and the row's faults, Run in UntilIdle
// mode, then the exactly-once proof, the cap, empty outboxes and the row's own checks.
func runFaultCase(t *testing.T, tc faultCase) *faultFixture {
	t.Helper()
	clock := &simClock{}
	clock.set(time.Now().Add(10 * time.Minute)) // every generated issue is visible
	opts := wizsim.Options{Issues: tc.issues, Seed: 1009, Now: clock.now, Faults: tc.faults}
	if tc.sim != nil {
		tc.sim(&opts)
	}
	sim := startSim(t, opts)
	dir := t.TempDir()
	fx := &faultFixture{sim: sim, clock: clock, cfg: testConfig(sim, dir, tc.maxPerFetch), dir: dir, logs: &syncBuffer{}}
	if opts.ClientSecret != "" {
		fx.cfg.Wiz.ClientSecret = config.Secret(opts.ClientSecret)
		fx.inst().Wiz.ClientSecret = config.Secret(opts.ClientSecret)
	}
	if tc.prepare != nil {
		tc.prepare(t, fx)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, Options{
		Config: fx.cfg, Mode: schedule.UntilIdle, NoServer: true,
		Logger:    slog.New(slog.NewJSONHandler(fx.logs, nil)),
		PollEvery: 10 * time.Millisecond, RetryBackoff: 5 * time.Millisecond, WizRetryFor: 10 * time.Second,
		OnFetch: func(_, name string, res feed.Result, err error) {
			fx.mu.Lock()
			fx.results = append(fx.results, fetchRecord{feed: name, res: res, err: err})
			fx.mu.Unlock()
			if fx.onFetch != nil {
				fx.onFetch(name, res, err)
			}
		},
	})
	if err != nil {
		t.Fatalf("run --until-idle under %q: %v\nlast log lines:\n%s", tc.faults, err, lastLines(fx.logs.String(), 40))
	}

	events := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	want := expectedCreated(sim, firstStart(t, fx.cfg.Store.Path), clock.now())
	if len(want) < tc.issues/3 {
		t.Fatalf("only %d expected issues of %d: the simulator data is not what this test assumes", len(want), tc.issues)
	}
	checkExactlyOnce(t, events, want)
	fx.mu.Lock()
	for _, r := range fx.results {
		if r.res.Emitted() > tc.maxPerFetch {
			t.Fatalf("a %s fetch emitted %d events, above max_per_fetch %d", r.feed, r.res.Emitted(), tc.maxPerFetch)
		}
	}
	fx.mu.Unlock()
	assertDrained(t, fx.cfg.Store.Path, "file")
	if tc.verify != nil {
		tc.verify(t, fx, sim.Stats())
	}
	return fx
}

// assertDrained checks that the sinks' outboxes and dead letters are empty after a run.
func assertDrained(t *testing.T, path string, sinks ...string) {
	t.Helper()
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, s := range sinks {
		depth, err := st.OutboxDepth(s)
		if err != nil {
			t.Fatal(err)
		}
		dead, err := st.DeadLetterCount(s)
		if err != nil {
			t.Fatal(err)
		}
		if depth != 0 || dead != 0 {
			t.Fatalf("sink %s: %d events still in the outbox, %d dead letters after an --until-idle run", s, depth, dead)
		}
	}
}

// webhookReceiver is a Standard Webhooks receiver that is down (503, Retry-After) for its first
// downFor requests, then records every delivered event by webhook-id.
type webhookReceiver struct {
	key     []byte
	downFor int64

	requests atomic.Int64
	mu       sync.Mutex
	got      map[string]int // webhook-id -> 200 answers
	refused  map[string]bool
	badSig   int
	firstErr time.Time // first 503
	firstOK  time.Time // first 200
}

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, rc.key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	valid := r.Header.Get("webhook-signature") == "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil))
	var ev struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(body, &ev) != nil || ev.EventID != id {
		valid = false
	}
	n := rc.requests.Add(1)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !valid {
		rc.badSig++
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	if n <= rc.downFor {
		if rc.firstErr.IsZero() {
			rc.firstErr = time.Now()
		}
		rc.refused[id] = true
		w.Header().Set("Retry-After", "1")
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	if rc.firstOK.IsZero() {
		rc.firstOK = time.Now()
	}
	rc.got[id]++
	w.WriteHeader(http.StatusOK)
}

// newWebhookSecret returns a Standard Webhooks secret and its key.
func newWebhookSecret(t *testing.T) (string, []byte) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key), key
}

// TestSinkDownForAWhileLosesNothing: a webhook receiver answers 503 with Retry-After: 1 to its first
// three requests (about three seconds of downtime standing in for minutes; a fourth would be too
// many, as --until-idle gives up after 5 failed deliveries in a row), then 200. Every event of the
// JSONL file must reach it, none may be dead-lettered, and nothing may be left behind.
func TestSinkDownForAWhileLosesNothing(t *testing.T) {
	t.Parallel()
	clock := &simClock{}
	clock.set(time.Now().Add(10 * time.Minute))
	sim := startSim(t, wizsim.Options{Issues: 1000, Seed: 21, Now: clock.now})
	secret, key := newWebhookSecret(t)
	rc := &webhookReceiver{key: key, downFor: 3, got: map[string]int{}, refused: map[string]bool{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	hook := config.DefaultSink(config.SinkWebhook)
	hook.Name, hook.URL, hook.Secret = "hook", srv.URL, config.Secret(secret)
	hook.Timeout = config.Duration(10 * time.Second)
	cfg.Sinks = append(cfg.Sinks, hook)
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, Options{
		Config: cfg, Mode: schedule.UntilIdle, NoServer: true,
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
		PollEvery: 10 * time.Millisecond, RetryBackoff: 5 * time.Millisecond, WizRetryFor: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("run --until-idle with the receiver down for a while: %v", err)
	}

	events := readJSONL(t, filepath.Join(dir, "incidents.jsonl"))
	checkExactlyOnce(t, events, expectedCreated(sim, firstStart(t, cfg.Store.Path), clock.now()))
	assertDrained(t, cfg.Store.Path, "file", "hook")

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.badSig != 0 {
		t.Fatalf("%d requests with a bad signature or a webhook-id that is not the body's event_id", rc.badSig)
	}
	if len(rc.refused) == 0 || rc.firstOK.Sub(rc.firstErr) < 2*time.Second {
		t.Fatalf("refused %d events, down for %s; want about 3 s of 503s honoured by Retry-After", len(rc.refused), rc.firstOK.Sub(rc.firstErr))
	}
	inFile := map[string]bool{}
	dups := 0
	for _, ev := range events {
		inFile[ev.EventID] = true
		switch n := rc.got[ev.EventID]; {
		case n == 0:
			t.Fatalf("event %s (%s %s) is in the JSONL file but never reached the webhook receiver", ev.EventID, ev.Kind, ev.IssueID)
		case n > 1:
			dups++
		}
	}
	for id := range rc.got {
		if !inFile[id] {
			t.Fatalf("the receiver got event %s which is not in the JSONL file", id)
		}
	}
	for id := range rc.refused {
		if rc.got[id] == 0 {
			t.Fatalf("event %s was refused with 503 and never delivered afterwards", id)
		}
	}
	if dups != 0 {
		t.Fatalf("%d events delivered more than once without any crash", dups)
	}
	t.Logf("%d events, receiver down for %s (%d requests refused), %d delivery retries logged",
		len(events), rc.firstOK.Sub(rc.firstErr).Round(time.Millisecond), rc.downFor, len(logLines(t, logs.String(), "delivery failed; retrying")))
}

// TestJSONLDiskFullSurfacesTheError writes the JSONL sink to /dev/full: every write fails with ENOSPC.
// A --once run must fail naming the write error after MaxConsecutiveFailures deliveries, with every
// event still in the outbox (nothing acknowledged). Pointed at a real file again, the next run delivers
// all of it exactly once.
func TestJSONLDiskFullSurfacesTheError(t *testing.T) {
	t.Parallel()
	if f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0); err != nil {
		t.Skipf("no writable /dev/full: %v", err)
	} else {
		f.Close()
	}
	clock := &simClock{}
	clock.set(time.Now().Add(10 * time.Minute))
	sim := startSim(t, wizsim.Options{Issues: 1000, Seed: 31, Now: clock.now})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 150)
	cfg.Instances[0].Fetch.Updates = false // one feed: the one fetch of --once is all that is emitted
	cfg.Sinks[0].Path = "/dev/full"

	var mu sync.Mutex
	emitted, observed := 0, 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, Options{
		Config: cfg, Mode: schedule.Once, NoServer: true,
		PollEvery: 10 * time.Millisecond, RetryBackoff: 5 * time.Millisecond, WizRetryFor: 10 * time.Second,
		OnFetch: func(_, _ string, res feed.Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				emitted += res.Emitted()
				observed++
			}
		},
	})
	if err == nil {
		t.Fatal("run --once with the JSONL file on a full disk succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "write /dev/full") ||
		!strings.Contains(err.Error(), strconv.Itoa(schedule.MaxConsecutiveFailures)+" deliveries failed in a row") {
		t.Fatalf("run --once error %q; want the ENOSPC write error after %d failed deliveries", err, schedule.MaxConsecutiveFailures)
	}

	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	depth, derr := st.OutboxDepth("file")
	stats, serr := st.Stats()
	st.Close()
	if derr != nil || serr != nil {
		t.Fatal(errors.Join(derr, serr))
	}
	mu.Lock()
	if observed != 1 || depth != emitted || emitted == 0 || stats.Incidents["default"] != depth {
		t.Fatalf("outbox holds %d events; the fetch (observed %d times) emitted %d for %d incidents; want every one still pending",
			depth, observed, emitted, stats.Incidents["default"])
	}
	mu.Unlock()

	// The disk has room again: everything pending arrives, once.
	jsonl := filepath.Join(dir, "incidents.jsonl")
	cfg.Sinks[0].Path = jsonl
	runUntilIdle(t, cfg, nil)
	events := readJSONL(t, jsonl)
	checkExactlyOnce(t, events, expectedCreated(sim, firstStart(t, cfg.Store.Path), clock.now()))
	if len(events) < depth {
		t.Fatalf("%d events after recovery, fewer than the %d that were pending", len(events), depth)
	}
}
