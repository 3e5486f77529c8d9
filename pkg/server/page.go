package server

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/status"
)

//go:embed page.html
var pageSource string

// pageRefreshSeconds is how often the page reloads itself (<meta http-equiv="refresh">).
const pageRefreshSeconds = 10

// newPageTemplate parses the embedded status page; a parse error is a programming error caught by
// every test that renders the page.
func newPageTemplate() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{
		"f1": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	}).Parse(pageSource))
}

// pageData is everything the template shows, pre-formatted so the template stays logic-free.
type pageData struct {
	Version     string
	Now         string
	Uptime      string
	Refresh     int
	Paused      bool
	PausedBy    string
	HA          *status.HA // who leads, with store.backend: etcd
	Instances   []pageInstance
	Sinks       []pageSink
	Chart       chart
	StoreError  string
	StorePath   string
	Incidents   int
	Refetch     int
	HasStore    bool
	EventsTotal int64 // events in the chart window
}

type pageInstance struct {
	Name          string
	Incidents     int
	Rejected      int // rejected-issue records in the store
	Feeds         []pageFeed
	Retrying      string // why Wiz requests are being retried ("" when they are not)
	RetryingSince string
	Pending       string // the instance's undelivered events per sink, e.g. "xsoar 120 · file 3"
}

type pageFeed struct {
	Name        string
	State       string // "ok", "failing", "idle" (never fetched): the status dot's class
	Watermark   string
	Lag         string
	Backlog     bool
	LastSuccess string
	Fetches     int64
	Issues      int64
	Created     int64
	Updated     int64
	Ignored     int64
	Rejected    int64
	Future      int64 // issues with a timestamp from the future
	Clipped     int64
	Failures    int
	LastError   string
}

type pageSink struct {
	Name         string
	Type         string
	Pending      int
	MaxPending   int
	PendingPct   float64 // 0..100, for the bar
	Full         bool    // pending at or above max_pending: fetching pauses
	DeadLetters  int
	Delivered    int64
	Failures     int64
	LastDelivery string
	LastError    string
	// Mirror summarises an xsoar sink's mirroring ("" when it does not mirror); MirrorError is its
	// last refusal or poll failure.
	Mirror      string
	MirrorError string
	// Backlogs names the instances with the most undelivered events, e.g. "acme 100000 · beta 3".
	Backlogs string
}

func (s *Server) handlePage(w http.ResponseWriter, _ *http.Request) {
	data := buildPage(s.statusDoc())
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, data); err != nil {
		s.log.Error("render status page", "err", err)
		writeError(w, http.StatusInternalServerError, "render status page", "")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(buf.Bytes())
}

func buildPage(doc StatusDoc) pageData {
	now := doc.Now
	p := pageData{
		Version:    doc.Version,
		Now:        now.UTC().Format("2006-01-02 15:04:05 UTC"),
		Uptime:     humanDuration(doc.UptimeSeconds),
		Refresh:    pageRefreshSeconds,
		Paused:     doc.Paused,
		HA:         doc.HA,
		PausedBy:   doc.PausedBy,
		StoreError: doc.StoreError,
		Chart:      buildChart(doc.History, now, doc.StartedAt),
	}
	if p.Version == "" {
		p.Version = "dev"
	}
	if doc.Store != nil {
		p.HasStore, p.StorePath, p.Incidents, p.Refetch = true, doc.Store.Path, doc.Store.Incidents, doc.Store.Refetch
	}
	for _, smp := range doc.History {
		if now.Sub(smp.At) < chartSpan {
			p.EventsTotal += smp.Events
		}
	}
	backlogs := map[string]map[string]int{} // per sink, per instance
	for _, inst := range doc.Instances {
		pi := pageInstance{Name: inst.Name, Incidents: inst.Incidents, Rejected: inst.RejectedIssues,
			Retrying: inst.Retrying, RetryingSince: ago(inst.RetryingSince, now), Pending: countList(inst.Pending, 0)}
		for sink, n := range inst.Pending {
			if backlogs[sink] == nil {
				backlogs[sink] = map[string]int{}
			}
			backlogs[sink][inst.Name] = n
		}
		for _, f := range inst.Feeds {
			pi.Feeds = append(pi.Feeds, buildFeed(f, now))
		}
		p.Instances = append(p.Instances, pi)
	}
	for _, sk := range doc.Sinks {
		ps := pageSink{
			Name: sk.Name, Type: sk.Type, Pending: sk.Pending, MaxPending: sk.MaxPending,
			DeadLetters: sk.DeadLetters, Delivered: sk.Delivered, Failures: sk.Failures,
			LastDelivery: ago(sk.LastDelivery, now), LastError: sk.LastError, Backlogs: countList(backlogs[sk.Name], 3),
		}
		if m := sk.Mirror; m.Enabled {
			ps.Mirror = fmt.Sprintf("mirroring: %d to XSOAR, %d to Wiz, %d refused, %d retried; last action %s; XSOAR last polled %s",
				m.ToXSOAR, m.ToWiz, m.Refused, m.Errors, ago(m.LastAction, now), ago(m.LastPoll, now))
			ps.MirrorError = m.LastPollError
			if ps.MirrorError == "" {
				ps.MirrorError = m.LastRefusal
			}
		}
		if sk.MaxPending > 0 {
			ps.PendingPct = math.Min(100, 100*float64(sk.Pending)/float64(sk.MaxPending))
			ps.Full = sk.Pending >= sk.MaxPending
		}
		p.Sinks = append(p.Sinks, ps)
	}
	return p
}

func buildFeed(f status.Feed, now time.Time) pageFeed {
	pf := pageFeed{
		Name: f.Feed, Backlog: f.Backlog, LastSuccess: ago(f.LastSuccess, now),
		Fetches: f.Fetches, Issues: f.IssuesFetched, Created: f.Created, Updated: f.Updated,
		Ignored: f.Ignored, Rejected: f.Rejected, Future: f.FutureTimestamps, Clipped: f.Clipped,
		Failures: f.ConsecutiveFailures, LastError: f.LastError,
		Watermark: "—", Lag: "—", State: "idle",
	}
	if !f.Watermark.IsZero() {
		pf.Watermark = f.Watermark.UTC().Format("2006-01-02 15:04:05Z")
		pf.Lag = humanDuration(f.LagSeconds)
	}
	switch {
	case f.ConsecutiveFailures > 0 || f.LastError != "":
		pf.State = "failing"
	case !f.LastSuccess.IsZero():
		pf.State = "ok"
	}
	return pf
}

// ago renders a past time relative to now ("never" for the zero time).
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Seconds()
	if d < 1 {
		return "just now"
	}
	return humanDuration(d) + " ago"
}

// humanDuration renders seconds the way an operator reads them: "42s", "4m 05s", "2h 07m", "3d 04h".
func humanDuration(sec float64) string {
	if sec < 0 || math.IsNaN(sec) {
		sec = 0
	}
	s := int64(math.Round(sec))
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd %02dh", s/86400, s%86400/3600)
	}
}

// countList formats counts as "name n · name n", largest first (then by name), at most limit of
// them (limit <= 0: all) and how many more there are.
func countList(counts map[string]int, limit int) string {
	names := slices.Collect(maps.Keys(counts))
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	var out []string
	for i, name := range names {
		if limit > 0 && i == limit {
			out = append(out, fmt.Sprintf("%d more", len(names)-limit))
			break
		}
		out = append(out, fmt.Sprintf("%s %d", name, counts[name]))
	}
	return strings.Join(out, " · ")
}
