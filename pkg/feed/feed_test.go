package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/classify"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// fakeSource is a small in-memory issuesV2: exclusive `after`, stable order (timestamp, id), index
// cursors bound to the window's after, optional one-shot cursor rejection. It exists to unit-test the
// window logic precisely; end-to-end tests run against the real simulator.
type fakeSource struct {
	mu           sync.Mutex
	issues       map[string]wiz.Issue
	rejectCursor int // reject the next N cursors
	failCursor   int // fail the next N requests that carry a cursor, as a Wiz INTERNAL would
	requests     []request
}

type request struct {
	after string
	first int
	flt   wiz.IssueFilter
}

func newFakeSource() *fakeSource { return &fakeSource{issues: map[string]wiz.Issue{}} }

func (s *fakeSource) put(is wiz.Issue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issues[is.ID] = is
}

func (s *fakeSource) Issues(_ context.Context, f wiz.IssueFilter, order *wiz.IssueOrder, first int, after string) (*wiz.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, request{after: after, first: first, flt: f})
	byStatus := order.Field == "STATUS_CHANGED_AT"
	key := func(is wiz.Issue) time.Time {
		if byStatus {
			return *is.StatusChangedAt
		}
		return is.CreatedAt
	}
	var list []wiz.Issue
	for _, is := range s.issues {
		switch {
		case byStatus && (is.StatusChangedAt == nil || !is.StatusChangedAt.After(*f.StatusChangedAfter)):
			continue
		case !byStatus && !is.CreatedAt.After(*f.CreatedAfter):
			continue
		case len(f.Status) > 0 && !slices.Contains(f.Status, is.Status):
			continue
		}
		list = append(list, is)
	}
	slices.SortFunc(list, func(a, b wiz.Issue) int {
		if c := key(a).Compare(key(b)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	start := 0
	if after != "" {
		if s.rejectCursor > 0 {
			s.rejectCursor--
			return nil, fmt.Errorf("invalid cursor: %w", wiz.ErrCursorRejected)
		}
		if s.failCursor > 0 {
			s.failCursor--
			return nil, &wiz.APIError{Class: wiz.ErrTransient, Code: "INTERNAL", Op: "IssuesTable", Message: "internal error"}
		}
		// cursor = "<timestamp>|<id>" of the last node served: a position, not an index.
		ts, id, _ := strings.Cut(after, "|")
		t, _ := time.Parse(time.RFC3339Nano, ts)
		start = len(list)
		for i, is := range list {
			if c := key(is).Compare(t); c > 0 || (c == 0 && is.ID > id) {
				start = i
				break
			}
		}
	}
	end := min(start+first, len(list))
	page := &wiz.Page{HasNextPage: end < len(list)}
	for _, is := range list[start:end] {
		raw, _ := json.Marshal(is)
		page.Issues = append(page.Issues, is)
		page.Raw = append(page.Raw, raw)
	}
	if end > start {
		last := list[end-1]
		page.EndCursor = key(last).Format(time.RFC3339Nano) + "|" + last.ID
	}
	return page, nil
}

type fixture struct {
	t     *testing.T
	src   *fakeSource
	store *store.Store
	now   time.Time
	fetch config.Fetch
	feeds map[string]*Feed
	// source, when set, replaces src as the feeds' source (e.g. a wiz.Client on the simulator).
	source IssueSource
	// prefetch sets Options.Prefetch on the feeds the fixture builds.
	prefetch bool
	// pageSlots sets Options.PageSlots on the feeds the fixture builds.
	pageSlots *wiz.PageSlots
	// logger, when set, is the feeds' logger.
	logger *slog.Logger
}

func newFixture(t *testing.T, max int) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{
		t: t, src: newFakeSource(), store: st,
		now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC),
		fetch: config.Fetch{
			Enabled: true, MaxPerFetch: max, Lookback: config.Duration(7 * 24 * time.Hour),
			Overlap: config.Duration(5 * time.Minute), Status: []string{"OPEN", "IN_PROGRESS"},
			Updates: true,
		},
		feeds: map[string]*Feed{},
	}
}

