package app

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// Queued pushes are re-fetched a hundred issues of one instance per GraphQL request: 250 pushes of
// one instance (among them 3 ids Wiz does not know) and 30 of another take ⌈253/100⌉ + ⌈30/100⌉
// = 4 issue requests (one request shared by the instances would make it 3), every known issue is
// delivered exactly once, and the unknown ids are not found without holding back the others.
func TestPushesAreRefetchedInBatches(t *testing.T) {
	clock := &simClock{}
	clock.set(time.Now())
	sim := startSim(t, wizsim.Options{Issues: 10, Seed: 19, Now: clock.now})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	cfg.Instances[0].Fetch.Enabled = false // push-only
	second := cfg.Instances[0]
	second.Name = "second"
	cfg.Instances = append(cfg.Instances, second)

	pushes := map[string][]string{}
	for _, n := range []struct {
		inst  string
		count int
	}{{"default", 247}, {"second", 30}} {
		for i := 0; i < n.count; i++ {
			id, err := sim.AddIssue(wizsim.NewIssue{Type: "THREAT_DETECTION", Severity: "CRITICAL"})
			if err != nil {
				t.Fatal(err)
			}
			pushes[n.inst] = append(pushes[n.inst], id)
		}
	}
	unknown := []string{
		"00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000c",
	}
	// Unknown ids amid the others, and the two instances' pushes interleaved as they arrive.
	queue := append([]string{unknown[0]}, pushes["default"][:100]...)
	queue = append(append(queue, unknown[1]), pushes["default"][100:]...)
	queue = append(queue, unknown[2])
	st, err := store.Open(cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range queue {
		items := []store.RefetchItem{{Instance: "default", IssueID: id, ReceivedAt: time.Now()}}
		if i < len(pushes["second"]) {
			items = append(items, store.RefetchItem{Instance: "second", IssueID: pushes["second"][i], ReceivedAt: time.Now()})
		}
		for _, it := range append(items, items...) { // a repeated push coalesces in the queue
			if err := st.EnqueueRefetch(it); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	sim.ResetStats()
	runUntilIdle(t, cfg, nil)
	stats := sim.Stats()
	if stats.Pages != 4 || stats.Requests[wizsim.EndpointGraphQL][http.StatusOK] != 4 {
		t.Errorf("%d issue requests (%v), want ⌈253/100⌉ + ⌈30/100⌉ = 4", stats.Pages, stats.Requests[wizsim.EndpointGraphQL])
	}
	if want := len(pushes["default"]) + len(pushes["second"]); stats.IssuesServed != want {
		t.Errorf("%d issues served, want each pushed issue once (%d)", stats.IssuesServed, want)
	}
	delivered := map[string]int{}
	for _, ev := range readJSONL(t, filepath.Join(dir, "incidents.jsonl")) {
		if ev.Kind != "created" {
			t.Errorf("event %s of %s/%s, want created", ev.Kind, ev.Instance, ev.IssueID)
		}
		delivered[ev.Instance+"/"+ev.IssueID]++
	}
	total := 0
	for inst, ids := range pushes {
		for _, id := range ids {
			if n := delivered[inst+"/"+id]; n != 1 {
				t.Errorf("issue %s of %s delivered %d times, want once", id, inst, n)
			}
			total++
		}
	}
	if len(delivered) != total {
		t.Errorf("%d issues delivered, want %d (unknown ids deliver nothing)", len(delivered), total)
	}
	t.Logf("%d distinct pushes (%d unknown to Wiz): %d issue requests", len(queue)+len(pushes["second"]), len(unknown), stats.Pages)
}
