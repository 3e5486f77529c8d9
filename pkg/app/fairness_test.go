package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// slowReceiver is a webhook receiver that takes perEvent for each event (the webhook sink sends one
// event a request, one request at a time), and remembers when each instance's issue arrived.
type slowReceiver struct {
	perEvent time.Duration
	mu       sync.Mutex
	arrived  map[string]time.Time // instance/issue id → first arrival
	count    map[string]int       // instance → events received
}

func (r *slowReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev struct {
		Instance string `json:"instance"`
		IssueID  string `json:"issue_id"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(r.perEvent)
	r.mu.Lock()
	defer r.mu.Unlock()
	key := ev.Instance + "/" + ev.IssueID
	if _, ok := r.arrived[key]; !ok {
		r.arrived[key] = time.Now()
	}
	r.count[ev.Instance]++
	w.WriteHeader(http.StatusOK)
}

func (r *slowReceiver) arrival(instance, issueID string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.arrived[instance+"/"+issueID]
	return at, ok
}

func (r *slowReceiver) received(instance string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[instance]
}

// twoTenants is the config of two instances, "big" on the simulator big and "small" on small, both
// fetching every second, delivering to one webhook sink at url with maxPending.
func twoTenants(t *testing.T, big, small *wizsim.Server, url string, maxPending int) *config.Config {
	t.Helper()
	cfg := testConfig(big, t.TempDir(), 200)
	bigInst := cfg.Instances[0]
	bigInst.Name = "big"
	bigInst.Fetch.Interval = config.Duration(time.Second)
	smallInst := bigInst
	smallInst.Name = "small"
	smallInst.Wiz.APIURL, smallInst.Wiz.AuthURL = small.GraphQLURL(), small.TokenURL()
	cfg.Instances = []config.Instance{bigInst, smallInst}
	secret, _ := newWebhookSecret(t)
	hook := config.DefaultSink(config.SinkWebhook)
	hook.Name, hook.URL, hook.Secret, hook.MaxPending = "hook", url, config.Secret(secret), maxPending
	cfg.Sinks = []config.Sink{hook}
	return cfg
}

// TestSlowSinkServesAFreshTenantWithinSeconds measures issue 19's fairness target end to end: while
// one instance ("big") backfills into a webhook receiver that accepts 100 events/s, a new issue of
// another instance ("small") reaches the receiver within 5 s of its fetch, and of its creation, since
// back-pressure pauses only the instance that is behind (TestAStalledSinkPausesOnlyTheTenantBehindIt
// holds that part). In CI big has 2,000 issues and max_pending is 300;
// WIZFETCH_FAIRNESS_ISSUES=100000 runs the issue's form with the default max_pending.
func TestSlowSinkServesAFreshTenantWithinSeconds(t *testing.T) {
	issues, maxPending := 2000, 300
	if v := os.Getenv("WIZFETCH_FAIRNESS_ISSUES"); v != "" {
		if _, err := fmt.Sscan(v, &issues); err != nil || issues < 1 {
			t.Fatalf("WIZFETCH_FAIRNESS_ISSUES=%q is not a positive number", v)
		}
		maxPending = config.DefaultSink(config.SinkWebhook).MaxPending // the issue's form: defaults
	}
	big := startSim(t, wizsim.Options{Issues: issues, Seed: 23})
	small := startSim(t, wizsim.Options{Issues: 1, Seed: 24})
	rc := &slowReceiver{perEvent: 10 * time.Millisecond, arrived: map[string]time.Time{}, count: map[string]int{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	cfg := twoTenants(t, big, small, srv.URL, maxPending)
	hook := cfg.Sinks[0]

	var mu sync.Mutex
	bigEmitted := 0
	var smallFetched time.Time // when small's fetch (either feed) that emitted the new issue ended
	var added time.Time
	onFetch := func(instance, feedName string, res feed.Result, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			return
		}
		switch {
		case instance == "big" && feedName == feed.Created:
			bigEmitted += res.Created
		case instance == "small" && !added.IsZero() && res.Created > 0 && smallFetched.IsZero():
			smallFetched = time.Now()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Mode: schedule.Daemon, NoServer: true,
			Logger: slog.New(slog.DiscardHandler), OnFetch: onFetch})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()

	// Wait until big's backlog is well past max_pending and delivery is under way.
	deadline := time.Now().Add(120 * time.Second)
	for {
		mu.Lock()
		emitted := bigEmitted
		mu.Unlock()
		if emitted > hook.MaxPending && rc.received("big") > 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("big emitted %d events and the receiver got %d after 120 s", emitted, rc.received("big"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	id, err := small.AddIssue(wizsim.NewIssue{Status: "OPEN"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	added = time.Now()
	mu.Unlock()

	var arrived time.Time
	for {
		if at, ok := rc.arrival("small", id); ok {
			arrived = at
			break
		}
		if time.Since(added) > 60*time.Second {
			t.Fatalf("small's new issue did not reach the receiver within 60 s (big: %d received of %d emitted)", rc.received("big"), bigEmitted)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	fetched, bigSoFar := smallFetched, bigEmitted
	mu.Unlock()
	pending := bigSoFar - rc.received("big")
	t.Logf("big: %d issues, %d emitted, %d received by then (%d waiting); small's new issue: fetched %s after it was created, delivered %s after its fetch (%s after it was created)",
		issues, bigSoFar, rc.received("big"), pending, fetched.Sub(added).Round(time.Millisecond),
		arrived.Sub(fetched).Round(time.Millisecond), arrived.Sub(added).Round(time.Millisecond))
	if fetched.IsZero() {
		t.Fatal("no fetch of small reported the new issue")
	}
	if d := arrived.Sub(fetched); d > 5*time.Second {
		t.Errorf("small's new issue reached the sink %s after its fetch (target: 5 s)", d)
	}
	if d := arrived.Sub(added); d > 5*time.Second {
		t.Errorf("small's new issue reached the sink %s after it was created (target: 5 s)", d)
	}
	if pending < 100 {
		t.Errorf("only %d of big's events were waiting when small's arrived: the test did not hold a backlog", pending)
	}
}

// TestAStalledSinkPausesOnlyTheTenantBehindIt: a sink that delivers nothing holds big's backlog
// over max_pending for good; small, with none of it, still fetches its new issue (its event waits in
// the outbox with the rest). The global pause this replaced stopped every tenant's fetching until
// the sink came back.
func TestAStalledSinkPausesOnlyTheTenantBehindIt(t *testing.T) {
	big := startSim(t, wizsim.Options{Issues: 2000, Seed: 23})
	small := startSim(t, wizsim.Options{Issues: 1, Seed: 24})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "60")
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	cfg := twoTenants(t, big, small, srv.URL, 300)
	hook := cfg.Sinks[0]

	var mu sync.Mutex
	bigEmitted, smallNew := 0, 0
	var added bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Mode: schedule.Daemon, NoServer: true, Logger: slog.New(slog.DiscardHandler),
			OnFetch: func(instance, feedName string, res feed.Result, err error) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
				case instance == "big":
					bigEmitted += res.Created
				case instance == "small" && added:
					smallNew += res.Created
				}
			}})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30 s: %s (big emitted %d)", what, bigEmitted)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("big's backlog is not over max_pending", func() bool { return bigEmitted > hook.MaxPending })
	if _, err := small.AddIssue(wizsim.NewIssue{Status: "OPEN"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	added = true
	mu.Unlock()
	waitFor("small did not fetch its new issue while the sink was stalled", func() bool { return smallNew > 0 })
}