func (fx *fixture) feed(name string) *Feed {
	if f, ok := fx.feeds[name]; ok {
		return f
	}
	cls, err := classify.New(config.Classify{DefaultType: "Wiz Issue"})
	if err != nil {
		fx.t.Fatal(err)
	}
	mapper, err := incident.NewMapper(config.Mapping{}, "https://api.us1.app.wiz.io/graphql")
	if err != nil {
		fx.t.Fatal(err)
	}
	var src IssueSource = fx.src
	if fx.source != nil {
		src = fx.source
	}
	f, err := New(Options{
		Instance: "default", Name: name, Fetch: fx.fetch, Sinks: []string{"file"},
		Source: src, Store: fx.store, Classifier: cls, Mapper: mapper,
		Now:       func() time.Time { return fx.now },
		Prefetch:  fx.prefetch,
		PageSlots: fx.pageSlots,
		Logger:    fx.logger,
	})
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(f.Close)
	fx.feeds[name] = f
	return f
}

// run fetches until the feed has no backlog, checking the per-fetch cap.
func (fx *fixture) run(name string) []Result {
	fx.t.Helper()
	var out []Result
	for i := 0; i < 1000; i++ {
		res, err := fx.feed(name).Fetch(context.Background())
		if err != nil {
			fx.t.Fatalf("fetch %d of %s: %v", i, name, err)
		}
		if res.Emitted() > fx.fetch.MaxPerFetch {
			fx.t.Fatalf("fetch %d emitted %d events, above max_per_fetch %d", i, res.Emitted(), fx.fetch.MaxPerFetch)
		}
		out = append(out, res)
		if !res.Backlog {
			return out
		}
	}
	fx.t.Fatal("feed never caught up")
	return nil
}

type event struct {
	EventID     string `json:"event_id"`
	Kind        string `json:"kind"`
	IssueID     string `json:"issue_id"`
	IssueStatus string `json:"issue_status"`
	Incident    struct {
		DbotMirrorID string `json:"dbotMirrorId"`
		RawJSON      string `json:"rawJSON"`
	} `json:"incident"`
}

func (fx *fixture) events() []event {
	fx.t.Helper()
	items, err := fx.store.Outbox("file", 0, 1<<20)
	if err != nil {
		fx.t.Fatal(err)
	}
	out := make([]event, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it.Data, &out[i]); err != nil {
			fx.t.Fatalf("event %d is not JSON: %v\n%s", i, err, it.Data)
		}
	}
	return out
}

func ts(base time.Time, micros int) time.Time {
	return base.Add(time.Duration(micros) * time.Microsecond)
}

func issue(n int, created time.Time, status string) wiz.Issue {
	sc := created
	return wiz.Issue{
		ID:              fmt.Sprintf("00000000-0000-4000-8000-%012d", n),
		Type:            "CLOUD_CONFIGURATION",
		Severity:        "HIGH",
		Status:          status,
		CreatedAt:       created,
		StatusChangedAt: &sc,
		SourceRule:      &wiz.SourceRule{Typename: "Control", ID: "wc-id-" + strconv.Itoa(n), Name: "Rule " + strconv.Itoa(n)},
	}
}

func kinds(evs []event) map[string][]string {
	m := map[string][]string{}
	for _, e := range evs {
		m[e.IssueID] = append(m[e.IssueID], e.Kind)
	}
	return m
}

func TestBackfillTiesAcrossPagesExactlyOnce(t *testing.T) {
	fx := newFixture(t, 50)
	base := fx.now.Add(-3 * 24 * time.Hour)
	// 400 issues; runs of 70 sharing one createdAt (longer than a page of 50), some before the lookback.
	for n := 0; n < 400; n++ {
		fx.src.put(issue(n, ts(base, (n/70)*1000), "OPEN"))
	}
	for n := 400; n < 410; n++ {
		fx.src.put(issue(n, fx.now.Add(-8*24*time.Hour), "OPEN")) // outside lookback
	}
	results := fx.run(Created)
	if len(results) < 8 {
		t.Fatalf("expected at least 8 capped fetches for 400 events at 50 each, got %d", len(results))
	}
	evs := fx.events()
	if len(evs) != 400 {
		t.Fatalf("got %d events, want 400", len(evs))
	}
	seen := kinds(evs)
	for n := 0; n < 400; n++ {
		id := issue(n, base, "").ID
		if got := seen[id]; len(got) != 1 || got[0] != incident.KindCreated {
			t.Fatalf("issue %d: events %v, want exactly one created", n, got)
		}
	}
	for _, r := range fx.src.requests {
		if r.first != 50 {
			t.Fatalf("requested first=%d, want max_per_fetch 50", r.first)
		}
	}
	// A second run emits nothing new.
	fx.run(Created)
	if n := len(fx.events()); n != 400 {
		t.Fatalf("second run added events: %d", n)
	}
}

