package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/sink"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
	"github.com/wizfetch/wizfetch/pkg/writeback"
	"github.com/wizfetch/wizfetch/pkg/xsoarsim"
)

const (
	testKey  = "mirror-test-api-key"
	sinkName = "soar"
	instance = "default"
)

// env is a Wiz simulator with a client, a test XSOAR, a store and the xsoar sink over them.
type env struct {
	t      *testing.T
	sim    *wizsim.Server
	client *wiz.Client
	xs     *xsoarsim.Server
	xsURL  string
	dbPath string
	st     *store.Store
	sink   *sink.XSOAR
	mirror config.XSOARMirror
	byType map[string][]string // open issue ids by type
	seq    uint64
	mu     sync.Mutex
	seen   []string // observed actions: direction/action/result
}

func newEnv(t *testing.T) *env {
	t.Helper()
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(base.UnixNano())
	sim, err := wizsim.New(wizsim.Options{Issues: 120, Seed: 20, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	now.Store(base.Add(10 * time.Minute).UnixNano()) // every generated issue is visible
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := wiz.New(ctx, wiz.Options{
		APIURL: sim.GraphQLURL(), AuthURL: sim.TokenURL(), Audience: wiz.AudienceCognito,
		ClientID: "wizsim-client", ClientSecret: "wizsim-secret", Version: "test", RetryFor: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	xs := xsoarsim.New(xsoarsim.Options{Key: testKey, APIUser: "wizfetch-api"})
	srv := httptest.NewServer(xs)
	t.Cleanup(srv.Close)
	e := &env{t: t, sim: sim, client: c, xs: xs, xsURL: srv.URL, dbPath: filepath.Join(t.TempDir(), "wizfetch.db"),
		mirror: config.XSOARMirror{CloseIncidents: true, FromXSOAR: true, Notes: true}, byType: map[string][]string{}}
	for _, is := range sim.Snapshot() {
		if is.Status == wizdef.StatusOpen {
			e.byType[is.Type] = append(e.byType[is.Type], is.ID)
		}
	}
	for _, typ := range []string{wizdef.TypeThreatDetection, wizdef.TypeCloudConfiguration} {
		if len(e.byType[typ]) < 3 {
			t.Fatalf("the simulator has only %d open %s issues", len(e.byType[typ]), typ)
		}
	}
	e.open()
	return e
}

// open opens the store and builds the sink on it (again after a simulated crash).
func (e *env) open() {
	e.t.Helper()
	st, err := store.Open(e.dbPath, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.t.Cleanup(func() { _ = st.Close() })
	cfg := config.DefaultSink(config.SinkXSOAR)
	cfg.Name, cfg.URL, cfg.APIKey = sinkName, e.xsURL, config.Secret(testKey)
	m := e.mirror
	cfg.Mirror = &m
	x, err := sink.NewXSOAR(cfg, st, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	x.SetMirrorObserver(e.observe)
	e.sink = x
}

// crash drops the store without any further write, as a kill -9 would, and opens it again.
func (e *env) crash() {
	e.t.Helper()
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *env) observe(direction, action, result string, _ error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, direction+"/"+action+"/"+result)
}

func (e *env) count(what string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, s := range e.seen {
		if s == what {
			n++
		}
	}
	return n
}

func (e *env) poller(crash func(string) error) *Poller {
	e.t.Helper()
	p, err := New(Options{XSOAR: e.sink, Store: e.st, Clients: map[string]writeback.Client{instance: e.client},
		Mirror: e.mirror, Observe: e.observe, Crash: crash})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// issue reads an issue from Wiz.
func (e *env) issue(id string) *wiz.Issue {
	e.t.Helper()
	iss, _, err := e.client.Issue(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return iss
}

// deliver sends the issue as Wiz has it now to the sink as one event, as the feeds would.
func (e *env) deliver(kind, id string) {
	e.t.Helper()
	_, raw, err := e.client.Issue(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var iss struct{ Status, Type string }
	if err := json.Unmarshal(raw, &iss); err != nil {
		e.t.Fatal(err)
	}
	e.seq++
	inc := map[string]any{
		"name": "rule - " + id, "type": "Wiz Issue", "severity": 2, "dbotMirrorId": id, "rawJSON": string(raw),
		"labels": []map[string]string{{"type": "status", "value": iss.Status}, {"type": "issueType", "value": iss.Type}},
	}
	line, err := json.Marshal(map[string]any{"event_id": "ev-" + id + "-" + iss.Status, "kind": kind, "instance": instance,
		"issue_id": id, "issue_status": iss.Status, "incident": inc})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.sink.Deliver(context.Background(), []store.OutboxItem{{Seq: e.seq, Data: line}}); err != nil {
		e.t.Fatalf("deliver %s of %s: %v", kind, id, err)
	}
}

// incidentOf returns the XSOAR incident of issue id.
func (e *env) incidentOf(id string) xsoarsim.Incident {
	e.t.Helper()
	for _, inc := range e.xs.Incidents() {
		if inc.MirrorID() == id {
			return inc
		}
	}
	e.t.Fatalf("XSOAR has no incident of issue %s", id)
	return xsoarsim.Incident{}
}

func (e *env) mutations(name string) int { return e.sim.Stats().Mutations[name] }

func notesWith(iss *wiz.Issue, sub string) int {
	n := 0
	for _, note := range iss.Notes {
		if strings.Contains(note.Text, sub) {
			n++
		}
	}
	return n
}

// TestAnalystCloseRejectsOnceAndNothingBouncesBack: an analyst's close rejects (or, for a
// THREAT_DETECTION, resolves) the issue with the mapped reason and the close notes; the event Wiz's
// change produces closes nothing again, and further polls change nothing.
func TestAnalystCloseRejectsOnceAndNothingBouncesBack(t *testing.T) {
	tests := []struct {
		name, typ, xsoarReason, wantStatus, wantReason string
	}{
		{"cloud configuration is rejected", wizdef.TypeCloudConfiguration, "False Positive", wizdef.StatusRejected, wizdef.ReasonFalsePositive},
		{"threat detection is resolved", wizdef.TypeThreatDetection, "Resolved", wizdef.StatusResolved, wizdef.ReasonIssueFixed},
		{"resolve-only reason becomes WONT_FIX on a reject", wizdef.TypeCloudConfiguration, "Resolved", wizdef.StatusRejected, wizdef.ReasonWontFix},
		{"unknown reason is WONT_FIX", wizdef.TypeThreatDetection, "Custom Reason", wizdef.StatusResolved, wizdef.ReasonWontFix},
	}
	e := newEnv(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := e.byType[tc.typ][i]
			e.deliver("created", id)
			inc := e.incidentOf(id)
			p := e.poller(nil)
			if err := p.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := e.mutations("updateIssue")
			if err := e.xs.Close(inc.ID, tc.xsoarReason, "benign scanner "+id, "alice"); err != nil {
				t.Fatal(err)
			}
			if err := p.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			iss := e.issue(id)
			if iss.Status != tc.wantStatus || iss.ResolutionReason == nil || *iss.ResolutionReason != tc.wantReason {
				t.Fatalf("Wiz issue is %s (%v), want %s (%s)", iss.Status, iss.ResolutionReason, tc.wantStatus, tc.wantReason)
			}
			if n := notesWith(iss, "benign scanner "+id); n != 1 {
				t.Fatalf("%d Wiz notes carry the close notes, want 1", n)
			}
			if got := e.mutations("updateIssue") - before; got != 1 {
				t.Fatalf("%d updateIssue mutations, want 1", got)
			}
			// Wiz's change comes back as an event, then more polls: nothing moves again.
			closes := e.xs.Stats().Closes
			e.deliver("updated", id)
			for range 2 {
				if err := p.Poll(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := e.xs.Stats().Closes; got != closes {
				t.Errorf("XSOAR got %d more closes after Wiz's change came back", got-closes)
			}
			if got := e.mutations("updateIssue") - before; got != 1 {
				t.Errorf("%d updateIssue mutations after the echo, want 1", got)
			}
			for _, en := range e.xs.Entries(inc.ID) {
				if strings.Contains(en.Contents, sink.MirrorNoteMarker) || strings.Contains(en.Contents, "benign scanner") {
					t.Errorf("wizfetch's own Wiz note came back into the war room: %q", en.Contents)
				}
			}
		})
	}
	if e.count("to_wiz/close/ok") != len(tests) {
		t.Errorf("observed %d to_wiz closes, want %d", e.count("to_wiz/close/ok"), len(tests))
	}
}

// TestCrashDuringMirroringLosesAndDoublesNothing stops a poll where a kill -9 could (after the
// decision was committed, after Wiz applied it, after a page) and restarts on the same store: the
// issue ends rejected exactly once, with one note.
func TestCrashDuringMirroringLosesAndDoublesNothing(t *testing.T) {
	e := newEnv(t)
	for i, point := range []string{"decided", "applied", "page"} {
		t.Run(point, func(t *testing.T) {
			id := e.byType[wizdef.TypeCloudConfiguration][i]
			e.deliver("created", id)
			if err := e.poller(nil).Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			inc := e.incidentOf(id)
			if err := e.xs.Close(inc.ID, "Other", "crash test "+point, "bob"); err != nil {
				t.Fatal(err)
			}
			before := e.mutations("updateIssue")
			crashed := false
			err := e.poller(func(at string) error {
				if at == point && !crashed {
					crashed = true
					return ErrCrash
				}
				return nil
			}).Poll(context.Background())
			if !errors.Is(err, ErrCrash) {
				t.Fatalf("poll returned %v, want the simulated crash", err)
			}
			e.crash()
			for range 2 { // the restart, then a quiet poll
				if err := e.poller(nil).Poll(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			iss := e.issue(id)
			if iss.Status != wizdef.StatusRejected {
				t.Fatalf("Wiz issue is %s after the restart, want REJECTED: the close was lost", iss.Status)
			}
			if got := e.mutations("updateIssue") - before; got != 1 {
				t.Fatalf("%d updateIssue mutations across the crash, want 1", got)
			}
			if n := notesWith(iss, "crash test "+point); n != 1 {
				t.Fatalf("%d notes carry the close notes, want 1", n)
			}
			var pending []store.MirrorAction
			_ = e.st.View(func(tx *store.Tx) error { pending, err = tx.MirrorActions(sinkName); return err })
			if len(pending) != 0 {
				t.Fatalf("%d decisions left pending", len(pending))
			}
		})
	}
}

// TestWizChangesCloseAndReopenTheIncident: a Wiz resolution closes the incident once (naming the
// reason), a Wiz note becomes one war-room entry, a reopen in Wiz reopens it, and none of it is
// mirrored back to Wiz.
func TestWizChangesCloseAndReopenTheIncident(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.byType[wizdef.TypeThreatDetection][0]
	e.deliver("created", id)
	p := e.poller(nil)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateIssueNote(ctx, id, "look at host-7"); err != nil {
		t.Fatal(err)
	}
	before := e.mutations("updateIssue")
	if _, err := e.client.UpdateIssue(ctx, id, wiz.IssuePatch{Status: wizdef.StatusResolved, ResolutionReason: wizdef.ReasonFalsePositive, Note: "scanner"}); err != nil {
		t.Fatal(err)
	}
	e.deliver("updated", id)
	inc := e.incidentOf(id)
	if inc.Status != xsoarsim.StatusDone || inc.CloseReason != "False Positive" || !strings.Contains(inc.CloseNotes, "FALSE_POSITIVE") {
		t.Fatalf("incident status %d, reason %q, notes %q; want closed as False Positive naming FALSE_POSITIVE", inc.Status, inc.CloseReason, inc.CloseNotes)
	}
	entriesWith := func(sub string) int {
		n := 0
		for _, en := range e.xs.Entries(inc.ID) {
			if strings.Contains(en.Contents, sub) {
				n++
			}
		}
		return n
	}
	if entriesWith("look at host-7") != 1 || entriesWith("scanner") != 1 {
		t.Fatalf("war room %+v, want each new Wiz note once", e.xs.Entries(inc.ID))
	}
	entries := e.xs.Stats().Entries
	if want := len(e.issue(id).Notes); entries != want {
		t.Fatalf("%d war-room entries for %d Wiz notes", entries, want)
	}
	// The same event again (a retry) and polls: nothing new anywhere.
	e.deliver("updated", id)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.xs.Stats(); st.Closes != 1 || st.RedundantCloses != 0 || st.Entries != entries {
		t.Fatalf("XSOAR stats %+v, want 1 close and still %d entries", st, entries)
	}
	// Reopened in Wiz: the incident reopens, once.
	if _, err := e.client.UpdateIssue(ctx, id, wiz.IssuePatch{Status: wizdef.StatusOpen}); err != nil {
		t.Fatal(err)
	}
	e.deliver("updated", id)
	e.deliver("updated", id)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if inc := e.incidentOf(id); inc.Status != xsoarsim.StatusActive || e.xs.Stats().Reopens != 1 {
		t.Fatalf("incident status %d after %d reopens, want active after 1", inc.Status, e.xs.Stats().Reopens)
	}
	if got := e.mutations("updateIssue") - before; got != 2 {
		t.Fatalf("%d updateIssue mutations, want the 2 made in Wiz: something bounced back", got)
	}
	if e.count("to_xsoar/close/ok") != 1 || e.count("to_xsoar/reopen/ok") != 1 || e.count("to_xsoar/note/ok") != entries {
		t.Fatalf("observed %v", e.seen)
	}
}

// TestAnalystReopenReopensTheIssue: a reopen in XSOAR of an incident wizfetch closed for Wiz
// reopens the issue, with a note that never comes back into the war room.
func TestAnalystReopenReopensTheIssue(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.byType[wizdef.TypeCloudConfiguration][0]
	e.deliver("created", id)
	if _, err := e.client.UpdateIssue(ctx, id, wiz.IssuePatch{Status: wizdef.StatusRejected, ResolutionReason: wizdef.ReasonWontFix, Note: "accepted"}); err != nil {
		t.Fatal(err)
	}
	e.deliver("updated", id)
	p := e.poller(nil)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	inc := e.incidentOf(id)
	if err := e.xs.Reopen(inc.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	iss := e.issue(id)
	if iss.Status != wizdef.StatusOpen || notesWith(iss, "Reopened in Cortex XSOAR") != 1 {
		t.Fatalf("Wiz issue %s with notes %+v, want OPEN with one reopen note", iss.Status, iss.Notes)
	}
	entries := len(e.xs.Entries(inc.ID))
	e.deliver("updated", id)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, en := range e.xs.Entries(inc.ID) {
		if strings.Contains(en.Contents, sink.MirrorNoteMarker) {
			t.Fatalf("wizfetch's own note came back into the war room: %q", en.Contents)
		}
	}
	if got := len(e.xs.Entries(inc.ID)); got != entries {
		t.Fatalf("%d entries after the echo, %d before", got, entries)
	}
	if st := e.xs.Stats(); st.Reopens != 1 || st.Closes != 1 {
		t.Fatalf("XSOAR stats %+v: want one close (for Wiz's reject) and one reopen (the analyst's)", st)
	}
}

// TestSinkCrashAroundTheCloseSendsItOnce emulates a kill -9 between XSOAR's close and the
// record of it (the record still expects the close): the retried event sends no second close,
// and the poll does not take wizfetch's own close for an analyst's.
func TestSinkCrashAroundTheCloseSendsItOnce(t *testing.T) {
	for _, closedBeforeCrash := range []bool{true, false} {
		name := map[bool]string{true: "after the close", false: "before the close"}[closedBeforeCrash]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			id := e.byType[wizdef.TypeCloudConfiguration][0]
			e.deliver("created", id)
			inc := e.incidentOf(id)
			if _, err := e.client.UpdateIssue(ctx, id, wiz.IssuePatch{Status: wizdef.StatusRejected, ResolutionReason: wizdef.ReasonWontFix, Note: "n"}); err != nil {
				t.Fatal(err)
			}
			before := e.mutations("updateIssue")
			if closedBeforeCrash {
				if err := e.xs.Close(inc.ID, "Other", "", "wizfetch-api"); err != nil {
					t.Fatal(err)
				}
			}
			// The store as a crash left it: the close decided, its outcome not recorded.
			err := e.st.Update(func(tx *store.Tx) error {
				return tx.PutMirrorIncident(sinkName, store.MirrorIncident{IncidentID: inc.ID, Instance: instance, IssueID: id, Expect: store.ExpectClosed})
			})
			if err != nil {
				t.Fatal(err)
			}
			e.crash()
			if err := e.poller(nil).Poll(ctx); err != nil {
				t.Fatal(err)
			}
			e.deliver("updated", id) // the event was not acknowledged: it comes again
			if err := e.poller(nil).Poll(ctx); err != nil {
				t.Fatal(err)
			}
			if st := e.xs.Stats(); st.Closes != 1 || st.RedundantCloses != 0 {
				t.Fatalf("XSOAR stats %+v, want exactly one close", st)
			}
			if got := e.incidentOf(id); got.Status != xsoarsim.StatusDone {
				t.Fatalf("incident status %d, want closed", got.Status)
			}
			if got := e.mutations("updateIssue") - before; got != 0 {
				t.Fatalf("%d updateIssue mutations: wizfetch's own close bounced back to Wiz", got)
			}
		})
	}
}

// TestRefusedChangeIsGivenUp: a change Wiz refuses is counted and not retried at every poll.
func TestRefusedChangeIsGivenUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.byType[wizdef.TypeCloudConfiguration][0]
	e.deliver("created", id)
	p := e.poller(nil)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	inc := e.incidentOf(id)
	refusing := &refusingClient{Client: e.client}
	p.o.Clients = map[string]writeback.Client{instance: refusing}
	if err := e.xs.Close(inc.ID, "Other", "", "carol"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.count("to_wiz/close/refused"); got != 1 || refusing.calls.Load() != 1 {
		t.Fatalf("%d refused closes counted after %d calls, want 1 each (given up, not retried): %v", got, refusing.calls.Load(), e.seen)
	}
	if iss := e.issue(id); iss.Status != wizdef.StatusOpen {
		t.Fatalf("issue %s; the refused change must not have reached Wiz", iss.Status)
	}
	// The instance is gone from the config: the decision is dropped, counted, not retried.
	p.o.Clients = map[string]writeback.Client{}
	if err := e.xs.Reopen(inc.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(ctx); err != nil { // Wiz shows it open anyway: taken as known
		t.Fatal(err)
	}
	if err := e.xs.Close(inc.ID, "Other", "", "carol"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var pending []store.MirrorAction
	_ = e.st.View(func(tx *store.Tx) (err error) { pending, err = tx.MirrorActions(sinkName); return err })
	if len(pending) != 0 || e.count("to_wiz/close/refused") != 2 {
		t.Fatalf("%d decisions pending, observed %v", len(pending), e.seen)
	}
}

// refusingClient refuses every write as Wiz refuses a bad request.
type refusingClient struct {
	*wiz.Client
	calls atomic.Int32
}

func (r *refusingClient) UpdateIssue(context.Context, string, wiz.IssuePatch) (*wiz.Issue, error) {
	r.calls.Add(1)
	return nil, &wiz.APIError{Class: wiz.ErrBadRequest, Op: "UpdateIssue", Message: "refused by the test"}
}

// An analyst closes the incident, the poll rejects the Wiz issue, and the analyst reopens the
// incident before the fetch has delivered REJECTED (so the incident's status label still says
// OPEN): the reopen reaches Wiz, and delivering the issue afterwards does not close the incident
// again.
func TestReopenBeforeTheCloseIsDeliveredReachesWiz(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.byType[wizdef.TypeCloudConfiguration][0]
	e.deliver("created", id)
	p := e.poller(nil)
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	inc := e.incidentOf(id)
	if err := e.xs.Close(inc.ID, "Other", "closing", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.issue(id).Status; got != wizdef.StatusRejected {
		t.Fatalf("Wiz issue %s after the analyst's close, want REJECTED", got)
	}
	if err := e.xs.Reopen(inc.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	e.deliver("updated", id)
	if got := e.issue(id).Status; got != wizdef.StatusOpen {
		t.Errorf("Wiz issue %s after the analyst's reopen, want OPEN: the reopen was lost", got)
	}
	if got := e.incidentOf(id).Status; got != xsoarsim.StatusActive {
		t.Errorf("incident status %d after the analyst's reopen, want active: wizfetch closed it again", got)
	}
}

// pagedXSOAR answers ChangedIncidents from a fixed list sorted by modification time, as XSOAR's
// search does (inclusive, page by page), and counts the searches.
type pagedXSOAR struct {
	incs     []sink.XSOARIncident
	searches int
}

func (f *pagedXSOAR) Name() string                                  { return "soar" }
func (f *pagedXSOAR) MappedIncident(string, string) (string, error) { return "", nil }
func (f *pagedXSOAR) ChangedIncidents(_ context.Context, since time.Time, page, size int) ([]sink.XSOARIncident, error) {
	f.searches++
	var match []sink.XSOARIncident
	for _, inc := range f.incs {
		if !inc.Modified.Before(since) {
			match = append(match, inc)
		}
	}
	from := page * size
	if from >= len(match) {
		return nil, nil
	}
	return match[from:min(from+size, len(match))], nil
}

// A busy XSOAR (20,000 incidents changed at 200 a second, a backfill's deliveries) is read in one
// pass, one search a page, and the checkpoint ends Overlap before the newest change.
func TestPollReadsABusyXSOARInOnePass(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "wizfetch.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f := &pagedXSOAR{}
	for i := range 20000 {
		f.incs = append(f.incs, sink.XSOARIncident{ID: fmt.Sprint(i), MirrorID: "m", Modified: base.Add(time.Duration(i) * 5 * time.Millisecond)})
	}
	p, err := New(Options{XSOAR: f, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 100 pages of new incidents, plus the re-read of the last second's ties at each step.
	if f.searches > 2*(20000/DefaultPageSize)+1 {
		t.Errorf("%d searches for 20,000 incidents in pages of %d", f.searches, DefaultPageSize)
	}
	var cp store.MirrorCheckpoint
	if err := st.View(func(tx *store.Tx) error { cp, err = tx.MirrorCheckpoint("soar"); return err }); err != nil {
		t.Fatal(err)
	}
	newest := f.incs[len(f.incs)-1].Modified.Truncate(time.Second)
	if want := newest.Add(-Overlap); !cp.Since.Equal(want) {
		t.Errorf("checkpoint %s, want %s (Overlap before the newest change)", cp.Since, want)
	}
}
