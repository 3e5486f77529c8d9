package app

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/sink"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
	"github.com/wizfetch/wizfetch/pkg/xsoarsim"
)

// TestXSOARMirrorEndToEnd is issue 20's "done when", on the whole daemon: an analyst's close in
// XSOAR rejects the Wiz issue with the mapped reason and the close notes; a Wiz resolution closes
// the incident; a reopen on either side reopens the other; a Wiz note becomes one war-room entry;
// nothing bounces back; metrics and the status page show it. (Crashes mid-mirroring are covered
// by pkg/mirror's TestCrashDuringMirroringLosesAndDoublesNothing and
// TestSinkCrashAroundTheCloseSendsItOnce, which stop at each step and reopen the store.)
func TestXSOARMirrorEndToEnd(t *testing.T) {
	const key = "xsoar-mirror-e2e-key"
	sim := startSim(t, wizsim.Options{Issues: 150, Seed: 20})
	xs := xsoarsim.New(xsoarsim.Options{Key: key, APIUser: "wizfetch-api"})
	srv := httptest.NewServer(xs)
	t.Cleanup(srv.Close)

	cfg := testConfig(sim, t.TempDir(), 200)
	cfg.Instances[0].Fetch.Interval = config.Duration(100 * time.Millisecond)
	sk := config.DefaultSink(config.SinkXSOAR)
	sk.Name, sk.URL, sk.APIKey = "soc", srv.URL, key
	// 100ms is below mirror.interval's minimum: the test config is not validated, to keep the run short.
	sk.Mirror = &config.XSOARMirror{CloseIncidents: true, FromXSOAR: true, Notes: true, Interval: config.Duration(100 * time.Millisecond)}
	cfg.Sinks = append(cfg.Sinks, sk)
	d := startDaemon(t, cfg, "")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log tail:\n%s", lastLines(d.logs.String(), 40))
		}
	})

	ctx := context.Background()
	client, err := wiz.New(ctx, wiz.Options{APIURL: sim.GraphQLURL(), AuthURL: sim.TokenURL(), Audience: wiz.AudienceCognito,
		ClientID: "wizsim-client", ClientSecret: "wizsim-secret", Version: "test", RetryFor: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(id string) *wiz.Issue {
		t.Helper()
		iss, _, err := client.Issue(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	incident := func(issueID string) xsoarsim.Incident { return incidentsByIssue(xs)[issueID] }

	// 1. Incidents arrive; pick an open CLOUD_CONFIGURATION issue (a) and an open THREAT_DETECTION (c).
	var a, c string
	waitFor(t, "incidents of an open cloud configuration and an open threat detection", 30*time.Second, func() bool {
		for _, inc := range xs.Incidents() {
			if inc.Label("status") != wizdef.StatusOpen || inc.Status != xsoarsim.StatusActive {
				continue
			}
			switch inc.Label("issueType") {
			case wizdef.TypeCloudConfiguration:
				a = inc.MirrorID()
			case wizdef.TypeThreatDetection:
				c = inc.MirrorID()
			}
		}
		return a != "" && c != ""
	})
	sim.ResetStats()

	// 2. An analyst closes a's incident: Wiz rejects a with the mapped reason and the notes.
	if err := xs.Close(incident(a).ID, "False Positive", "benign scanner traffic", "alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the close to reach Wiz", 30*time.Second, func() bool { return issue(a).Status == wizdef.StatusRejected })
	if iss := issue(a); iss.ResolutionReason == nil || *iss.ResolutionReason != wizdef.ReasonFalsePositive || !hasNote(iss, "benign scanner traffic") {
		t.Fatalf("issue a: reason %v, notes %+v; want FALSE_POSITIVE and the close notes", iss.ResolutionReason, iss.Notes)
	}

	// 3. Wiz resolves c: the incident closes, naming the reason.
	if _, err := client.UpdateIssue(ctx, c, wiz.IssuePatch{Status: wizdef.StatusResolved, ResolutionReason: wizdef.ReasonIssueFixed, Note: "patched"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resolution to close the incident", 30*time.Second, func() bool { return incident(c).Status == xsoarsim.StatusDone })
	if inc := incident(c); inc.CloseReason != "Resolved" || !strings.Contains(inc.CloseNotes, wizdef.ReasonIssueFixed) {
		t.Fatalf("incident of c closed as %q with notes %q", inc.CloseReason, inc.CloseNotes)
	}

	// 4. A reopen on either side reopens the other.
	if err := xs.Reopen(incident(a).ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the XSOAR reopen to reach Wiz", 30*time.Second, func() bool { return issue(a).Status == wizdef.StatusOpen })
	if _, err := client.UpdateIssue(ctx, c, wiz.IssuePatch{Status: wizdef.StatusOpen}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Wiz reopen to reach XSOAR", 30*time.Second, func() bool { return incident(c).Status == xsoarsim.StatusActive })

	// 5. A Wiz note becomes one war-room entry (it travels with the next change of the issue).
	if _, err := client.CreateIssueNote(ctx, c, "e2e: look at host-7"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateIssue(ctx, c, wiz.IssuePatch{Status: wizdef.StatusInProgress}); err != nil {
		t.Fatal(err)
	}
	entriesWith := func(issueID, sub string) int {
		n := 0
		for _, e := range xs.Entries(incident(issueID).ID) {
			if strings.Contains(e.Contents, sub) {
				n++
			}
		}
		return n
	}
	waitFor(t, "the Wiz note in the war room", 30*time.Second, func() bool { return entriesWith(c, "e2e: look at host-7") > 0 })
	waitFor(t, "the in-progress update of c", 30*time.Second, func() bool { return incident(c).Label("status") == wizdef.StatusInProgress })

	// 6. Let several more polls and fetches pass, then nothing may have bounced back.
	polls := pollCount(t, d)
	waitFor(t, "three more polls of XSOAR", 30*time.Second, func() bool { return pollCount(t, d) >= polls+3 })
	if got := sim.Stats().Mutations["updateIssue"]; got != 5 {
		t.Errorf("%d updateIssue mutations, want 5 (reject a, resolve c, reopen a, reopen c, c in progress): a change bounced back", got)
	}
	if st := xs.Stats(); st.Closes != 2 || st.RedundantCloses != 0 || st.Reopens != 2 {
		t.Errorf("XSOAR stats %+v, want 2 closes (alice's, wizfetch's), 2 reopens, none redundant", st)
	}
	if n := entriesWith(c, "e2e: look at host-7"); n != 1 {
		t.Errorf("the Wiz note is in the war room %d times, want once", n)
	}
	for _, id := range []string{a, c} {
		if n := entriesWith(id, sink.MirrorNoteMarker); n != 0 {
			t.Errorf("wizfetch's own notes came back into the war room of %s %d times", id, n)
		}
	}

	// 7. Metrics and the status page.
	_, metrics := d.get("/metrics", "")
	for _, want := range []string{
		`wizfetch_mirror_actions_total{action="close",direction="to_wiz",result="ok",sink="soc"} 1`,
		`wizfetch_mirror_actions_total{action="reopen",direction="to_wiz",result="ok",sink="soc"} 1`,
		`wizfetch_mirror_actions_total{action="close",direction="to_xsoar",result="ok",sink="soc"} 1`,
		`wizfetch_mirror_actions_total{action="reopen",direction="to_xsoar",result="ok",sink="soc"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if _, page := d.get("/", ""); !strings.Contains(string(page), "mirroring: ") {
		t.Error("the status page has no mirroring row")
	}
}

func hasNote(iss *wiz.Issue, sub string) bool {
	for _, n := range iss.Notes {
		if strings.Contains(n.Text, sub) {
			return true
		}
	}
	return false
}

var pollMetric = regexp.MustCompile(`wizfetch_mirror_actions_total\{action="poll",direction="to_wiz",result="ok",sink="soc"\} (\d+)`)

// pollCount reads how many XSOAR polls succeeded from the daemon's metrics.
func pollCount(t *testing.T, d *daemon) int {
	t.Helper()
	_, body := d.get("/metrics", "")
	m := pollMetric.FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
