package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Hostile data (issue 17): what Wiz returns may be wrong in any way, and no node may stall a feed,
// break exactly-once or blow the daemon's memory.

// checkpointOf reads a feed's checkpoint.
func (fx *fixture) checkpointOf(name string) store.Checkpoint {
	fx.t.Helper()
	var cp store.Checkpoint
	if err := fx.store.View(func(tx *store.Tx) error {
		var err error
		cp, _, err = tx.Checkpoint("default", name)
		return err
	}); err != nil {
		fx.t.Fatal(err)
	}
	return cp
}

// uniqueEventIDs fails on an event_id the outbox holds twice.
func uniqueEventIDs(t *testing.T, evs []event) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.EventID] {
			t.Fatalf("event_id %s (%s of %s) is in the outbox twice", e.EventID, e.Kind, e.IssueID)
		}
		seen[e.EventID] = true
	}
}

func sum(rs []Result, f func(Result) int) int {
	n := 0
	for _, r := range rs {
		n += f(r)
	}
	return n
}

var year2999 = time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)

// One node created "in 2999" once moved the created watermark there for good: no issue was fetched
// after it.
func TestFutureCreatedAtNeverMovesTheWatermark(t *testing.T) {
	fx := newFixture(t, 50)
	a := issue(1, fx.now.Add(-time.Hour), "OPEN")
	future := issue(2, year2999, "OPEN")
	fx.src.put(a)
	fx.src.put(future)
	rs := fx.run(Created)
	if got := fx.checkpointOf(Created).Watermark; !got.Equal(a.CreatedAt) {
		t.Fatalf("watermark %v, want %v (the future createdAt must not move it)", got, a.CreatedAt)
	}
	if n := sum(rs, func(r Result) int { return r.FutureTimestamps }); n != 1 {
		t.Fatalf("FutureTimestamps = %d, want 1", n)
	}

	// A new issue is still fetched, and the future one (in every window, as it sorts last) is not
	// emitted again.
	fx.now = fx.now.Add(time.Minute)
	c := issue(3, fx.now.Add(-30*time.Second), "OPEN")
	fx.src.put(c)
	fx.run(Created)
	fx.run(Created)
	evs := fx.events()
	uniqueEventIDs(t, evs)
	k := kinds(evs)
	for _, id := range []string{a.ID, future.ID, c.ID} {
		if len(k[id]) != 1 {
			t.Fatalf("issue %s: events %v, want one created", id, k[id])
		}
	}
}

