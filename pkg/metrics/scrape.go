package metrics

import (
	"fmt"
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// storeWatch is what WatchStore registered.
type storeWatch struct {
	store *store.Store
	sinks []string
}

// scrapeCollector reads the store and the status tracker at scrape time. It is registered once, in
// New; what it reads is swapped by WatchStore and WatchStatus.
type scrapeCollector struct {
	m *Metrics

	descOutboxDepth, descDeadLetters, descRefetchDepth, descIncidents, descStoreSize *prometheus.Desc
	descRejected, descOutboxInstanceDepth                                            *prometheus.Desc
	descLag, descWatermark, descConsecutiveFailures, descBacklog, descPaused         *prometheus.Desc
}

func newScrapeCollector(m *Metrics) *scrapeCollector {
	return &scrapeCollector{
		m: m,
		descOutboxDepth: prometheus.NewDesc("wizfetch_outbox_depth",
			"Events waiting in a sink's outbox.", []string{"sink"}, nil),
		descOutboxInstanceDepth: prometheus.NewDesc("wizfetch_outbox_instance_depth",
			"Events of one instance waiting in a sink's outbox (instances with none are not reported).",
			[]string{"sink", "instance"}, nil),
		descDeadLetters: prometheus.NewDesc("wizfetch_dead_letters",
			"Events in a sink's dead letters (see `wizfetch incidents replay`).", []string{"sink"}, nil),
		descRefetchDepth: prometheus.NewDesc("wizfetch_refetch_queue_depth",
			"Pushed issues waiting to be refetched.", nil, nil),
		descIncidents: prometheus.NewDesc("wizfetch_incidents_stored",
			"Incidents held in the store, per instance.", []string{"instance"}, nil),
		descRejected: prometheus.NewDesc("wizfetch_rejected_issues",
			"Rejected-issue records held in the store, per instance (see `wizfetch incidents rejected`).", []string{"instance"}, nil),
		descStoreSize: prometheus.NewDesc("wizfetch_store_size_bytes",
			"Size of the bbolt store file.", nil, nil),
		descLag: prometheus.NewDesc("wizfetch_watermark_lag_seconds",
			"Seconds between now and a feed's watermark (the newest Wiz timestamp it committed).", []string{"instance", "feed"}, nil),
		descWatermark: prometheus.NewDesc("wizfetch_watermark_timestamp_seconds",
			"A feed's watermark as Unix time.", []string{"instance", "feed"}, nil),
		descConsecutiveFailures: prometheus.NewDesc("wizfetch_fetch_consecutive_failures",
			"Fetches of a feed that failed in a row (0 after a success).", []string{"instance", "feed"}, nil),
		descBacklog: prometheus.NewDesc("wizfetch_fetch_backlog",
			"1 when a feed's last fetch left more to fetch (cap reached or more pages), else 0.", []string{"instance", "feed"}, nil),
		descPaused: prometheus.NewDesc("wizfetch_fetch_paused",
			"1 while fetching is paused by back-pressure from a sink's outbox, else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.descOutboxDepth, c.descOutboxInstanceDepth, c.descDeadLetters, c.descRefetchDepth,
		c.descIncidents, c.descRejected, c.descStoreSize, c.descLag, c.descWatermark, c.descConsecutiveFailures, c.descBacklog,
		c.descPaused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	var snap *status.Snapshot
	if t := c.m.statusWatch.Load(); t != nil {
		s := t.Snapshot()
		snap = &s
	}
	if w := c.m.storeWatch.Load(); w != nil {
		c.collectStore(ch, w)
		c.collectRejected(ch, w, snap)
	}
	if snap != nil {
		for _, f := range snap.Feeds {
			if !f.Watermark.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.descLag, prometheus.GaugeValue, f.LagSeconds, f.Instance, f.Feed)
				ch <- prometheus.MustNewConstMetric(c.descWatermark, prometheus.GaugeValue,
					float64(f.Watermark.UnixNano())/1e9, f.Instance, f.Feed)
			}
			ch <- prometheus.MustNewConstMetric(c.descConsecutiveFailures, prometheus.GaugeValue,
				float64(f.ConsecutiveFailures), f.Instance, f.Feed)
			ch <- prometheus.MustNewConstMetric(c.descBacklog, prometheus.GaugeValue, boolValue(f.Backlog), f.Instance, f.Feed)
		}
		ch <- prometheus.MustNewConstMetric(c.descPaused, prometheus.GaugeValue, boolValue(snap.Paused))
	}
}

// collectStore reads every store figure in one read transaction (Stats is O(sinks + instances)).
func (c *scrapeCollector) collectStore(ch chan<- prometheus.Metric, w *storeWatch) {
	st, err := w.store.Stats()
	if err != nil {
		// Fails this scrape's store gauges visibly (promhttp reports it) rather than exporting zeros.
		ch <- prometheus.NewInvalidMetric(c.descOutboxDepth, fmt.Errorf("read store for metrics: %w", err))
		return
	}
	for _, sink := range w.sinks {
		ch <- prometheus.MustNewConstMetric(c.descOutboxDepth, prometheus.GaugeValue, float64(st.Outbox[sink]), sink)
		ch <- prometheus.MustNewConstMetric(c.descDeadLetters, prometheus.GaugeValue, float64(st.DeadLetters[sink]), sink)
		for _, inst := range slices.Sorted(maps.Keys(st.OutboxLanes[sink])) {
			ch <- prometheus.MustNewConstMetric(c.descOutboxInstanceDepth, prometheus.GaugeValue,
				float64(st.OutboxLanes[sink][inst]), sink, inst)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.descRefetchDepth, prometheus.GaugeValue, float64(st.Refetch))
	ch <- prometheus.MustNewConstMetric(c.descStoreSize, prometheus.GaugeValue, float64(st.FileSize))
	instances := make([]string, 0, len(st.Incidents))
	for inst := range st.Incidents {
		instances = append(instances, inst)
	}
	slices.Sort(instances)
	for _, inst := range instances {
		ch <- prometheus.MustNewConstMetric(c.descIncidents, prometheus.GaugeValue, float64(st.Incidents[inst]), inst)
	}
}

// collectRejected reads the rejected-issue records per instance (counters: one short read
// transaction). Every instance with records is reported, and every instance with a feed in snap
// (nil: none) with 0 when it has none, so that an alert on the gauge sees a series before the first
// rejection.
func (c *scrapeCollector) collectRejected(ch chan<- prometheus.Metric, w *storeWatch, snap *status.Snapshot) {
	counts, err := w.store.RejectedCounts()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.descRejected, fmt.Errorf("read store for metrics: %w", err))
		return
	}
	instances := make([]string, 0, len(counts))
	for inst := range counts {
		instances = append(instances, inst)
	}
	if snap != nil {
		for _, f := range snap.Feeds {
			if !slices.Contains(instances, f.Instance) {
				instances = append(instances, f.Instance)
			}
		}
	}
	slices.Sort(instances)
	for _, inst := range instances {
		ch <- prometheus.MustNewConstMetric(c.descRejected, prometheus.GaugeValue, float64(counts[inst]), inst)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
