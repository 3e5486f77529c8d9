package metrics

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
)

const secret = "hunter2-S3CRET-token"

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "wizfetch.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestFetchDone(t *testing.T) {
	m := New("1.2.3")
	fixed := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	m.now = func() time.Time { return fixed }

	m.FetchDone("default", "created", feed.Result{
		Fetched: 10, Created: 7, Updated: 2, Restarts: 1, Duration: 1500 * time.Millisecond,
		Ignored: map[string]int{feed.ReasonDuplicate: 1, feed.ReasonKnown: 0},
	}, nil)
	m.FetchDone("default", "created", feed.Result{Fetched: 5, Created: 1, Duration: time.Second}, nil)
	m.FetchDone("default", "updates", feed.Result{Duration: time.Second}, errors.New("wiz: 500 "+secret))

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"issues fetched", testutil.ToFloat64(m.issuesFetched.WithLabelValues("default", "created")), 15},
		{"created events", testutil.ToFloat64(m.eventsEmitted.WithLabelValues("default", "created", "created")), 8},
		{"updated events", testutil.ToFloat64(m.eventsEmitted.WithLabelValues("default", "created", "updated")), 2},
		{"ignored duplicate", testutil.ToFloat64(m.updatesIgnored.WithLabelValues("default", feed.ReasonDuplicate)), 1},
		{"window restarts", testutil.ToFloat64(m.windowRestarts.WithLabelValues("default", "created")), 1},
		{"created feed failures", testutil.ToFloat64(m.fetchFailures.WithLabelValues("default", "created")), 0},
		{"updates feed failures", testutil.ToFloat64(m.fetchFailures.WithLabelValues("default", "updates")), 1},
		{"last success", testutil.ToFloat64(m.lastFetchSuccess.WithLabelValues("default", "created")), float64(fixed.Unix())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	// A zero count makes no series; a failed fetch sets no success time.
	if n := testutil.CollectAndCount(m.updatesIgnored); n != 1 {
		t.Errorf("wizfetch_updates_ignored_total has %d series, want 1 (zero counts add none)", n)
	}
	if n := testutil.CollectAndCount(m.lastFetchSuccess); n != 1 {
		t.Errorf("wizfetch_fetch_last_success_timestamp_seconds has %d series, want 1 (failures set none)", n)
	}
	// Three fetches observed by the histogram, 3.5 s in total.
	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP wizfetch_fetch_duration_seconds Duration of one fetch of a feed (all its pages), successful or not.
# TYPE wizfetch_fetch_duration_seconds histogram
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="0.1"} 0
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="0.25"} 0
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="0.5"} 0
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="1"} 1
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="2.5"} 2
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="5"} 2
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="10"} 2
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="30"} 2
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="60"} 2
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="120"} 2
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="300"} 2
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="600"} 2
wizfetch_fetch_duration_seconds_bucket{feed="created",instance="default",le="+Inf"} 2
wizfetch_fetch_duration_seconds_sum{feed="created",instance="default"} 2.5
wizfetch_fetch_duration_seconds_count{feed="created",instance="default"} 2
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="0.1"} 0
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="0.25"} 0
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="0.5"} 0
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="1"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="2.5"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="5"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="10"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="30"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="60"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="120"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="300"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="600"} 1
wizfetch_fetch_duration_seconds_bucket{feed="updates",instance="default",le="+Inf"} 1
wizfetch_fetch_duration_seconds_sum{feed="updates",instance="default"} 1
wizfetch_fetch_duration_seconds_count{feed="updates",instance="default"} 1
`), "wizfetch_fetch_duration_seconds")
	if err != nil {
		t.Error(err)
	}
}

func TestDeliveryAndPush(t *testing.T) {
	m := New("1.2.3")
	m.Delivery("file", 3, nil)
	m.Delivery("file", 2, nil)
	m.Delivery("xsoar", 1, errors.New("502 from https://xsoar/?key="+secret))
	m.DeadLettered("xsoar")
	m.DeadLettered("xsoar")
	m.PushReceived("default")
	m.PushRejected(PushRejectAuth)
	m.PushRejected("bad json: " + secret) // free text is folded into "other"
	m.PushProcessed("default", PushResultOK)

	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP wizfetch_deliveries_total Delivery attempts of a sink by result (ok, error).
# TYPE wizfetch_deliveries_total counter
wizfetch_deliveries_total{result="ok",sink="file"} 2
wizfetch_deliveries_total{result="error",sink="xsoar"} 1
# HELP wizfetch_events_delivered_total Events a sink accepted.
# TYPE wizfetch_events_delivered_total counter
wizfetch_events_delivered_total{sink="file"} 5
wizfetch_events_delivered_total{sink="xsoar"} 1
# HELP wizfetch_dead_lettered_total Events a sink gave up on and moved to its dead letters.
# TYPE wizfetch_dead_lettered_total counter
wizfetch_dead_lettered_total{sink="xsoar"} 2
# HELP wizfetch_push_received_total Wiz pushes accepted by the webhook receiver.
# TYPE wizfetch_push_received_total counter
wizfetch_push_received_total{instance="default"} 1
# HELP wizfetch_push_rejected_total Wiz pushes rejected by the webhook receiver, by reason (auth, too_large, bad_request, …).
# TYPE wizfetch_push_rejected_total counter
wizfetch_push_rejected_total{reason="auth"} 1
wizfetch_push_rejected_total{reason="other"} 1
# HELP wizfetch_push_processed_total Pushed issues refetched and processed, by result.
# TYPE wizfetch_push_processed_total counter
wizfetch_push_processed_total{instance="default",result="ok"} 1
`), "wizfetch_deliveries_total", "wizfetch_events_delivered_total", "wizfetch_dead_lettered_total",
		"wizfetch_push_received_total", "wizfetch_push_rejected_total", "wizfetch_push_processed_total")
	if err != nil {
		t.Error(err)
	}
}

