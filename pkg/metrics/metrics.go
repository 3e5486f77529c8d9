// Package metrics owns wizfetch's Prometheus metrics. Every metric lives in a private registry (never
// the global one) so tests and several daemons in one process never collide. Names follow
// wizfetch_<thing>_<unit>; labels are few and bounded (instance, feed, kind, sink, result, code,
// endpoint, reason). No label value is ever taken from an error text, a URL or a secret: string inputs
// other than configured names (instance, feed, sink) are checked against the values they may take and
// reported as "other" otherwise.
//
// Counters and histograms are updated by hooks the pipeline calls (FetchDone, Delivery, …); gauges
// that mirror state the store or the status tracker already keeps are read at scrape time
// (WatchStore, WatchStatus), so they are never stale and cost nothing between scrapes.
package metrics

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// Metrics holds every wizfetch metric and the registry they are registered with. It is safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	apiRequests    *prometheus.CounterVec
	apiDuration    *prometheus.HistogramVec
	apiRetries     *prometheus.CounterVec
	tokenRefreshes *prometheus.CounterVec

	fetchDuration    *prometheus.HistogramVec
	fetchFailures    *prometheus.CounterVec
	issuesFetched    *prometheus.CounterVec
	eventsEmitted    *prometheus.CounterVec
	updatesIgnored   *prometheus.CounterVec
	windowRestarts   *prometheus.CounterVec
	lastFetchSuccess *prometheus.GaugeVec

	issuesRejected   *prometheus.CounterVec
	futureTimestamps *prometheus.CounterVec
	incidentsClipped *prometheus.CounterVec
	nullNodes        *prometheus.CounterVec
	nullPages        *prometheus.CounterVec

	deliveries      *prometheus.CounterVec
	eventsDelivered *prometheus.CounterVec
	deadLettered    *prometheus.CounterVec

	pushReceived  *prometheus.CounterVec
	pushRejected  *prometheus.CounterVec
	pushProcessed *prometheus.CounterVec

	mirrorActions *prometheus.CounterVec // mirror.go

	// Scrape-time sources, swapped atomically (WatchStore / WatchStatus may be called again after a
	// reload changed the sinks).
	storeWatch  atomic.Pointer[storeWatch]
	statusWatch atomic.Pointer[status.Tracker]
}

// New builds the metrics of one wizfetch process of the given version, with the Go runtime and
// process collectors and wizfetch_build_info, in a fresh registry.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), now: time.Now}
	instFeed := []string{"instance", "feed"}

	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_api_requests_total",
		Help: "HTTP attempts to the Wiz API by endpoint (graphql, token) and status code (\"none\" when no response arrived).",
	}, []string{"instance", "endpoint", "code"})
	m.apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wizfetch_api_request_duration_seconds",
		Help:    "Duration of one HTTP attempt to the Wiz API.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"instance", "endpoint"})
	m.apiRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_api_retries_total",
		Help: "Retries of Wiz API requests by reason (429, 503, network, …).",
	}, []string{"instance", "reason"})
	m.tokenRefreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_token_refreshes_total",
		Help: "OAuth token requests to Wiz by result (ok, error).",
	}, []string{"instance", "result"})

	m.fetchDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wizfetch_fetch_duration_seconds",
		Help:    "Duration of one fetch of a feed (all its pages), successful or not.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
	}, instFeed)
	m.fetchFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_fetch_failures_total",
		Help: "Fetches that ended with an error.",
	}, instFeed)
	m.issuesFetched = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_issues_fetched_total",
		Help: "Issues read from Wiz by the feeds.",
	}, instFeed)
	m.eventsEmitted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_events_emitted_total",
		Help: "Incident events committed to the outbox, by kind (created, updated).",
	}, []string{"instance", "feed", "kind"})
	m.updatesIgnored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_updates_ignored_total",
		Help: "Issues passed over without an event, by reason.",
	}, []string{"instance", "reason"})
	m.windowRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_window_restarts_total",
		Help: "Fetch windows restarted after Wiz rejected a cursor.",
	}, instFeed)
	m.lastFetchSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wizfetch_fetch_last_success_timestamp_seconds",
		Help: "Unix time of the last successful fetch of a feed.",
	}, instFeed)

	m.issuesRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_issues_rejected_total",
		Help: "Issues a feed could not turn into an incident, by reason (incomplete, too_large, mapping_failed); each is recorded in the store (`wizfetch incidents rejected`).",
	}, []string{"instance", "feed", "reason"})
	m.futureTimestamps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_future_timestamps_total",
		Help: "Issues whose feed timestamp lay beyond now plus the allowed clock skew; the watermark ignored them.",
	}, instFeed)
	m.incidentsClipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_incidents_clipped_total",
		Help: "Incidents with strings cut to their size bound.",
	}, instFeed)
	m.nullNodes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_null_nodes_total",
		Help: "Null nodes in the pages Wiz returned.",
	}, instFeed)
	m.nullPages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_null_pages_total",
		Help: "Pages Wiz returned with a null nodes list.",
	}, instFeed)

	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_deliveries_total",
		Help: "Delivery attempts of a sink by result (ok, error).",
	}, []string{"sink", "result"})
	m.eventsDelivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_events_delivered_total",
		Help: "Events a sink accepted.",
	}, []string{"sink"})
	m.deadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_dead_lettered_total",
		Help: "Events a sink gave up on and moved to its dead letters.",
	}, []string{"sink"})

	m.pushReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_push_received_total",
		Help: "Wiz pushes accepted by the webhook receiver.",
	}, []string{"instance"})
	m.pushRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_push_rejected_total",
		Help: "Wiz pushes rejected by the webhook receiver, by reason (auth, too_large, bad_request, …).",
	}, []string{"reason"})
	m.pushProcessed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_push_processed_total",
		Help: "Pushed issues refetched and processed, by result.",
	}, []string{"instance", "result"})

	m.mirrorActions = newMirrorActions()

	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wizfetch_build_info",
		Help: "Always 1; the labels carry the wizfetch version and the Go version it was built with.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.apiRequests, m.apiDuration, m.apiRetries, m.tokenRefreshes,
		m.fetchDuration, m.fetchFailures, m.issuesFetched, m.eventsEmitted, m.updatesIgnored,
		m.windowRestarts, m.lastFetchSuccess,
		m.issuesRejected, m.futureTimestamps, m.incidentsClipped, m.nullNodes, m.nullPages,
		m.deliveries, m.eventsDelivered, m.deadLettered,
		m.pushReceived, m.pushRejected, m.pushProcessed,
		m.mirrorActions,
		newScrapeCollector(m),
	)
	return m
}