func TestCapStopsMidPageAndResumes(t *testing.T) {
	fx := newFixture(t, 20)
	base := fx.now.Add(-time.Hour)
	for n := 0; n < 60; n++ {
		fx.src.put(issue(n, ts(base, n), "OPEN"))
	}
	// Issues 0..9 already have incidents (e.g. created by the updates feed), so page one emits only
	// 10 and page two must stop in its middle.
	err := fx.store.Update(func(tx *store.Tx) error {
		for n := 0; n < 10; n++ {
			if err := tx.PutIncident(&store.IncidentRecord{Instance: "default", IssueID: issue(n, base, "").ID, CreatedAt: ts(base, n), Status: "OPEN"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := fx.feed(Created).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 20 || !res.Backlog || res.Pages != 2 {
		t.Fatalf("first fetch: created %d pages %d backlog %v; want 20 created over 2 pages with backlog", res.Created, res.Pages, res.Backlog)
	}
	fx.run(Created)
	evs := fx.events()
	if len(evs) != 50 {
		t.Fatalf("got %d events, want 50 (60 issues minus 10 known)", len(evs))
	}
	for id, k := range kinds(evs) {
		if len(k) != 1 {
			t.Fatalf("issue %s got %v", id, k)
		}
	}
}

func TestLateVisibilityWithinOverlapIsCaught(t *testing.T) {
	fx := newFixture(t, 200)
	base := fx.now.Add(-10 * time.Minute)
	for n := 0; n < 5; n++ {
		fx.src.put(issue(n, ts(base, n*1_000_000), "OPEN"))
	}
	fx.run(Created)
	// Appears late with a timestamp 2 minutes before the watermark: inside the 5 minute overlap.
	fx.src.put(issue(100, ts(base, 4_000_000).Add(-2*time.Minute), "OPEN"))
	fx.now = fx.now.Add(time.Minute)
	fx.run(Created)
	evs := fx.events()
	if len(evs) != 6 {
		t.Fatalf("got %d events, want 6", len(evs))
	}
	if evs[5].IssueID != issue(100, base, "").ID {
		t.Fatalf("late issue not emitted last: %+v", evs[5])
	}
	// The re-read of the overlap produced duplicates that the marks dropped.
	last := fx.src.requests[len(fx.src.requests)-1]
	if want := ts(base, 4_000_000).Add(-5 * time.Minute); !last.flt.CreatedAfter.Equal(want) {
		t.Fatalf("window after = %v, want watermark - overlap = %v", last.flt.CreatedAfter, want)
	}
}

func TestRejectedCursorRestartsWindowWithoutLossOrDuplicates(t *testing.T) {
	fx := newFixture(t, 10)
	base := fx.now.Add(-time.Hour)
	for n := 0; n < 35; n++ {
		fx.src.put(issue(n, ts(base, n/4), "OPEN")) // ties of 4
	}
	// Page through one fetch so a cursor is stored, then invalidate cursors.
	if _, err := fx.feed(Created).Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	fx.src.rejectCursor = 1
	results := fx.run(Created)
	restarts := 0
	for _, r := range results {
		restarts += r.Restarts
	}
	if restarts != 1 {
		t.Fatalf("restarts = %d, want 1", restarts)
	}
	// The window restarted just below the watermark (the first fetch ended inside the tie run at
	// base+2µs), re-reading only the ties, not the whole overlap.
	wantAfter := ts(base, 2).Add(-time.Microsecond)
	restarted := false
	for _, r := range fx.src.requests {
		if r.after == "" && r.flt.CreatedAfter.Equal(wantAfter) {
			restarted = true
		}
	}
	if !restarted {
		t.Fatalf("no request restarted the window at watermark - 1µs (%v)", wantAfter)
	}
	evs := fx.events()
	if len(evs) != 35 {
		t.Fatalf("got %d events, want 35", len(evs))
	}
	for id, k := range kinds(evs) {
		if len(k) != 1 {
			t.Fatalf("issue %s got %v", id, k)
		}
	}
}

// How Wiz answers an expired or invalid cursor is not documented (WIZ_API.md §10): a cursor whose
// page fails any other way than a BAD_USER_INPUT kept the feed on it for good. After
// maxCursorFailures failed fetches in a row on one cursor the window restarts without it, and
// nothing is lost or repeated; failures the cursor cannot cause are not counted.
func TestCursorThatKeepsFailingIsDropped(t *testing.T) {
	fx := newFixture(t, 10)
	base := fx.now.Add(-time.Hour)
	for n := 0; n < 35; n++ {
		fx.src.put(issue(n, ts(base, n/4), "OPEN"))
	}
	f := fx.feed(Created)
	if _, err := f.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cp := fx.checkpointOf(Created); cp.Cursor == "" {
		t.Fatal("setup: the first fetch left no cursor")
	}
	fx.src.failCursor = maxCursorFailures // the stored cursor's page fails this many times in a row
	for i := 1; i < maxCursorFailures; i++ {
		if _, err := f.Fetch(context.Background()); !wiz.IsRetryable(err) {
			t.Fatalf("fetch %d on the failing cursor: %v, want its transient error", i, err)
		}
	}
	// The maxCursorFailures-th failure restarts the window without the cursor, in that fetch.
	results := fx.run(Created)
	if results[0].Restarts != 1 {
		t.Fatalf("restarts %d in the fetch after %d failures, want 1", results[0].Restarts, maxCursorFailures-1)
	}
	evs := fx.events()
	uniqueEventIDs(t, evs)
	if len(evs) != 35 {
		t.Fatalf("got %d events, want 35", len(evs))
	}

	// An authentication failure is not the cursor's: it is not counted.
	if f.cursorKeepsFailing("c", &wiz.APIError{Class: wiz.ErrAuth}) || f.cursorFailures != 0 {
		t.Fatalf("an auth failure counted against the cursor (%d)", f.cursorFailures)
	}
}

func TestUpdatesFeedEmitsOnStatusChangeOnly(t *testing.T) {
	fx := newFixture(t, 200)
	base := fx.now.Add(-time.Hour)
	for n := 0; n < 3; n++ {
		fx.src.put(issue(n, ts(base, n), "OPEN"))
	}
	fx.run(Created)
	fx.run(Updates) // pins now - overlap: the old statusChangedAt values are before it
	if n := len(fx.events()); n != 3 {
		t.Fatalf("after first runs: %d events, want 3 created", n)
	}

	fx.now = fx.now.Add(time.Minute)
	changed := issue(0, ts(base, 0), "RESOLVED")
	sc := fx.now.Add(-10 * time.Second)
	changed.StatusChangedAt = &sc
	fx.src.put(changed)
	same := issue(1, ts(base, 1), "OPEN") // new statusChangedAt, same status as its last event
	sc2 := fx.now.Add(-9 * time.Second)
	same.StatusChangedAt = &sc2
	fx.src.put(same)
	// A RESOLVED issue the created feed never saw, now reopened: `created` from the updates feed.
	reopened := issue(7, base.Add(-time.Hour), "OPEN")
	sc3 := fx.now.Add(-8 * time.Second)
	reopened.StatusChangedAt = &sc3
	fx.src.put(reopened)
	// A resolved issue nobody knows: ignored.
	gone := issue(8, base, "RESOLVED")
	sc4 := fx.now.Add(-7 * time.Second)
	gone.StatusChangedAt = &sc4
	fx.src.put(gone)

	results := fx.run(Updates)
	r := results[len(results)-1]
	if r.Updated != 1 || r.Created != 1 || r.Ignored[ReasonStatusUnchanged] != 1 || r.Ignored[ReasonNotMatching] != 1 {
		t.Fatalf("updates fetch: %+v", r)
	}
	evs := fx.events()
	k := kinds(evs)
	if got := k[changed.ID]; !slices.Equal(got, []string{"created", "updated"}) {
		t.Fatalf("changed issue: %v", got)
	}
	if got := k[reopened.ID]; !slices.Equal(got, []string{"created"}) {
		t.Fatalf("reopened issue: %v", got)
	}
	for _, e := range evs {
		if e.IssueID == changed.ID && e.Kind == "updated" && e.IssueStatus != "RESOLVED" {
			t.Fatalf("updated event carries status %s", e.IssueStatus)
		}
	}
	// The created feed later meets the reopened issue: nothing new.
	fx.run(Created)
	fx.run(Updates)
	if n := len(fx.events()); n != len(evs) {
		t.Fatalf("re-runs added %d events", n-len(evs))
	}
}

func TestMarksStayBoundedOverManyWindows(t *testing.T) {
	fx := newFixture(t, 200)
	start := fx.now.Add(-time.Hour)
	for w := 0; w < 30; w++ {
		for n := 0; n < 20; n++ {
			fx.src.put(issue(w*100+n, start.Add(time.Duration(w)*10*time.Minute+time.Duration(n)*time.Second), "OPEN"))
		}
		fx.now = start.Add(time.Duration(w)*10*time.Minute + time.Minute)
		fx.run(Created)
		fx.run(Updates)
	}
	var marks int
	if err := fx.store.View(func(tx *store.Tx) error {
		var err error
		marks, err = tx.MarkCount("default", Updates)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(fx.events()) != 600 {
		t.Fatalf("events = %d, want 600", len(fx.events()))
	}
	// Only marks within 2×overlap (10 min) of the watermark survive: at most ~2 windows' worth.
	if marks > 40 {
		t.Fatalf("%d marks kept after 30 windows; pruning is not working", marks)
	}
}

func TestFirstRunPinsLookbackAndPersistsIt(t *testing.T) {
	fx := newFixture(t, 200)
	fx.fetch.Lookback = config.Duration(24 * time.Hour)
	fx.src.put(issue(1, fx.now.Add(-25*time.Hour), "OPEN"))
	fx.src.put(issue(2, fx.now.Add(-23*time.Hour), "OPEN"))
	fx.run(Created)
	evs := fx.events()
	if len(evs) != 1 || evs[0].IssueID != issue(2, fx.now, "").ID {
		t.Fatalf("events %+v, want only the issue inside the lookback", evs)
	}
	var cp store.Checkpoint
	fx.store.View(func(tx *store.Tx) error {
		cp, _, _ = tx.Checkpoint("default", Created)
		return nil
	})
	if want := fx.now.Add(-24 * time.Hour); !cp.FirstStart.Equal(want) {
		t.Fatalf("first start %v, want %v", cp.FirstStart, want)
	}
	// Much later, the pinned start does not move with the clock.
	fx.now = fx.now.Add(48 * time.Hour)
	fx.run(Created)
	fx.store.View(func(tx *store.Tx) error {
		cp, _, _ = tx.Checkpoint("default", Created)
		return nil
	})
	if want := fx.now.Add(-72 * time.Hour); !cp.FirstStart.Equal(want) {
		t.Fatalf("first start moved to %v", cp.FirstStart)
	}
}

// TestPinFirstStartsPinsEveryFeedAtOnce: the engine pins every feed's first-run start before the
// first fetches, in one commit; a feed's first fetch then keeps that start whatever the clock says,
// and pinning again changes nothing.
func TestPinFirstStartsPinsEveryFeedAtOnce(t *testing.T) {
	fx := newFixture(t, 200)
	fx.fetch.Lookback = config.Duration(24 * time.Hour)
	created, updates := fx.feed(Created), fx.feed(Updates)
	pinnedAt := fx.now
	if err := PinFirstStarts(fx.store, []*Feed{created, updates}); err != nil {
		t.Fatal(err)
	}
	checkpoints := func() (c, u store.Checkpoint) {
		t.Helper()
		if err := fx.store.View(func(tx *store.Tx) error {
			c, _, _ = tx.Checkpoint("default", Created)
			u, _, _ = tx.Checkpoint("default", Updates)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return c, u
	}
	c, u := checkpoints()
	if want := pinnedAt.Add(-24 * time.Hour); !c.FirstStart.Equal(want) {
		t.Fatalf("created feed's first start %v, want now - lookback = %v", c.FirstStart, want)
	}
	if want := pinnedAt.Add(-5 * time.Minute); !u.FirstStart.Equal(want) {
		t.Fatalf("updates feed's first start %v, want now - overlap = %v", u.FirstStart, want)
	}

	// An hour later the first fetch runs: the issue created between the pinned start and an hour
	// after it is inside the window, as it was when the daemon started.
	fx.now = fx.now.Add(time.Hour)
	fx.src.put(issue(1, pinnedAt.Add(-24*time.Hour+30*time.Minute), "OPEN"))
	written := fx.store.PageWrites()
	if err := PinFirstStarts(fx.store, []*Feed{created, updates}); err != nil {
		t.Fatal(err)
	}
	if fx.store.PageWrites() != written {
		t.Fatal("pinning feeds that are pinned already committed a transaction (every engine start and reload would)")
	}
	fx.run(Created)
	if evs := fx.events(); len(evs) != 1 {
		t.Fatalf("events %+v, want the issue inside the window pinned at start", evs)
	}
	c2, u2 := checkpoints()
	if !c2.FirstStart.Equal(c.FirstStart) || !u2.FirstStart.Equal(u.FirstStart) {
		t.Fatalf("first starts moved: %v, %v; want %v, %v", c2.FirstStart, u2.FirstStart, c.FirstStart, u.FirstStart)
	}
}

func TestMissingEndCursorIsAnError(t *testing.T) {
	fx := newFixture(t, 200)
	f, err := New(Options{
		Instance: "default", Name: Created, Fetch: fx.fetch, Sinks: []string{"file"},
		Source: brokenSource{}, Store: fx.store, Classifier: mustClassifier(t), Mapper: mustMapper(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "endCursor") {
		t.Fatalf("err = %v, want the missing endCursor named", err)
	}
}

type brokenSource struct{}

func (brokenSource) Issues(context.Context, wiz.IssueFilter, *wiz.IssueOrder, int, string) (*wiz.Page, error) {
	return &wiz.Page{HasNextPage: true}, nil
}

func mustClassifier(t testing.TB) *classify.Classifier {
	c, err := classify.New(config.Classify{DefaultType: "Wiz Issue"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustMapper(t testing.TB) *incident.Mapper {
	m, err := incident.NewMapper(config.Mapping{}, "https://api.us1.app.wiz.io/graphql")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUpdatesFeedNeverStepsAnIncidentBack(t *testing.T) {
	fx := newFixture(t, 200)
	base := fx.now.Add(-time.Hour)
	old := issue(1, base, "OPEN")
	sc := fx.now.Add(-2 * time.Minute)
	old.StatusChangedAt = &sc
	// The incident already reflects a newer change (e.g. from a push processed while the page was in
	// flight): RESOLVED at now - 1 min.
	newer := fx.now.Add(-time.Minute)
	if err := fx.store.Update(func(tx *store.Tx) error {
		return tx.PutIncident(&store.IncidentRecord{Instance: "default", IssueID: old.ID, CreatedAt: old.CreatedAt, Status: "RESOLVED", StatusChangedAt: &newer, Version: 2})
	}); err != nil {
		t.Fatal(err)
	}
	fx.src.put(old)
	res := fx.run(Updates)
	if r := res[len(res)-1]; r.Updated != 0 || r.Ignored[ReasonStale] != 1 {
		t.Fatalf("a stale page stepped the incident back: %+v", r)
	}
}

// Every committed event's line is the line incident.Event.Line builds from the event's fields and
// the incident as the store keeps it (which `incidents replay` re-sends), with the incident's last
// event id.
func TestEventLinesHoldTheStoredIncident(t *testing.T) {
	fx := newFixture(t, 50)
	for n := 0; n < 120; n++ {
		is := issue(n, fx.now.Add(-time.Duration(n+1)*time.Minute), []string{"OPEN", "IN_PROGRESS", "RESOLVED"}[n%3])
		fx.src.put(is)
	}
	fx.run(Created)
	items, err := fx.store.Outbox("file", 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 80 { // the fixture's feed takes OPEN and IN_PROGRESS issues
		t.Fatalf("%d events, want 80", len(items))
	}
	for _, it := range items {
		var ev incident.Event
		if err := json.Unmarshal(it.Data, &ev); err != nil {
			t.Fatal(err)
		}
		var rec *store.IncidentRecord
		err := fx.store.View(func(tx *store.Tx) error {
			var err error
			rec, _, err = tx.Incident("default", ev.IssueID)
			return err
		})
		if err != nil || rec == nil {
			t.Fatalf("incident of %s: %v", ev.IssueID, err)
		}
		if ev.EventID != incident.EventID("default", ev.IssueID, incident.KindCreated, nil) || rec.LastEventID != ev.EventID {
			t.Fatalf("event id %s, the incident's last %s", ev.EventID, rec.LastEventID)
		}
		ev.Incident = rec.Incident
		want, err := ev.Line()
		if err != nil {
			t.Fatal(err)
		}
		if string(it.Data) != string(want) {
			t.Fatalf("line\n%s\nwant\n%s", it.Data, want)
		}
		if _, err := time.Parse(time.RFC3339, ev.EmittedAt); err != nil {
			t.Fatalf("emitted_at %q: %v", ev.EmittedAt, err)
		}
	}
}
