package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// StatusDoc is the body of GET /v1/status: the tracker's snapshot with the feeds grouped by instance,
// and the sinks' pending and dead-letter counts and each instance's rejected issues read from the
// store.
type StatusDoc struct {
	Version       string          `json:"version"`
	StartedAt     time.Time       `json:"started_at"`
	Now           time.Time       `json:"now"`
	UptimeSeconds float64         `json:"uptime_seconds"`
	Paused        bool            `json:"paused"`
	PausedBy      string          `json:"paused_by,omitempty"`
	Instances     []InstanceDoc   `json:"instances"`
	Sinks         []status.Sink   `json:"sinks"`
	Store         *StoreDoc       `json:"store,omitempty"`
	History       []status.Sample `json:"history"`
	// HA says who leads when several replicas share an etcd store (absent with bbolt).
	HA *status.HA `json:"ha,omitempty"`
	// StoreError says why the store figures are missing (never a secret: store errors name paths
	// and buckets only).
	StoreError string `json:"store_error,omitempty"`
}

// InstanceDoc is one Wiz tenant's feeds.
type InstanceDoc struct {
	Name      string `json:"name"`
	Incidents int    `json:"incidents"`
	// RejectedIssues is how many issues of the tenant the store holds as rejected (they could not
	// be incidents: GET /v1/rejected-issues lists them).
	RejectedIssues int           `json:"rejected_issues"`
	Feeds          []status.Feed `json:"feeds"`
	// Pending is how many of the tenant's events wait in each sink's outbox (sinks without any left
	// out): the tenant's share of the backlog, delivered in turns with the other tenants'.
	Pending map[string]int `json:"pending,omitempty"`
	// Retrying is why the tenant's Wiz requests are being retried right now ("" when they are
	// not), from the first failed attempt on; RetryingSince is when the retries began.
	Retrying      string    `json:"retrying,omitempty"`
	RetryingSince time.Time `json:"retrying_since,omitzero"`
}

// StoreDoc is the part of the store's statistics worth showing an operator.
type StoreDoc struct {
	Path          string `json:"path"`
	FileSizeBytes int64  `json:"file_size_bytes"`
	Refetch       int    `json:"refetch"`
	Incidents     int    `json:"incidents"`
	Closed        int    `json:"closed_incidents"`
}

// statusDoc builds the document from one tracker snapshot and one store read.
func (s *Server) statusDoc() StatusDoc {
	var snap status.Snapshot
	if s.opt.Tracker != nil {
		snap = s.opt.Tracker.Snapshot()
	} else {
		snap.Now = time.Now()
		snap.StartedAt = snap.Now
	}
	doc := StatusDoc{
		Version:       snap.Version,
		StartedAt:     snap.StartedAt,
		Now:           snap.Now,
		UptimeSeconds: snap.Now.Sub(snap.StartedAt).Seconds(),
		Paused:        snap.Paused,
		PausedBy:      snap.PausedBy,
		Instances:     []InstanceDoc{},
		Sinks:         append([]status.Sink{}, snap.Sinks...),
		History:       append([]status.Sample{}, snap.History...),
		HA:            snap.HA,
	}
	var stats *store.Stats
	if s.opt.Store != nil {
		st, err := s.opt.Store.Stats()
		if err != nil {
			s.log.Warn("read store for status", "err", err)
			doc.StoreError = err.Error()
		} else {
			stats = &st
			doc.Store = &StoreDoc{Path: st.Path, FileSizeBytes: st.FileSize, Refetch: st.Refetch, Closed: st.ClosedIncidents}
			for _, n := range st.Incidents {
				doc.Store.Incidents += n
			}
			for i := range doc.Sinks {
				doc.Sinks[i].Pending = st.Outbox[doc.Sinks[i].Name]
				doc.Sinks[i].DeadLetters = st.DeadLetters[doc.Sinks[i].Name]
			}
		}
	}
	var rejected map[string]int
	if stats != nil {
		var err error
		if rejected, err = s.opt.Store.RejectedCounts(); err != nil {
			s.log.Warn("read rejected issues for status", "err", err)
			doc.StoreError = err.Error()
		}
	}
	newInstance := func(name string) InstanceDoc {
		inst := InstanceDoc{Name: name, Feeds: []status.Feed{}, RejectedIssues: rejected[name]}
		if stats != nil {
			inst.Incidents = stats.Incidents[name]
			for sink, lanes := range stats.OutboxLanes {
				if n := lanes[name]; n > 0 {
					if inst.Pending == nil {
						inst.Pending = map[string]int{}
					}
					inst.Pending[sink] = n
				}
			}
		}
		return inst
	}
	// Snapshot feeds are sorted by instance then feed, so grouping is one pass.
	for _, f := range snap.Feeds {
		if n := len(doc.Instances); n == 0 || doc.Instances[n-1].Name != f.Instance {
			doc.Instances = append(doc.Instances, newInstance(f.Instance))
		}
		last := &doc.Instances[len(doc.Instances)-1]
		last.Feeds = append(last.Feeds, f)
	}
	for _, r := range snap.Retrying {
		i := instanceIndex(&doc, r.Instance, newInstance)
		doc.Instances[i].Retrying, doc.Instances[i].RetryingSince = r.Cause, r.Since
	}
	// An instance without feeds (push-only, or no longer configured) still shows its rejected issues
	// and its undelivered events.
	for name := range rejected {
		instanceIndex(&doc, name, newInstance)
	}
	if stats != nil {
		for _, lanes := range stats.OutboxLanes {
			for name := range lanes {
				instanceIndex(&doc, name, newInstance)
			}
		}
	}
	sort.SliceStable(doc.Instances, func(i, j int) bool { return doc.Instances[i].Name < doc.Instances[j].Name })
	return doc
}

// instanceIndex returns the index of the document of the instance name, adding one made by
// newInstance when there is none.
func instanceIndex(doc *StatusDoc, name string, newInstance func(string) InstanceDoc) int {
	if i := slices.IndexFunc(doc.Instances, func(d InstanceDoc) bool { return d.Name == name }); i >= 0 {
		return i
	}
	doc.Instances = append(doc.Instances, newInstance(name))
	return len(doc.Instances) - 1
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.statusDoc())
}

// errorDoc is the body of every JSON error response.
type errorDoc struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		body = []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// writeError answers a JSON error; param names the query parameter at fault, if any.
func writeError(w http.ResponseWriter, code int, msg, param string) {
	writeJSON(w, code, errorDoc{Error: msg, Parameter: param})
}