// Registry is the private registry holding every wizfetch metric (serve it with promhttp.HandlerFor).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// FetchDone records one fetch of a feed: its duration, the issues it read, the events it emitted by
// kind, the issues it ignored by reason, the issues it rejected by reason, future timestamps,
// clipped incidents, null nodes and pages, window restarts, and either a failure or the time of
// this success (wizfetch_fetch_last_success_timestamp_seconds). A failed fetch still counts what
// its committed pages did. err's text is never used.
func (m *Metrics) FetchDone(instance, feedName string, res feed.Result, err error) {
	m.fetchDuration.WithLabelValues(instance, feedName).Observe(res.Duration.Seconds())
	if res.Fetched > 0 {
		m.issuesFetched.WithLabelValues(instance, feedName).Add(float64(res.Fetched))
	}
	if res.Created > 0 {
		m.eventsEmitted.WithLabelValues(instance, feedName, "created").Add(float64(res.Created))
	}
	if res.Updated > 0 {
		m.eventsEmitted.WithLabelValues(instance, feedName, "updated").Add(float64(res.Updated))
	}
	for reason, n := range res.Ignored {
		if n > 0 {
			m.updatesIgnored.WithLabelValues(instance, ignoredLabel(reason)).Add(float64(n))
		}
	}
	for reason, n := range res.Rejected {
		if n > 0 {
			m.issuesRejected.WithLabelValues(instance, feedName, rejectedLabel(reason)).Add(float64(n))
		}
	}
	addIfPositive(m.futureTimestamps, res.FutureTimestamps, instance, feedName)
	addIfPositive(m.incidentsClipped, res.Clipped, instance, feedName)
	addIfPositive(m.nullNodes, res.NullNodes, instance, feedName)
	addIfPositive(m.nullPages, res.NullPages, instance, feedName)
	if res.Restarts > 0 {
		m.windowRestarts.WithLabelValues(instance, feedName).Add(float64(res.Restarts))
	}
	if err != nil {
		m.fetchFailures.WithLabelValues(instance, feedName).Inc()
		return
	}
	m.lastFetchSuccess.WithLabelValues(instance, feedName).Set(float64(m.now().UnixNano()) / 1e9)
}

// Delivery records one delivery attempt of a sink: its result (ok or error) and how many events the
// sink accepted (a failed attempt may still have delivered some). err's text is never used.
func (m *Metrics) Delivery(sink string, delivered int, err error) {
	m.deliveries.WithLabelValues(sink, resultLabel(err == nil)).Inc()
	if delivered > 0 {
		m.eventsDelivered.WithLabelValues(sink).Add(float64(delivered))
	}
}

// DeadLettered records one event a sink gave up on.
func (m *Metrics) DeadLettered(sink string) {
	m.deadLettered.WithLabelValues(sink).Inc()
}

