package server

import (
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// seedBacklog queues events of default (5 in xsoar, 1 in file), eu (2 in xsoar), and apac and
// pushonly (1 in xsoar each; instances with no feed in the tracker).
func seedBacklog(t *testing.T, st *store.Store) {
	t.Helper()
	err := st.Update(func(tx *store.Tx) error {
		for _, q := range []struct {
			sink, instance string
			n              int
		}{{"xsoar", "default", 5}, {"file", "default", 1}, {"xsoar", "eu", 2}, {"xsoar", "pushonly", 1}, {"xsoar", "apac", 1}} {
			for range q.n {
				if _, err := tx.Enqueue(q.sink, q.instance, []byte(`{"e":1}`)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// /v1/status shows each instance's undelivered events per sink, also for an instance without feeds.
func TestStatusShowsBacklogPerInstance(t *testing.T) {
	st := openStore(t)
	seedBacklog(t, st)
	s := newServer(t, Options{Store: st, Tracker: populatedTracker(3)})
	doc := decode[StatusDoc](t, get(t, s.Handler(), "GET", "/v1/status", ""))
	want := map[string]map[string]int{
		"default":  {"xsoar": 5, "file": 1},
		"eu":       {"xsoar": 2},
		"pushonly": {"xsoar": 1},
		"apac":     {"xsoar": 1},
	}
	if len(doc.Instances) != len(want) {
		t.Fatalf("instances %+v, want %d", doc.Instances, len(want))
	}
	for _, inst := range doc.Instances {
		if !maps.Equal(inst.Pending, want[inst.Name]) {
			t.Errorf("instance %s pending %v, want %v", inst.Name, inst.Pending, want[inst.Name])
		}
	}
}

// The status page shows each instance's undelivered events and, per sink, the largest backlogs.
func TestStatusPageShowsBacklogPerInstance(t *testing.T) {
	st := openStore(t)
	seedBacklog(t, st)
	s := newServer(t, Options{Store: st, Tracker: populatedTracker(3)})
	body := get(t, s.Handler(), "GET", "/", "").Body.String()
	flat := regexp.MustCompile(`\s+`).ReplaceAllString(body, " ")
	for _, want := range []string{
		"undelivered: xsoar 5 · file 1</span>",
		"undelivered: xsoar 2</span>",
		"Instance pushonly",
		"pending by instance: default 5 · eu 2 · apac 1 · 1 more</td>",
		"pending by instance: default 1</td>",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<no value>") {
		t.Error("page has a missing value")
	}
}
