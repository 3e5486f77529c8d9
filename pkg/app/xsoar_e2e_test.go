package app

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
	"github.com/wizfetch/wizfetch/pkg/xsoarsim"
)

// TestXSOARPlaybooksAndStoreWipe is issue 16's "done when": a run against an XSOAR whose playbooks
// bump every new incident's version (so updates conflict), plus a store wipe and a rerun, leaves
// exactly one XSOAR incident per issue, each showing the issue's latest status.
func TestXSOARPlaybooksAndStoreWipe(t *testing.T) {
	const key = "xsoar-e2e-api-key"
	clock := &simClock{}
	clock.set(time.Now().Add(10 * time.Minute)) // every generated issue is visible
	sim := startSim(t, wizsim.Options{Issues: 400, Seed: 16, Now: clock.now})
	xs := xsoarsim.New(xsoarsim.Options{Key: key, PlaybookEdits: 1})
	srv := httptest.NewServer(xs)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	sk := config.DefaultSink(config.SinkXSOAR)
	sk.Name, sk.URL, sk.APIKey = "soc", srv.URL, key
	cfg.Sinks = append(cfg.Sinks, sk)
	if !cfg.Instances[0].Fetch.Updates {
		t.Fatal("the updates feed is off: the test would send no updates")
	}
	jsonl := filepath.Join(dir, "incidents.jsonl")

	// 1. Deliver every issue; each new incident gets a playbook edit right after it is created.
	runUntilIdle(t, cfg, nil)
	issues := issuesIn(t, jsonl)
	if len(issues) < 20 {
		t.Fatalf("only %d issues delivered: the simulator data is not what this test assumes", len(issues))
	}
	checkXSOAR(t, xs, sim, issues)

	// 2. Status changes: the updates feed sends them. Each incident was edited by its playbook
	// after wizfetch created it; XSOAR's update replaces the whole incident, so the sink reads it
	// first and the playbook's work (its phase) survives, with no version conflict.
	var changed []string
	for _, is := range sim.Snapshot() {
		if len(changed) == 5 {
			break
		}
		if issues[is.ID] && (is.Status == "OPEN" || is.Status == "IN_PROGRESS") {
			if err := sim.SetStatus(is.ID, "RESOLVED"); err != nil {
				t.Fatal(err)
			}
			changed = append(changed, is.ID)
		}
	}
	clock.add(time.Second)
	runUntilIdle(t, cfg, nil)
	runUntilIdle(t, cfg, nil)
	if st := xs.Stats(); st.Conflicts != 0 {
		t.Errorf("%d version conflicts, want 0: every update reads the incident it changes", st.Conflicts)
	}
	checkXSOAR(t, xs, sim, issuesIn(t, jsonl))
	byIssue := incidentsByIssue(xs)
	for _, id := range changed {
		if inc := byIssue[id]; inc.Label("status") != "RESOLVED" || inc.Version < 3 || inc.Body["phase"] != xsoarsim.PlaybookPhase {
			t.Errorf("issue %s: incident %s at version %d with status %q and phase %v, want RESOLVED at version >= 3 (create, playbook, update), phase %s",
				id, inc.ID, inc.Version, inc.Label("status"), inc.Body["phase"], xsoarsim.PlaybookPhase)
		}
	}
	checkStore(t, cfg.Store.Path, xs)

	// 3. Wipe the store: the rerun replays the created feed, and must adopt the incidents.
	before := xs.Stats()
	if err := os.Remove(cfg.Store.Path); err != nil {
		t.Fatal(err)
	}
	runUntilIdle(t, cfg, nil)
	after := xs.Stats()
	if after.Creates != before.Creates {
		t.Errorf("the rerun after the wipe created %d incidents, want 0", after.Creates-before.Creates)
	}
	if after.Updates == before.Updates {
		t.Errorf("the rerun after the wipe updated no incident: nothing was replayed, the test proves nothing")
	}
	checkXSOAR(t, xs, sim, issuesIn(t, jsonl))
	checkStore(t, cfg.Store.Path, xs)
	if after.UpdatesWithCreateInvestigation != 0 || after.SearchesWithoutSize != 0 {
		t.Errorf("stats %+v: an update carried createInvestigation or a search had no size", after)
	}
}

// issuesIn returns the issue ids of every event in the JSONL sink's file.
func issuesIn(t *testing.T, path string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, ev := range readJSONL(t, path) {
		out[ev.IssueID] = true
	}
	return out
}

func incidentsByIssue(xs *xsoarsim.Server) map[string]xsoarsim.Incident {
	out := map[string]xsoarsim.Incident{}
	for _, inc := range xs.Incidents() {
		out[inc.MirrorID()] = inc
	}
	return out
}

// checkXSOAR asserts exactly one XSOAR incident per delivered issue, none for others, each with the
// issue's current status in its status label.
func checkXSOAR(t *testing.T, xs *xsoarsim.Server, sim *wizsim.Server, issues map[string]bool) {
	t.Helper()
	status := map[string]string{}
	for _, is := range sim.Snapshot() {
		status[is.ID] = is.Status
	}
	seen := map[string]string{}
	for _, inc := range xs.Incidents() {
		id := inc.MirrorID()
		if prev, ok := seen[id]; ok {
			t.Fatalf("issue %s has two XSOAR incidents: %s and %s", id, prev, inc.ID)
		}
		seen[id] = inc.ID
		if !issues[id] {
			t.Fatalf("XSOAR incident %s is of issue %q, which no event carried", inc.ID, id)
		}
		if got := inc.Label("status"); got != status[id] {
			t.Errorf("issue %s: incident %s has status %q, the issue is %s", id, inc.ID, got, status[id])
		}
	}
	if len(seen) != len(issues) {
		var missing []string
		for id := range issues {
			if seen[id] == "" {
				missing = append(missing, id)
			}
		}
		slices.Sort(missing)
		t.Fatalf("XSOAR holds incidents of %d issues, want %d; missing %v", len(seen), len(issues), missing)
	}
}

// checkStore asserts the xsoar sink left no dead letter and that every issue → incident entry in
// the store names the issue's incident at its current version.
func checkStore(t *testing.T, path string, xs *xsoarsim.Server) {
	t.Helper()
	st, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dead, err := st.DeadLetters("soc", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 0 {
		t.Fatalf("%d xsoar dead letters, the first: %s", len(dead), dead[0].Reason)
	}
	mapped := 0
	err = st.View(func(tx *store.Tx) error {
		for issue, inc := range incidentsByIssue(xs) {
			raw, err := tx.SinkState("soc", "xsoar:default:"+issue)
			if err != nil {
				return err
			}
			if raw == nil {
				continue // not replayed since the wipe
			}
			mapped++
			var ref struct {
				ID      string `json:"id"`
				Version int64  `json:"version"`
			}
			if err := json.Unmarshal(raw, &ref); err != nil {
				return err
			}
			// A new incident's entry keeps the version of the create's answer, before the playbook.
			if ref.ID != inc.ID || (ref.Version != inc.Version && ref.Version != inc.Version-1) {
				t.Errorf("issue %s: the store maps it to incident %s version %d; XSOAR has %s at version %d",
					issue, ref.ID, ref.Version, inc.ID, inc.Version)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if mapped == 0 {
		t.Fatal("the store maps no issue to an XSOAR incident")
	}
}