// PushReceived records one Wiz push accepted by the webhook receiver for instance.
func (m *Metrics) PushReceived(instance string) {
	m.pushReceived.WithLabelValues(instance).Inc()
}

// PushRejected records one Wiz push rejected for reason, one of the PushReject* constants (anything
// else is reported as "other").
func (m *Metrics) PushRejected(reason string) {
	m.pushRejected.WithLabelValues(pushRejectLabel(reason)).Inc()
}

// PushProcessed records the outcome of processing one pushed issue of instance: one of the
// PushResult* constants (anything else is reported as "other").
func (m *Metrics) PushProcessed(instance, result string) {
	m.pushProcessed.WithLabelValues(instance, pushResultLabel(result)).Inc()
}

// WatchStore makes every scrape read the outbox depth and dead-letter count of each named sink, the
// refetch queue depth, and the stored incidents and rejected-issue records per instance from st (two
// short read transactions per scrape). Calling it again (after a reload changed the sinks) replaces the previous store and list.
func (m *Metrics) WatchStore(st *store.Store, sinks []string) {
	if st == nil {
		m.storeWatch.Store(nil)
		return
	}
	m.storeWatch.Store(&storeWatch{store: st, sinks: append([]string(nil), sinks...)})
}

// WatchStatus makes every scrape read, per feed of t, the watermark lag and timestamp, consecutive
// failures and backlog, and whether fetching is paused. Calling it again replaces the tracker.
func (m *Metrics) WatchStatus(t *status.Tracker) {
	m.statusWatch.Store(t)
}

// addIfPositive adds n to the counter of labels; a zero count makes no series.
func addIfPositive(c *prometheus.CounterVec, n int, labels ...string) {
	if n > 0 {
		c.WithLabelValues(labels...).Add(float64(n))
	}
}

func resultLabel(ok bool) string {
	if ok {
		return "ok"
	}
	return "error"
}

// Label values the push hooks accept; anything else is reported as "other", so a caller's free text
// (which might hold a token or a URL) can never become a label value.
const (
	PushRejectAuth            = "auth"             // 401: webhook auth missing or wrong
	PushRejectTooLarge        = "too_large"        // 413
	PushRejectBadRequest      = "bad_request"      // 400: not JSON, no issue id
	PushRejectUnknownInstance = "unknown_instance" // 404: /v1/wiz/webhook/{instance} names no instance
	PushRejectMethod          = "method"           // 405
	PushRejectQueue           = "queue"            // 503: the refetch queue could not take it
	PushRejectQueueFull       = "queue_full"       // 429: the instance's refetch queue is at its cap

	PushResultOK       = "ok"        // refetched and processed
	PushResultError    = "error"     // refetch or processing failed (will be retried)
	PushResultNotFound = "not_found" // Wiz no longer has the issue
	PushResultIgnored  = "ignored"   // processed, no event (unchanged or outside the filters)
	PushResultRejected = "rejected"  // the issue cannot be an incident: recorded (`wizfetch incidents rejected`), no event
)

// oneOf returns s when it is one of allowed, else "other".
func oneOf(s string, allowed ...string) string {
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	return "other"
}

func pushRejectLabel(reason string) string {
	return oneOf(reason, PushRejectAuth, PushRejectTooLarge, PushRejectBadRequest, PushRejectUnknownInstance,
		PushRejectMethod, PushRejectQueue, PushRejectQueueFull)
}

func pushResultLabel(result string) string {
	return oneOf(result, PushResultOK, PushResultError, PushResultNotFound, PushResultIgnored, PushResultRejected)
}

func rejectedLabel(reason string) string {
	return oneOf(reason, feed.RejectIncomplete, feed.RejectTooLarge, feed.RejectMapping)
}

func ignoredLabel(reason string) string {
	return oneOf(reason, feed.ReasonDuplicate, feed.ReasonKnown, feed.ReasonStatusUnchanged,
		feed.ReasonNotMatching, feed.ReasonOutsideWindow, feed.ReasonNoTimestamp, feed.ReasonStale)
}

// retryLabel accepts the wiz client's retry reasons: "network" or an HTTP status code.
func retryLabel(reason string) string {
	if len(reason) == 3 && reason[0] >= '1' && reason[0] <= '5' && reason[1] >= '0' && reason[1] <= '9' &&
		reason[2] >= '0' && reason[2] <= '9' {
		return reason
	}
	return oneOf(reason, "network", "timeout")
}

func endpointLabel(endpoint string) string {
	return oneOf(endpoint, "graphql", "token")
}

// codeLabel is an HTTP status code as a label value; 0 (no response) is "none".
func codeLabel(code int) string {
	if code <= 0 || code > 999 {
		return "none"
	}
	return strconv.Itoa(code)
}