func TestWizObserver(t *testing.T) {
	m := New("1.2.3")
	obs := m.WizObserver("default")
	obs.OnRequest("graphql", 200, 100*time.Millisecond)
	obs.OnRequest("graphql", 200, 200*time.Millisecond)
	obs.OnRequest("graphql", 429, time.Millisecond)
	obs.OnRequest("token", 0, time.Second)
	obs.OnRetry("429")
	obs.OnRetry("network")
	obs.OnRetry("network")
	obs.OnTokenRefresh(true)
	obs.OnTokenRefresh(false)

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"graphql 200", testutil.ToFloat64(m.apiRequests.WithLabelValues("default", "graphql", "200")), 2},
		{"graphql 429", testutil.ToFloat64(m.apiRequests.WithLabelValues("default", "graphql", "429")), 1},
		{"token without response", testutil.ToFloat64(m.apiRequests.WithLabelValues("default", "token", "none")), 1},
		{"retries 429", testutil.ToFloat64(m.apiRetries.WithLabelValues("default", "429")), 1},
		{"retries network", testutil.ToFloat64(m.apiRetries.WithLabelValues("default", "network")), 2},
		{"token ok", testutil.ToFloat64(m.tokenRefreshes.WithLabelValues("default", "ok")), 1},
		{"token error", testutil.ToFloat64(m.tokenRefreshes.WithLabelValues("default", "error")), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if n := testutil.CollectAndCount(m.apiDuration); n != 2 {
		t.Errorf("wizfetch_api_request_duration_seconds has %d series, want 2 (graphql, token)", n)
	}
}

