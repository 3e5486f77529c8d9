// Package status keeps the daemon's live view of itself — per feed and per sink — for the HTTP status
// API, the status page and metrics. Writers are the fetch and delivery observers; readers take a
// Snapshot. It holds no secrets: errors are stored as the strings the packages below already redact.
package status

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
)

// historyEvery is the width of one throughput/lag sample; historyLen samples are kept (2 hours).
const (
	historyEvery = time.Minute
	historyLen   = 120
)

// Feed is the state of one (instance, feed).
type Feed struct {
	Instance            string    `json:"instance"`
	Feed                string    `json:"feed"`
	Watermark           time.Time `json:"watermark,omitzero"`
	LagSeconds          float64   `json:"lag_seconds"`
	LastFetch           time.Time `json:"last_fetch,omitzero"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Backlog             bool      `json:"backlog"`
	Paused              bool      `json:"paused"`
	Fetches             int64     `json:"fetches"`
	IssuesFetched       int64     `json:"issues_fetched"`
	Created             int64     `json:"created"`
	Updated             int64     `json:"updated"`
	Ignored             int64     `json:"ignored"`
	// Rejected counts the issues the feed could not turn into incidents (recorded in the store:
	// `wizfetch incidents rejected`), FutureTimestamps those whose timestamp lay beyond the allowed
	// clock skew (the watermark ignored them), Clipped the incidents with strings cut to their bound.
	Rejected         int64 `json:"rejected"`
	FutureTimestamps int64 `json:"future_timestamps"`
	Clipped          int64 `json:"clipped"`
}

// Sink is the state of one sink. Pending and DeadLetters are filled from the store by the reader.
type Sink struct {
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	Pending      int       `json:"pending"`
	MaxPending   int       `json:"max_pending"`
	DeadLetters  int       `json:"dead_letters"`
	Delivered    int64     `json:"delivered"`
	Failures     int64     `json:"failures"`
	LastDelivery time.Time `json:"last_delivery,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	// Mirror is the sink's bi-directional mirroring (mirror.go); zero when it does not mirror.
	Mirror Mirror `json:"mirror,omitzero"`
}

// Retrying is a Wiz tenant whose requests are being retried right now.
type Retrying struct {
	Instance string `json:"instance"`
	// Cause is why the last attempt failed, as the wiz client reports it (secrets masked), e.g.
	// "token request: proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: connection refused".
	Cause string `json:"cause"`
	// Since is when the retries began.
	Since time.Time `json:"since"`
}

// Sample is one minute of history: events emitted in it and the largest feed lag at its end.
type Sample struct {
	At         time.Time `json:"at"`
	Events     int64     `json:"events"`
	LagSeconds float64   `json:"lag_seconds"`
}

// Snapshot is a consistent copy of the tracker.
type Snapshot struct {
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	Now       time.Time `json:"now"`
	Paused    bool      `json:"paused"`
	PausedBy  string    `json:"paused_by,omitempty"`
	Feeds     []Feed    `json:"feeds"`
	Sinks     []Sink    `json:"sinks"`
	History   []Sample  `json:"history"`
	// Retrying lists the instances whose Wiz requests are being retried, by instance name.
	Retrying []Retrying `json:"retrying,omitempty"`
	// HA is this replica's part in a deployment of several (store.backend: etcd); nil with bbolt.
	HA *HA `json:"ha,omitempty"`
}

// HA says who leads a deployment of several replicas, as this replica sees it.
type HA struct {
	// Replica is this replica's id; Leader the id of the replica that leads ("" while none does).
	Replica string `json:"replica"`
	Leader  string `json:"leader"`
	// Role is "leader" or "standby".
	Role string `json:"role"`
	// Since is when this replica took its current role.
	Since time.Time `json:"since"`
}

// Tracker is safe for concurrent use.
type Tracker struct {
	mu        sync.Mutex
	now       func() time.Time
	version   string
	startedAt time.Time
	feeds     map[[2]string]*Feed
	sinks     map[string]*Sink
	paused    map[string]string // instance → why its fetching is paused by back-pressure
	history   []Sample
	retrying  map[string]*Retrying
	ha        *HA
}

// SetHA records this replica's role and the leader it knows of (store.backend: etcd).
func (t *Tracker) SetHA(replica, leader string, leading bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	role := "standby"
	if leading {
		role = "leader"
	}
	if t.ha == nil || t.ha.Role != role {
		t.ha = &HA{Since: t.now()}
	}
	t.ha.Replica, t.ha.Leader, t.ha.Role = replica, leader, role
}

// New returns an empty tracker; now nil uses time.Now.
func New(version string, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, version: version, startedAt: now(), feeds: map[[2]string]*Feed{},
		sinks: map[string]*Sink{}, retrying: map[string]*Retrying{}}
}

// AddFeed registers a feed so it shows before its first fetch.
func (t *Tracker) AddFeed(instance, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.feed(instance, name)
}

// AddSink registers a sink.
func (t *Tracker) AddSink(name, typ string, maxPending int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sink(name)
	s.Type, s.MaxPending = typ, maxPending
}

// Reset forgets feeds and sinks (after a reload changed them); counters and history are kept.
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.feeds = map[[2]string]*Feed{}
	t.sinks = map[string]*Sink{}
	t.retrying = map[string]*Retrying{}
	t.paused = nil
}

func (t *Tracker) feed(instance, name string) *Feed {
	k := [2]string{instance, name}
	f := t.feeds[k]
	if f == nil {
		f = &Feed{Instance: instance, Feed: name}
		t.feeds[k] = f
	}
	return f
}

func (t *Tracker) sink(name string) *Sink {
	s := t.sinks[name]
	if s == nil {
		s = &Sink{Name: name}
		t.sinks[name] = s
	}
	return s
}

