package mcp

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/status"
)

// ServiceStatus is the result of service_status.
type ServiceStatus struct {
	Version       string  `json:"version"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Paused        bool    `json:"paused"`
	PausedBy      string  `json:"paused_by,omitempty"`
	// InstancesTotal counts every configured instance; Instances lists those the filters kept.
	InstancesTotal int              `json:"instances_total"`
	Instances      []InstanceStatus `json:"instances"`
	Sinks          []SinkStatus     `json:"sinks"`
}

// InstanceStatus is one Wiz tenant: its feeds and its last real Wiz call.
type InstanceStatus struct {
	Name  string       `json:"name"`
	Feeds []FeedStatus `json:"feeds"`
	// Retrying says why the tenant's Wiz requests are being retried right now, if they are.
	Retrying string `json:"retrying,omitempty"`
	// LastWizCall is the latest real Wiz call known: the last fetch of a feed, or the last MCP
	// tool call that reached Wiz, whichever is newer. Nil when there was none yet.
	LastWizCall *WizCall `json:"last_wiz_call"`
}

// WizCall is the outcome of one real Wiz call.
type WizCall struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
	Source string    `json:"source"` // "feed <name>" or "mcp"
}

// FeedStatus is one feed's health.
type FeedStatus struct {
	Feed                string    `json:"feed"`
	Watermark           time.Time `json:"watermark,omitzero"`
	LagSeconds          float64   `json:"lag_seconds"`
	LastFetch           time.Time `json:"last_fetch,omitzero"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Backlog             bool      `json:"backlog"`
}

// SinkStatus is one sink's delivery health.
type SinkStatus struct {
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	Pending      int       `json:"pending"`
	DeadLetters  int       `json:"dead_letters"`
	LastDelivery time.Time `json:"last_delivery,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
}

func (h *Handler) serviceStatus(ctx context.Context, in statusArgs) (ServiceStatus, error) {
	if in.Instance != "" && !slices.Contains(h.instances(), in.Instance) {
		return ServiceStatus{}, invalid(ctx, "instance: unknown instance %q (configured: %s)", clip(in.Instance, 64), strings.Join(h.instances(), ", "))
	}
	var snap status.Snapshot
	if h.opt.Tracker != nil {
		snap = h.opt.Tracker.Snapshot()
	} else {
		snap.Now, snap.StartedAt = h.opt.Now(), h.opt.Now()
	}
	out := ServiceStatus{Version: snap.Version, UptimeSeconds: snap.Now.Sub(snap.StartedAt).Seconds(),
		Paused: snap.Paused, PausedBy: snap.PausedBy, Instances: []InstanceStatus{}, Sinks: []SinkStatus{}}
	byName := map[string]*InstanceStatus{}
	inst := func(name string) *InstanceStatus {
		if s, ok := byName[name]; ok {
			return s
		}
		byName[name] = &InstanceStatus{Name: name, Feeds: []FeedStatus{}}
		return byName[name]
	}
	for _, name := range h.instances() {
		inst(name)
	}
	for _, f := range snap.Feeds {
		s := inst(f.Instance)
		s.Feeds = append(s.Feeds, FeedStatus{Feed: f.Feed, Watermark: f.Watermark, LagSeconds: f.LagSeconds,
			LastFetch: f.LastFetch, LastSuccess: f.LastSuccess, LastError: f.LastError,
			ConsecutiveFailures: f.ConsecutiveFailures, Backlog: f.Backlog})
		if !f.LastFetch.IsZero() && (s.LastWizCall == nil || f.LastFetch.After(s.LastWizCall.At)) {
			ok := !f.LastSuccess.Before(f.LastFetch)
			c := &WizCall{At: f.LastFetch, OK: ok, Source: "feed " + f.Feed}
			if !ok {
				c.Error = f.LastError
			}
			s.LastWizCall = c
		}
	}
	for _, r := range snap.Retrying {
		inst(r.Instance).Retrying = r.Cause
	}
	for name, s := range byName {
		if c, ok := h.wiz.get(name); ok && (s.LastWizCall == nil || c.at.After(s.LastWizCall.At)) {
			s.LastWizCall = &WizCall{At: c.at, OK: c.err == "", Error: c.err, Source: "mcp"}
		}
	}
	out.InstancesTotal = len(byName)
	for _, s := range byName {
		if in.Instance != "" && s.Name != in.Instance || in.OnlyUnhealthy && healthy(s) {
			continue
		}
		out.Instances = append(out.Instances, *s)
	}
	sort.Slice(out.Instances, func(a, b int) bool { return out.Instances[a].Name < out.Instances[b].Name })
	for _, s := range snap.Sinks {
		ss := SinkStatus{Name: s.Name, Type: s.Type, LastDelivery: s.LastDelivery, LastError: s.LastError}
		if h.opt.Store != nil {
			if n, err := h.opt.Store.OutboxDepth(s.Name); err == nil {
				ss.Pending = n
			}
			if n, err := h.opt.Store.DeadLetterCount(s.Name); err == nil {
				ss.DeadLetters = n
			}
		}
		out.Sinks = append(out.Sinks, ss)
	}
	return out, nil
}

// healthy reports whether an instance has nothing to look at: no feed failing or behind, no Wiz
// request being retried.
func healthy(s *InstanceStatus) bool {
	if s.Retrying != "" {
		return false
	}
	for _, f := range s.Feeds {
		if f.ConsecutiveFailures > 0 || f.Backlog {
			return false
		}
	}
	return true
}