// The issue's identity is its id: when the createdAt of a known issue changes (the bogus 2999 comes
// back corrected, or moves at all), neither feed takes it for a new issue.
func TestChangedCreatedAtIsStillTheSameIssue(t *testing.T) {
	fx := newFixture(t, 50)
	f := issue(1, year2999, "OPEN")
	sc := fx.now.Add(-20 * time.Minute)
	f.StatusChangedAt = &sc
	moving := issue(2, fx.now.Add(-50*time.Minute), "OPEN")
	fx.src.put(f)
	fx.src.put(moving)
	fx.run(Created)
	fx.run(Updates)

	// Wiz corrects f's createdAt and f changes status; moving's createdAt moves later, inside the
	// created feed's next window.
	fx.now = fx.now.Add(time.Minute)
	f.CreatedAt = fx.now.Add(-3 * time.Hour)
	sc2 := fx.now.Add(-10 * time.Second)
	f.StatusChangedAt, f.Status = &sc2, "IN_PROGRESS"
	fx.src.put(f)
	moving.CreatedAt = fx.now.Add(-20 * time.Second)
	sc3 := fx.now.Add(-5 * time.Second)
	moving.StatusChangedAt = &sc3
	fx.src.put(moving)
	fx.run(Created)
	fx.run(Updates)
	fx.run(Created)

	evs := fx.events()
	uniqueEventIDs(t, evs)
	k := kinds(evs)
	if got := strings.Join(k[f.ID], ","); got != "created,updated" {
		t.Fatalf("issue with a corrected createdAt: events %s, want created,updated", got)
	}
	if got := strings.Join(k[moving.ID], ","); got != "created" {
		t.Fatalf("issue whose createdAt moved: events %s, want created", got)
	}
	var n int
	if err := fx.store.View(func(tx *store.Tx) error {
		var err error
		n, err = tx.IncidentCount("default")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d incidents, want 2 (one per issue id)", n)
	}
}

// A watermark that an older wizfetch let a future timestamp move is rewound, so the feed fetches
// again.
func TestPoisonedWatermarkIsRewound(t *testing.T) {
	fx := newFixture(t, 50)
	if err := fx.store.Update(func(tx *store.Tx) error {
		return tx.PutCheckpoint("default", Created, store.Checkpoint{
			Watermark: year2999, FirstStart: fx.now.Add(-7 * 24 * time.Hour), UpdatedAt: fx.now,
		})
	}); err != nil {
		t.Fatal(err)
	}
	a := issue(1, fx.now.Add(-time.Hour), "OPEN")
	fx.src.put(a)
	fx.run(Created)
	if k := kinds(fx.events()); len(k[a.ID]) != 1 {
		t.Fatalf("issue after a poisoned watermark: events %v, want one created", k[a.ID])
	}
	if got := fx.checkpointOf(Created).Watermark; !got.Equal(a.CreatedAt) {
		t.Fatalf("watermark %v, want %v", got, a.CreatedAt)
	}
}

// A node with a null status, severity or type is not an incident: it used to become one (status "",
// severity 0) that passed the status filter, and then the real data was deduplicated away.
func TestIncompleteNodeIsRecordedAndItsCompleteVersionProcessed(t *testing.T) {
	fx := newFixture(t, 50)
	var logs bytes.Buffer
	fx.logger = slog.New(slog.NewJSONHandler(&logs, nil))
	created := fx.now.Add(-30 * time.Minute)
	broken := issue(1, created, "")
	broken.Severity, broken.Type = "", ""
	good := issue(2, created.Add(time.Second), "OPEN")
	fx.src.put(broken)
	fx.src.put(good)
	fx.source = statusBlind{fx.src} // Wiz returns the null-status node whatever the filter
	rs := fx.run(Created)
	if n := sum(rs, func(r Result) int { return r.Rejected[RejectIncomplete] }); n != 1 {
		t.Fatalf("Rejected[incomplete] = %d, want 1", n)
	}
	if k := kinds(fx.events()); len(k[broken.ID]) != 0 || len(k[good.ID]) != 1 {
		t.Fatalf("events %v: want none for the incomplete node, one for the good one", k)
	}
	rejected, err := fx.store.RejectedIssues("default", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 1 || rejected[0].IssueID != broken.ID || rejected[0].Reason != RejectIncomplete ||
		rejected[0].Detail != "status is null; severity is null; type is null" || !json.Valid([]byte(rejected[0].Raw)) {
		t.Fatalf("rejected issues: %+v", rejected)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"issue rejected`) {
		t.Fatalf("no WARN line for the rejected node:\n%s", logs.String())
	}

	// The complete version comes back (the overlap re-reads it): processed as any new issue.
	fx.now = fx.now.Add(time.Minute)
	fixed := issue(1, created, "OPEN")
	fx.src.put(fixed)
	fx.run(Created)
	evs := fx.events()
	uniqueEventIDs(t, evs)
	if k := kinds(evs); strings.Join(k[fixed.ID], ",") != "created" {
		t.Fatalf("complete version: events %v, want created", k[fixed.ID])
	}
	for _, e := range evs {
		if e.IssueID == fixed.ID && e.IssueStatus != "OPEN" {
			t.Fatalf("created event with status %q", e.IssueStatus)
		}
	}
	if rejected, _ := fx.store.RejectedIssues("default", 0); len(rejected) != 0 {
		t.Fatalf("the rejected record stays after the complete version: %+v", rejected)
	}
}

// On the updates feed too, a degraded node leaves no dedup mark behind: the same change, complete,
// is processed.
func TestIncompleteNodeLeavesNoMarkOnTheUpdatesFeed(t *testing.T) {
	fx := newFixture(t, 50)
	a := issue(1, fx.now.Add(-time.Hour), "OPEN")
	fx.src.put(a)
	fx.run(Created)
	fx.run(Updates)

	fx.now = fx.now.Add(time.Minute)
	sc := fx.now.Add(-10 * time.Second)
	degraded := a
	degraded.StatusChangedAt, degraded.Status, degraded.Severity = &sc, "RESOLVED", ""
	fx.src.put(degraded)
	rs := fx.run(Updates)
	if n := sum(rs, func(r Result) int { return r.Rejected[RejectIncomplete] }); n != 1 {
		t.Fatalf("Rejected[incomplete] = %d, want 1", n)
	}
	complete := degraded
	complete.Severity = "HIGH"
	fx.src.put(complete)
	fx.run(Updates)
	evs := fx.events()
	uniqueEventIDs(t, evs)
	if got := strings.Join(kinds(evs)[a.ID], ","); got != "created,updated" {
		t.Fatalf("events %s, want created,updated", got)
	}
	// The updated event carries the complete data, not the degraded node's.
	var raw wiz.Issue
	if err := json.Unmarshal([]byte(evs[len(evs)-1].Incident.RawJSON), &raw); err != nil || raw.Severity != "HIGH" {
		t.Fatalf("updated event's issue: severity %q (%v), want HIGH", raw.Severity, err)
	}
}

// A created-feed node Wiz should have filtered out (its status is not in fetch.status) is not an
// incident.
func TestCreatedFeedChecksTheStatusFilter(t *testing.T) {
	fx := newFixture(t, 50)
	odd := issue(1, fx.now.Add(-time.Hour), "RESOLVED")
	fx.src.put(odd)
	fx.source = statusBlind{fx.src}
	rs := fx.run(Created)
	if n := sum(rs, func(r Result) int { return r.Ignored[ReasonNotMatching] }); n != 1 || len(fx.events()) != 0 {
		t.Fatalf("not_matching %d, %d events; want 1 and none", n, len(fx.events()))
	}
}

// statusBlind serves issues of every status whatever the status filter asks for (as a degraded Wiz
// answer may).
type statusBlind struct{ *fakeSource }

func (s statusBlind) Issues(ctx context.Context, f wiz.IssueFilter, order *wiz.IssueOrder, first int, after string) (*wiz.Page, error) {
	f.Status = nil
	return s.fakeSource.Issues(ctx, f, order, first, after)
}

// One huge node cost gigabytes and wrote event lines of hundreds of MB: its incident is clipped to
// the documented bounds, with a marker.
func TestHugeIssueIsClipped(t *testing.T) {
	fx := newFixture(t, 50)
	huge := issue(1, fx.now.Add(-time.Hour), "OPEN")
	huge.SourceRule.Description = strings.Repeat("é\"<x", 1<<20) // 5 MiB, escaped larger
	huge.SourceRule.Name = strings.Repeat("n", 200<<10)
	huge.Notes = []wiz.Note{{Text: strings.Repeat("note ", 600<<10)}}
	fx.src.put(huge)
	next := issue(2, fx.now.Add(-50*time.Minute), "OPEN")
	fx.src.put(next)
	rs := fx.run(Created)
	if n := sum(rs, func(r Result) int { return r.Clipped }); n != 1 {
		t.Fatalf("Clipped = %d, want 1", n)
	}
	items, err := fx.store.Outbox("file", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("%d events, want 2", len(items))
	}
	line := items[0].Data
	if len(line) > incident.MaxEventBytes {
		t.Fatalf("event line of %d bytes, above %d", len(line), incident.MaxEventBytes)
	}
	var ev struct {
		Incident struct {
			Name, Details, RawJSON string
			CustomFields           map[string]any
		}
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatal(err)
	}
	marker := "[clipped by wizfetch: "
	for what, s := range map[string]string{
		"name": ev.Incident.Name, "details": ev.Incident.Details, "wizissuenote": ev.Incident.CustomFields["wizissuenote"].(string),
	} {
		if len(s) > incident.MaxFieldBytes+512 || !strings.Contains(s, marker) || !strings.Contains(s, "wizfetch issue get "+huge.ID) {
			t.Fatalf("%s: %d bytes, clipped %v", what, len(s), strings.Contains(s, marker))
		}
	}
	if !strings.HasSuffix(ev.Incident.Name, " - "+huge.ID) {
		t.Fatalf("name does not end with the issue id: …%s", ev.Incident.Name[len(ev.Incident.Name)-80:])
	}
	if len(ev.Incident.RawJSON) > incident.MaxRawJSONBytes || !json.Valid([]byte(ev.Incident.RawJSON)) ||
		!strings.Contains(ev.Incident.RawJSON, marker) {
		t.Fatalf("rawJSON: %d bytes, valid %v", len(ev.Incident.RawJSON), json.Valid([]byte(ev.Incident.RawJSON)))
	}
}

// An issue whose incident stays too large once clipped is rejected, and the window moves on.
func TestTooLargeIncidentIsRejectedAndTheWindowMovesOn(t *testing.T) {
	fx := newFixture(t, 50)
	big := issue(1, fx.now.Add(-time.Hour), "OPEN")
	for i := 0; i < 30000; i++ {
		big.Projects = append(big.Projects, wiz.Project{ID: "p", Name: strings.Repeat("p", 100)})
	}
	fx.src.put(big)
	next := issue(2, fx.now.Add(-50*time.Minute), "OPEN")
	fx.src.put(next)
	rs := fx.run(Created)
	if n := sum(rs, func(r Result) int { return r.Rejected[RejectTooLarge] }); n != 1 {
		t.Fatalf("Rejected[too_large] = %d, want 1", n)
	}
	if k := kinds(fx.events()); len(k[big.ID]) != 0 || len(k[next.ID]) != 1 {
		t.Fatalf("events %v", k)
	}
	if got := fx.checkpointOf(Created).Watermark; !got.Equal(next.CreatedAt) {
		t.Fatalf("watermark %v, want %v", got, next.CreatedAt)
	}
	rejected, err := fx.store.RejectedIssues("default", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 1 || rejected[0].Reason != RejectTooLarge || !rejected[0].RawClipped ||
		len(rejected[0].Raw) != store.MaxRejectedRawBytes {
		t.Fatalf("rejected: %d records", len(rejected))
	}
}

// A panic while mapping (a bug met by odd data) becomes a rejection, not a crash.
func TestMappingPanicIsARejection(t *testing.T) {
	is := issue(1, time.Now(), "OPEN")
	out, _, rej := encodeIncident(nil, nil, &is, nil)
	if rej == nil || rej.reason != RejectMapping || out != nil {
		t.Fatalf("rejection %+v, incident %q", rej, out)
	}
}

// nullNodes serves one page with null nodes beside a good one.
type nullNodes struct{ is wiz.Issue }

func (s nullNodes) Issues(context.Context, wiz.IssueFilter, *wiz.IssueOrder, int, string) (*wiz.Page, error) {
	raw, _ := json.Marshal(s.is)
	return &wiz.Page{Issues: []wiz.Issue{s.is}, Raw: []json.RawMessage{raw}, NullNodes: 2}, nil
}

func TestNullNodesAreCountedAndLogged(t *testing.T) {
	fx := newFixture(t, 50)
	var logs bytes.Buffer
	fx.logger = slog.New(slog.NewJSONHandler(&logs, nil))
	fx.source = nullNodes{is: issue(1, fx.now.Add(-time.Hour), "OPEN")}
	rs := fx.run(Created)
	if n := sum(rs, func(r Result) int { return r.NullNodes }); n != 2 || rs[0].Created != 1 {
		t.Fatalf("NullNodes = %d, created %d; want 2 and 1", n, rs[0].Created)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"Wiz returned null nodes`) {
		t.Fatalf("no WARN line:\n%s", logs.String())
	}
}

// issueByID serves one issue by id from the fake source (a push's refetch).
type issueByID struct{ *fakeSource }

func (s issueByID) Issue(_ context.Context, id string) (*wiz.Issue, json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[id]
	if !ok {
		return nil, nil, wiz.ErrNotFound
	}
	raw, _ := json.Marshal(is)
	return &is, raw, nil
}

// A push goes through the same guards: an incomplete issue is recorded, not an incident, and a known
// issue with another createdAt is not created again.
func TestPushedIssueGuards(t *testing.T) {
	fx := newFixture(t, 50)
	fx.feed(Created) // classifier and mapper as the feeds have them
	f := fx.feeds[Created]
	r := NewRefetcher(RefetcherOptions{
		Instance: "default", Fetch: fx.fetch, Sinks: []string{"file"}, Source: issueByID{fx.src}, Store: fx.store,
		Classifier: f.opt.Classifier, Mapper: f.opt.Mapper, Now: func() time.Time { return fx.now },
	})
	broken := issue(1, fx.now.Add(-time.Hour), "OPEN")
	broken.Type = ""
	fx.src.put(broken)
	if out, err := r.Process(context.Background(), broken.ID); err != nil || out != PushRejected {
		t.Fatalf("incomplete push: %q %v", out, err)
	}
	if list, _ := fx.store.RejectedIssues("default", 0); len(list) != 1 || list[0].Feed != "push" {
		t.Fatalf("rejected: %+v", list)
	}

	moved := issue(2, year2999, "OPEN")
	fx.src.put(moved)
	if out, err := r.Process(context.Background(), moved.ID); err != nil || out != PushCreated {
		t.Fatalf("first push: %q %v", out, err)
	}
	moved.CreatedAt = fx.now.Add(-time.Hour)
	fx.src.put(moved)
	fx.run(Created)
	if out, err := r.Process(context.Background(), moved.ID); err != nil || out != PushUnchanged {
		t.Fatalf("push after the createdAt changed: %q %v", out, err)
	}
	broken.Type = "CLOUD_CONFIGURATION"
	fx.src.put(broken)
	if out, err := r.Process(context.Background(), broken.ID); err != nil || out != PushCreated {
		t.Fatalf("complete push: %q %v", out, err)
	}
	if list, _ := fx.store.RejectedIssues("default", 0); len(list) != 0 {
		t.Fatalf("rejected after the complete version: %+v", list)
	}
	evs := fx.events()
	uniqueEventIDs(t, evs)
	if k := kinds(evs); len(k[moved.ID]) != 1 || len(k[broken.ID]) != 1 {
		t.Fatalf("events %v", k)
	}
}