// FetchDone records one fetch.
func (t *Tracker) FetchDone(instance, name string, res feed.Result, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	cur := t.sample(now) // before this fetch moves a watermark: a sample ending now sees the old ones
	f := t.feed(instance, name)
	f.LastFetch = now
	f.Fetches++
	f.IssuesFetched += int64(res.Fetched)
	f.Created += int64(res.Created)
	f.Updated += int64(res.Updated)
	for _, n := range res.Ignored {
		f.Ignored += int64(n)
	}
	for _, n := range res.Rejected {
		f.Rejected += int64(n)
	}
	f.FutureTimestamps += int64(res.FutureTimestamps)
	f.Clipped += int64(res.Clipped)
	if !res.Watermark.IsZero() {
		f.Watermark = res.Watermark
	}
	if err != nil {
		f.LastError = err.Error()
		f.ConsecutiveFailures++
	} else {
		f.LastSuccess = now
		f.LastError = ""
		f.ConsecutiveFailures = 0
		f.Backlog = res.Backlog
	}
	cur.Events += int64(res.Emitted())
}

// WizRetrying records why the Wiz requests of instance are being retried; cause "" records that
// they no longer are. It is fed by the wiz client's observer on every retry, so an unreachable
// proxy or a failing Wiz shows at once, not only when the retry budget is spent.
func (t *Tracker) WizRetrying(instance, cause string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cause == "" {
		delete(t.retrying, instance)
		return
	}
	if r := t.retrying[instance]; r != nil {
		r.Cause = cause
		return
	}
	t.retrying[instance] = &Retrying{Instance: instance, Cause: cause, Since: t.now()}
}

// SetPaused records that back-pressure from a sink pauses instance's fetching, why ("" resumes it).
func (t *Tracker) SetPaused(instance, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if why == "" {
		delete(t.paused, instance)
		return
	}
	if t.paused == nil {
		t.paused = map[string]string{}
	}
	t.paused[instance] = why
}

// pausedSummary says what is paused: "" when nothing is, the instance and why when one is, and how
// many with the first of them by name when several are. t.mu is held.
func (t *Tracker) pausedSummary() string {
	if len(t.paused) == 0 {
		return ""
	}
	first := ""
	for inst := range t.paused {
		if first == "" || inst < first {
			first = inst
		}
	}
	if len(t.paused) == 1 {
		return fmt.Sprintf("instance %s: %s", first, t.paused[first])
	}
	return fmt.Sprintf("%d instances (%s: %s, …)", len(t.paused), first, t.paused[first])
}

// Delivery records one delivery attempt of a sink.
func (t *Tracker) Delivery(name string, delivered int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sink(name)
	s.Delivered += int64(delivered)
	if delivered > 0 {
		s.LastDelivery = t.now()
	}
	if err != nil {
		s.Failures++
		s.LastError = err.Error()
	} else {
		s.LastError = ""
	}
}

// sample returns the current minute's sample, starting a new one when the minute changed. The
// largest lag walks every feed, so it is not taken on every fetch (with a thousand instances, every
// fetch walking two thousand feeds was a tenth of the idle CPU, issue 19) but when a snapshot is
// taken and when a sample ends: at the first call of the next minute, from the watermarks as they
// were then, measured at the minute's end.
func (t *Tracker) sample(now time.Time) *Sample {
	at := now.Truncate(historyEvery)
	if n := len(t.history); n == 0 || !t.history[n-1].At.Equal(at) {
		if n > 0 {
			end := t.history[n-1].At.Add(historyEvery)
			t.history[n-1].LagSeconds = t.maxLag(end)
		}
		t.history = append(t.history, Sample{At: at})
		if len(t.history) > historyLen {
			t.history = append(t.history[:0], t.history[len(t.history)-historyLen:]...)
		}
	}
	return &t.history[len(t.history)-1]
}

func (t *Tracker) maxLag(now time.Time) float64 {
	lag := 0.0
	for _, f := range t.feeds {
		if !f.Watermark.IsZero() {
			lag = max(lag, now.Sub(f.Watermark).Seconds())
		}
	}
	return lag
}

// Snapshot copies the state, with lags computed at now, feeds and sinks sorted by name.
func (t *Tracker) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.sample(now).LagSeconds = t.maxLag(now) // keep the chart moving while idle
	snap := Snapshot{
		Version: t.version, StartedAt: t.startedAt, Now: now,
		Paused: len(t.paused) > 0, PausedBy: t.pausedSummary(),
		History: append([]Sample(nil), t.history...),
	}
	if t.ha != nil {
		ha := *t.ha
		snap.HA = &ha
	}
	for _, f := range t.feeds {
		c := *f
		if !c.Watermark.IsZero() {
			c.LagSeconds = now.Sub(c.Watermark).Seconds()
		}
		_, c.Paused = t.paused[c.Instance]
		snap.Feeds = append(snap.Feeds, c)
	}
	for _, s := range t.sinks {
		snap.Sinks = append(snap.Sinks, *s)
	}
	sort.Slice(snap.Feeds, func(i, j int) bool {
		if snap.Feeds[i].Instance != snap.Feeds[j].Instance {
			return snap.Feeds[i].Instance < snap.Feeds[j].Instance
		}
		return snap.Feeds[i].Feed < snap.Feeds[j].Feed
	})
	for _, r := range t.retrying {
		snap.Retrying = append(snap.Retrying, *r)
	}
	sort.Slice(snap.Sinks, func(i, j int) bool { return snap.Sinks[i].Name < snap.Sinks[j].Name })
	sort.Slice(snap.Retrying, func(i, j int) bool { return snap.Retrying[i].Instance < snap.Retrying[j].Instance })
	return snap
}