func TestWatchStore(t *testing.T) {
	st := openStore(t)
	err := st.Update(func(tx *store.Tx) error {
		for i := 0; i < 5; i++ {
			inst := "default"
			if i >= 3 {
				inst = "acme"
			}
			if _, err := tx.Enqueue("xsoar", inst, []byte(`{"n":1}`)); err != nil {
				return err
			}
		}
		_, err := tx.Enqueue("file", "default", []byte(`{"n":1}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MoveToDeadLetter("xsoar", store.OutboxItem{Instance: "default", Seq: 1}, "400", 3); err != nil {
		t.Fatal(err)
	}
	m := New("1.2.3")
	m.WatchStore(st, []string{"file", "xsoar", "webhook"})
	err = testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP wizfetch_outbox_depth Events waiting in a sink's outbox.
# TYPE wizfetch_outbox_depth gauge
wizfetch_outbox_depth{sink="file"} 1
wizfetch_outbox_depth{sink="webhook"} 0
wizfetch_outbox_depth{sink="xsoar"} 4
# HELP wizfetch_outbox_instance_depth Events of one instance waiting in a sink's outbox (instances with none are not reported).
# TYPE wizfetch_outbox_instance_depth gauge
wizfetch_outbox_instance_depth{instance="acme",sink="xsoar"} 2
wizfetch_outbox_instance_depth{instance="default",sink="file"} 1
wizfetch_outbox_instance_depth{instance="default",sink="xsoar"} 2
# HELP wizfetch_dead_letters Events in a sink's dead letters (see `+"`wizfetch incidents replay`"+`).
# TYPE wizfetch_dead_letters gauge
wizfetch_dead_letters{sink="file"} 0
wizfetch_dead_letters{sink="webhook"} 0
wizfetch_dead_letters{sink="xsoar"} 1
# HELP wizfetch_refetch_queue_depth Pushed issues waiting to be refetched.
# TYPE wizfetch_refetch_queue_depth gauge
wizfetch_refetch_queue_depth 0
`), "wizfetch_outbox_depth", "wizfetch_outbox_instance_depth", "wizfetch_dead_letters", "wizfetch_refetch_queue_depth")
	if err != nil {
		t.Error(err)
	}

	// The gauges are read at scrape time: a later ack shows without any hook call.
	if err := st.Ack("file", store.OutboxItem{Instance: "default", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	m.WatchStore(st, []string{"file"}) // a reload narrowed the sinks
	err = testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP wizfetch_outbox_depth Events waiting in a sink's outbox.
# TYPE wizfetch_outbox_depth gauge
wizfetch_outbox_depth{sink="file"} 0
`), "wizfetch_outbox_depth", "wizfetch_outbox_instance_depth")
	if err != nil {
		t.Error(err)
	}
}

func TestWatchStatus(t *testing.T) {
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	tr := status.New("1.2.3", func() time.Time { return now })
	tr.AddFeed("default", "updates") // no watermark yet: no lag series
	tr.FetchDone("default", "created", feed.Result{Watermark: now.Add(-90 * time.Second), Backlog: true}, nil)
	tr.FetchDone("eu", "created", feed.Result{}, errors.New("boom"))
	tr.FetchDone("eu", "created", feed.Result{}, errors.New("boom"))
	tr.SetPaused("default", "xsoar")

	m := New("1.2.3")
	m.WatchStatus(tr)
	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP wizfetch_watermark_lag_seconds Seconds between now and a feed's watermark (the newest Wiz timestamp it committed).
# TYPE wizfetch_watermark_lag_seconds gauge
wizfetch_watermark_lag_seconds{feed="created",instance="default"} 90
# HELP wizfetch_fetch_paused 1 while fetching is paused by back-pressure from a sink's outbox, else 0.
# TYPE wizfetch_fetch_paused gauge
wizfetch_fetch_paused 1
# HELP wizfetch_fetch_consecutive_failures Fetches of a feed that failed in a row (0 after a success).
# TYPE wizfetch_fetch_consecutive_failures gauge
wizfetch_fetch_consecutive_failures{feed="created",instance="default"} 0
wizfetch_fetch_consecutive_failures{feed="created",instance="eu"} 2
wizfetch_fetch_consecutive_failures{feed="updates",instance="default"} 0
# HELP wizfetch_fetch_backlog 1 when a feed's last fetch left more to fetch (cap reached or more pages), else 0.
# TYPE wizfetch_fetch_backlog gauge
wizfetch_fetch_backlog{feed="created",instance="default"} 1
wizfetch_fetch_backlog{feed="created",instance="eu"} 0
wizfetch_fetch_backlog{feed="updates",instance="default"} 0
`), "wizfetch_watermark_lag_seconds", "wizfetch_fetch_paused", "wizfetch_fetch_consecutive_failures", "wizfetch_fetch_backlog")
	if err != nil {
		t.Error(err)
	}
}

func TestBuildInfoAndPrivateRegistry(t *testing.T) {
	// Two instances in one process must not collide (they would on the global registry).
	a, b := New("1.0.0"), New("2.0.0")
	err := testutil.GatherAndCompare(b.Registry(), strings.NewReader(`
# HELP wizfetch_build_info Always 1; the labels carry the wizfetch version and the Go version it was built with.
# TYPE wizfetch_build_info gauge
wizfetch_build_info{goversion="`+runtime.Version()+`",version="2.0.0"} 1
`), "wizfetch_build_info")
	if err != nil {
		t.Error(err)
	}
	if a.Registry() == b.Registry() {
		t.Error("two Metrics share a registry")
	}
	// The Go runtime collector is there for operators.
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "go_goroutines"
	}
	if !found {
		t.Error("go_goroutines missing from the registry")
	}
}

// TestLint runs promlint over every wizfetch metric after each hook was called once.
func TestLint(t *testing.T) {
	m := exercised(t)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "wizfetch_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestNoSecretInLabels(t *testing.T) {
	m := exercised(t)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			series++
			for _, lp := range metric.GetLabel() {
				if strings.Contains(lp.GetValue(), "S3CRET") || strings.Contains(lp.GetValue(), "://") {
					t.Errorf("%s{%s=%q} carries free text", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	if series < 20 {
		t.Fatalf("only %d series gathered: the hooks did not register", series)
	}
}

// exercised returns Metrics after every hook was called, with secrets in every free-text input.
func exercised(t *testing.T) *Metrics {
	t.Helper()
	m := New("1.2.3")
	leak := errors.New("POST https://api.wiz.io/graphql?client_secret=" + secret)
	m.FetchDone("default", "created", feed.Result{Fetched: 1, Created: 1, Updated: 1, Restarts: 1,
		Ignored:          map[string]int{"reason " + secret: 1, feed.ReasonKnown: 1},
		Rejected:         map[string]int{"reason " + secret: 1, feed.RejectIncomplete: 1},
		FutureTimestamps: 1, Clipped: 1, NullNodes: 1, NullPages: 1}, nil)
	m.FetchDone("default", "updates", feed.Result{}, leak)
	m.Delivery("file", 1, nil)
	m.Delivery("file", 0, leak)
	m.DeadLettered("file")
	m.PushReceived("default")
	m.PushRejected(secret)
	m.PushProcessed("default", "error: "+secret)
	obs := m.WizObserver("default")
	obs.OnRequest("graphql", 200, time.Millisecond)
	obs.OnRequest("https://api.wiz.io/?"+secret, 0, time.Millisecond)
	obs.OnRetry("network " + secret)
	obs.OnTokenRefresh(false)
	m.WatchStore(openStore(t), []string{"file"})
	now := time.Now()
	tr := status.New("1.2.3", func() time.Time { return now })
	tr.FetchDone("default", "created", feed.Result{Watermark: now.Add(-time.Minute)}, leak)
	m.WatchStatus(tr)
	return m
}

func TestLabelAllowlists(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"retry status", retryLabel("429"), "429"},
		{"retry 503", retryLabel("503"), "503"},
		{"retry network", retryLabel("network"), "network"},
		{"retry digits too long", retryLabel("4290"), "other"},
		{"retry free text", retryLabel("dial tcp: " + secret), "other"},
		{"endpoint graphql", endpointLabel("graphql"), "graphql"},
		{"endpoint url", endpointLabel("https://api.wiz.io/graphql"), "other"},
		{"ignored known", ignoredLabel(feed.ReasonStatusUnchanged), "status_unchanged"},
		{"ignored unknown", ignoredLabel(secret), "other"},
		{"push reject", pushRejectLabel(PushRejectTooLarge), "too_large"},
		{"push reject secret", pushRejectLabel(secret), "other"},
		{"push result", pushResultLabel(PushResultNotFound), "not_found"},
		{"push result empty", pushResultLabel(""), "other"},
		{"push result rejected", pushResultLabel(PushResultRejected), "rejected"},
		{"rejected incomplete", rejectedLabel(feed.RejectIncomplete), "incomplete"},
		{"rejected too large", rejectedLabel(feed.RejectTooLarge), "too_large"},
		{"rejected mapping", rejectedLabel(feed.RejectMapping), "mapping_failed"},
		{"rejected free text", rejectedLabel("decode: " + secret), "other"},
		{"code 0", codeLabel(0), "none"},
		{"code 200", codeLabel(200), "200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// FetchDone counts what the feed could not process: rejected issues by reason (free text folded
// into "other"), future timestamps, clipped incidents, null nodes and null pages; zero counts make
// no series, and a failed fetch still counts what its committed pages did.
func TestFetchDoneCountsRejectionsAndAnomalies(t *testing.T) {
	m := New("1.2.3")
	m.FetchDone("default", "created", feed.Result{
		Fetched: 9, FutureTimestamps: 2, Clipped: 1, NullNodes: 3, NullPages: 1,
		Rejected: map[string]int{feed.RejectIncomplete: 2, feed.RejectTooLarge: 1, feed.RejectMapping: 0},
	}, nil)
	m.FetchDone("default", "created", feed.Result{Rejected: map[string]int{feed.RejectIncomplete: 1}}, errors.New("boom"))
	m.FetchDone("eu", "updates", feed.Result{
		Clipped: 4, Rejected: map[string]int{feed.RejectMapping: 1, "panic: " + secret: 1},
	}, nil)

	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP wizfetch_issues_rejected_total Issues a feed could not turn into an incident, by reason (incomplete, too_large, mapping_failed); each is recorded in the store (`+"`wizfetch incidents rejected`"+`).
# TYPE wizfetch_issues_rejected_total counter
wizfetch_issues_rejected_total{feed="created",instance="default",reason="incomplete"} 3
wizfetch_issues_rejected_total{feed="created",instance="default",reason="too_large"} 1
wizfetch_issues_rejected_total{feed="updates",instance="eu",reason="mapping_failed"} 1
wizfetch_issues_rejected_total{feed="updates",instance="eu",reason="other"} 1
# HELP wizfetch_future_timestamps_total Issues whose feed timestamp lay beyond now plus the allowed clock skew; the watermark ignored them.
# TYPE wizfetch_future_timestamps_total counter
wizfetch_future_timestamps_total{feed="created",instance="default"} 2
# HELP wizfetch_incidents_clipped_total Incidents with strings cut to their size bound.
# TYPE wizfetch_incidents_clipped_total counter
wizfetch_incidents_clipped_total{feed="created",instance="default"} 1
wizfetch_incidents_clipped_total{feed="updates",instance="eu"} 4
# HELP wizfetch_null_nodes_total Null nodes in the pages Wiz returned.
# TYPE wizfetch_null_nodes_total counter
wizfetch_null_nodes_total{feed="created",instance="default"} 3
# HELP wizfetch_null_pages_total Pages Wiz returned with a null nodes list.
# TYPE wizfetch_null_pages_total counter
wizfetch_null_pages_total{feed="created",instance="default"} 1
`), "wizfetch_issues_rejected_total", "wizfetch_future_timestamps_total", "wizfetch_incidents_clipped_total",
		"wizfetch_null_nodes_total", "wizfetch_null_pages_total")
	if err != nil {
		t.Error(err)
	}
}

// A pushed issue that cannot be an incident has its own push_processed_total result.
func TestPushProcessedRejected(t *testing.T) {
	m := New("1.2.3")
	m.PushProcessed("default", PushResultRejected)
	m.PushProcessed("default", PushResultRejected)
	if got := testutil.ToFloat64(m.pushProcessed.WithLabelValues("default", "rejected")); got != 2 {
		t.Fatalf("push_processed_total{result=rejected} = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.pushProcessed); n != 1 {
		t.Fatalf("push_processed_total has %d series, want 1 (no \"other\")", n)
	}
}

// wizfetch_rejected_issues is read from the store at scrape time: one series per instance with
// records, and 0 for every instance the status tracker has a feed of.
func TestWatchStoreRejectedIssues(t *testing.T) {
	st := openStore(t)
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	put := func(instance, id string) {
		t.Helper()
		err := st.Update(func(tx *store.Tx) error {
			_, err := tx.PutRejected(store.RejectedIssue{Instance: instance, IssueID: id, Feed: "created",
				Reason: feed.RejectIncomplete, LastSeen: now}, []byte(`{"id":"`+id+`"}`))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("default", "a")
	put("default", "b")
	put("default", "a") // the same issue again: one record
	put("gone", "c")    // an instance no longer configured keeps its records

	m := New("1.2.3")
	m.WatchStore(st, nil)
	tr := status.New("1.2.3", func() time.Time { return now })
	tr.AddFeed("default", "created")
	tr.AddFeed("eu", "created")
	m.WatchStatus(tr)
	const head = `
# HELP wizfetch_rejected_issues Rejected-issue records held in the store, per instance (see ` + "`wizfetch incidents rejected`" + `).
# TYPE wizfetch_rejected_issues gauge
`
	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(head+`
wizfetch_rejected_issues{instance="default"} 2
wizfetch_rejected_issues{instance="eu"} 0
wizfetch_rejected_issues{instance="gone"} 1
`), "wizfetch_rejected_issues")
	if err != nil {
		t.Error(err)
	}

	// A good version of the issue removes its record: the next scrape shows it.
	if err := st.Update(func(tx *store.Tx) error { _, err := tx.DeleteRejected("default", "a"); return err }); err != nil {
		t.Fatal(err)
	}
	m.WatchStatus(status.New("1.2.3", nil)) // no feeds: only instances with records
	err = testutil.GatherAndCompare(m.Registry(), strings.NewReader(head+`
wizfetch_rejected_issues{instance="default"} 1
wizfetch_rejected_issues{instance="gone"} 1
`), "wizfetch_rejected_issues")
	if err != nil {
		t.Error(err)
	}
}
