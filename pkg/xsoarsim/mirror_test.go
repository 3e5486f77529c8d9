package xsoarsim

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestMirrorEndpoints checks the mirroring endpoints against what XSOAR's public sources say:
// batchClose, reopenInvestigation through /entry/execute/sync, war-room entries (none without an
// investigation), and the modification-time search.
func TestMirrorEndpoints(t *testing.T) {
	var clock atomic.Int64
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock.Store(t0.UnixNano())
	s, c := start(t, Options{Key: "k", APIUser: "svc", Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	a := c.create("issue-a", true)
	b := c.create("issue-b", false)
	clock.Store(t0.Add(time.Minute).UnixNano())

	tests := []struct {
		name   string
		path   string
		body   map[string]any
		status int
		check  func(t *testing.T, out map[string]any)
	}{
		{"close", "/incident/batchClose", map[string]any{"ids": []string{a}, "closeReason": "Resolved", "closeNotes": "done", "all": false},
			http.StatusOK, func(t *testing.T, out map[string]any) {
				data, _ := out["data"].([]any)
				inc, _ := data[0].(map[string]any)
				if inc["status"] != float64(StatusDone) || inc["closeReason"] != "Resolved" || inc["closingUserId"] != "svc" || inc["version"] != float64(2) {
					t.Fatalf("closed incident %v", inc)
				}
			}},
		{"close needs ids", "/incident/batchClose", map[string]any{"all": true}, http.StatusBadRequest, nil},
		{"close of an unknown incident", "/incident/batchClose", map[string]any{"ids": []string{"99"}}, http.StatusBadRequest, nil},
		{"entry", "/entry", map[string]any{"investigationId": a, "data": "**note**", "markdown": true}, http.StatusOK,
			func(t *testing.T, out map[string]any) {
				if out["contents"] != "**note**" || out["investigationId"] != a {
					t.Fatalf("entry %v", out)
				}
			}},
		{"no war room without an investigation", "/entry", map[string]any{"investigationId": b, "data": "x"}, http.StatusBadRequest, nil},
		{"investigation lists its entries", "/investigation/" + a, map[string]any{}, http.StatusOK,
			func(t *testing.T, out map[string]any) {
				if entries, _ := out["entries"].([]any); len(entries) != 1 {
					t.Fatalf("entries %v", out["entries"])
				}
			}},
		{"reopen", "/entry/execute/sync", map[string]any{"investigationId": a, "data": "!reopenInvestigation id=" + a}, http.StatusOK, nil},
		{"other commands are refused", "/entry/execute/sync", map[string]any{"investigationId": a, "data": "!closeInvestigation"}, http.StatusBadRequest, nil},
		{"modified since: only the changed incident", "/incidents/search", map[string]any{"filter": map[string]any{
			"query": `dbotMirrorId:* and modified:>="2026-01-02T03:04:30Z"`, "page": 0, "size": 10,
			"sort": []map[string]any{{"field": "modified", "asc": true}}}}, http.StatusOK,
			func(t *testing.T, out map[string]any) {
				data, _ := out["data"].([]any)
				if len(data) != 1 {
					t.Fatalf("%d incidents, want 1 (a, changed after the time): %v", len(data), data)
				}
				if inc, _ := data[0].(map[string]any); inc["id"] != a || inc["status"] != float64(StatusActive) {
					t.Fatalf("incident %v, want a reopened", inc)
				}
			}},
		{"a time must be a time", "/incidents/search", map[string]any{"filter": map[string]any{"query": `modified:>="yesterday"`, "size": 1}},
			http.StatusBadRequest, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := c.post(tc.path, tc.body, nil)
			if status != tc.status {
				t.Fatalf("HTTP %d %v, want %d", status, out, tc.status)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
	if st := s.Stats(); st.Closes != 1 || st.Reopens != 1 || st.Entries != 1 || st.RedundantCloses != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Close(a, "Other", "", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(a, "Other", "", "alice"); err != nil {
		t.Fatal(err)
	}
	if inc, _ := s.Incident(a); inc.ClosingUser != "alice" || s.Stats().RedundantCloses != 1 {
		t.Fatalf("incident %+v, stats %+v: a second close must count as redundant", inc, s.Stats())
	}
}
