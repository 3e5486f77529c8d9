package wizsim

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

func TestWalkAllPagesSameSet(t *testing.T) {
	h := newHarness(t, Options{Issues: 1500, Seed: 7})
	h.revealAll()
	want := sortedIDs(h.sim.Snapshot())
	for _, size := range []int{200, 500} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			for _, order := range []map[string]any{nil, {"field": "CREATED_AT", "direction": "ASC"}} {
				got := ids(h.walk(size, nil, order))
				if len(got) != len(want) {
					t.Fatalf("order %v: walked %d ids, want %d", order, len(got), len(want))
				}
				sort.Strings(got)
				if !slices.Equal(got, want) {
					t.Fatalf("order %v: walked ids differ from the data set", order)
				}
			}
		})
	}
}

func TestTieRunsAcrossPages(t *testing.T) {
	h := newHarness(t, Options{Issues: 1200, Seed: 3})
	h.revealAll()
	runs := map[time.Time]int{}
	for _, st := range h.sim.Snapshot() {
		runs[st.CreatedAt]++
	}
	var big time.Time
	for ts, n := range runs {
		if n > 500 {
			big = ts
		}
	}
	if big.IsZero() {
		t.Fatal("no createdAt tie run longer than 500")
	}
	nodes := h.walk(200, nil, map[string]any{"field": "CREATED_AT", "direction": "ASC"})
	seen := map[string]int{}
	inRun := 0
	for _, n := range nodes {
		seen[n.ID]++
		if mustTime(t, n.CreatedAt).Equal(big) {
			inRun++
		}
	}
	if inRun != runs[big] {
		t.Errorf("walk returned %d issues of the tie run, want %d", inRun, runs[big])
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("issue %s returned %d times", id, n)
		}
	}
}

func TestExclusiveAfter(t *testing.T) {
	h := newHarness(t, Options{Issues: 1000, Seed: 4})
	h.revealAll()
	snap := h.sim.Snapshot()
	pivot := snap[len(snap)/2].CreatedAt
	filter := map[string]any{"createdAt": map[string]any{"after": pivot.Format(tsLayout)}}
	got := h.walk(500, filter, map[string]any{"field": "CREATED_AT", "direction": "ASC"})
	want := 0
	for _, st := range snap {
		if st.CreatedAt.After(pivot) {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("after %s: got %d issues, want %d", pivot, len(got), want)
	}
	for _, n := range got {
		if !mustTime(t, n.CreatedAt).After(pivot) {
			t.Fatalf("issue %s createdAt %s is not after %s", n.ID, n.CreatedAt, pivot)
		}
	}
	// before is exclusive too, and a bound with nanoseconds compares as a time, not as a string.
	before := pivot.Add(500 * time.Nanosecond).Format(time.RFC3339Nano)
	got = h.walk(500, map[string]any{"createdAt": map[string]any{"before": before}}, nil)
	want = 0
	for _, st := range snap {
		if !st.CreatedAt.After(pivot) {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("before %s: got %d issues, want %d", before, len(got), want)
	}
}

func stateKey(st IssueState, field string) int64 {
	switch field {
	case "SEVERITY":
		rank, _ := wizdef.SeverityRank(st.Severity)
		return int64(rank)
	case "STATUS_CHANGED_AT":
		if st.StatusChangedAt == nil {
			return 1<<63 - 1
		}
		return st.StatusChangedAt.UnixNano()
	}
	return st.CreatedAt.UnixNano()
}

func TestOrdering(t *testing.T) {
	h := newHarness(t, Options{Issues: 800, Seed: 5})
	h.revealAll()
	snap := h.sim.Snapshot()
	for _, field := range []string{"CREATED_AT", "STATUS_CHANGED_AT", "SEVERITY", ""} {
		for _, dir := range []string{"ASC", "DESC"} {
			t.Run(field+"_"+dir, func(t *testing.T) {
				var order map[string]any
				f, d := field, dir
				if field == "" {
					if dir == "ASC" {
						t.Skip("no orderBy has a single direction")
					}
					f = "SEVERITY" // the default
				} else {
					order = map[string]any{"field": field, "direction": dir}
				}
				want := slices.Clone(snap)
				sort.Slice(want, func(i, j int) bool {
					ki, kj := stateKey(want[i], f), stateKey(want[j], f)
					if ki != kj {
						return (ki < kj) == (d == "ASC")
					}
					return (want[i].ID < want[j].ID) == (d == "ASC")
				})
				got := ids(h.walk(200, nil, order))
				if !slices.Equal(got, sortedIDsInOrder(want)) {
					t.Fatalf("order %s %s differs from the expected order", f, d)
				}
			})
		}
	}
}

func sortedIDsInOrder(states []IssueState) []string {
	out := make([]string, len(states))
	for k, st := range states {
		out[k] = st.ID
	}
	return out
}

func TestStatusChangedAtFilter(t *testing.T) {
	h := newHarness(t, Options{Issues: 1000, Seed: 6})
	h.revealAll()
	snap := h.sim.Snapshot()
	pivot := snap[100].CreatedAt
	got := h.walk(200, map[string]any{"statusChangedAt": map[string]any{"after": pivot.Format(tsLayout)}}, nil)
	var want []IssueState
	nulls := 0
	for _, st := range snap {
		if st.StatusChangedAt == nil {
			nulls++
		} else if st.StatusChangedAt.After(pivot) {
			want = append(want, st)
		}
	}
	if nulls == 0 {
		t.Fatal("data has no null statusChangedAt")
	}
	if len(got) != len(want) {
		t.Fatalf("got %d issues, want %d", len(got), len(want))
	}
	var prev time.Time
	for _, n := range got {
		if n.StatusChangedAt == nil {
			t.Fatalf("issue %s with null statusChangedAt returned", n.ID)
		}
		ts := mustTime(t, *n.StatusChangedAt)
		if ts.Before(prev) {
			t.Fatalf("not in statusChangedAt ascending order at %s", n.ID)
		}
		prev = ts
	}
	ties := map[time.Time]int{}
	for _, st := range want {
		ties[*st.StatusChangedAt]++
	}
	maxTie := 0
	for _, n := range ties {
		maxTie = max(maxTie, n)
	}
	if maxTie < 2 {
		t.Error("no statusChangedAt ties in the data")
	}
}

func TestFilters(t *testing.T) {
	h := newHarness(t, Options{Issues: 600, Seed: 8})
	h.revealAll()
	snap := h.sim.Snapshot()
	proj := ""
	for _, st := range snap {
		if len(st.ProjectIDs) > 0 {
			proj = st.ProjectIDs[0]
			break
		}
	}
	tests := []struct {
		name   string
		filter map[string]any
		keep   func(IssueState) bool
	}{
		{"status", map[string]any{"status": []string{"OPEN", "IN_PROGRESS"}}, func(s IssueState) bool { return s.Status == "OPEN" || s.Status == "IN_PROGRESS" }},
		{"severity", map[string]any{"severity": []string{"CRITICAL"}}, func(s IssueState) bool { return s.Severity == "CRITICAL" }},
		{"type", map[string]any{"type": []string{"THREAT_DETECTION"}}, func(s IssueState) bool { return s.Type == "THREAT_DETECTION" }},
		{"project", map[string]any{"project": []string{proj}}, func(s IssueState) bool { return slices.Contains(s.ProjectIDs, proj) }},
		{"id single value", map[string]any{"id": snap[3].ID}, func(s IssueState) bool { return s.ID == snap[3].ID }},
		{"combined", map[string]any{"status": []string{"OPEN"}, "severity": []string{"HIGH", "CRITICAL"}},
			func(s IssueState) bool {
				return s.Status == "OPEN" && (s.Severity == "HIGH" || s.Severity == "CRITICAL")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []IssueState
			for _, st := range snap {
				if tt.keep(st) {
					want = append(want, st)
				}
			}
			if len(want) == 0 {
				t.Fatal("filter matches nothing: the test would prove nothing")
			}
			got := ids(h.walk(100, tt.filter, nil))
			sort.Strings(got)
			if !slices.Equal(got, sortedIDs(want)) {
				t.Fatalf("got %d ids, want %d", len(got), len(want))
			}
		})
	}
}

// isBadAfter reports whether an error is the simulator's refusal of an `after` value: BAD_USER_INPUT
// naming the argument, and never the word "cursor" (Wiz's wording is undocumented, WIZ_API.md §10,
// so clients must not be able to depend on it).
func isBadAfter(msg, code string) bool {
	return code == CodeBadUserInput && strings.HasPrefix(msg, badAfter) && !strings.Contains(strings.ToLower(msg), "cursor")
}

func TestCursorBinding(t *testing.T) {
	h := newHarness(t, Options{Issues: 300, Seed: 9})
	h.revealAll()
	order := map[string]any{"field": "CREATED_AT", "direction": "ASC"}
	p := h.page(map[string]any{"first": 10, "orderBy": order})
	cur := *p.PageInfo.EndCursor
	other, err := New(Options{Issues: 10, Seed: 99, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	foreign := other.encodeCursor(position{hash: 1, key: 1, id: "x"})
	tests := []struct {
		name string
		vars map[string]any
	}{
		{"garbage", map[string]any{"first": 10, "orderBy": order, "after": "not-a-cursor"}},
		{"tampered", map[string]any{"first": 10, "orderBy": order, "after": cur[:len(cur)-2] + "AA"}},
		{"other server", map[string]any{"first": 10, "orderBy": order, "after": foreign}},
		{"other order", map[string]any{"first": 10, "orderBy": map[string]any{"field": "CREATED_AT", "direction": "DESC"}, "after": cur}},
		{"other filter", map[string]any{"first": 10, "orderBy": order, "after": cur, "filterBy": map[string]any{"status": []string{"OPEN"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, r := h.do(StandardQuery, tt.vars)
			if status != http.StatusOK || len(r.Errors) != 1 || !isBadAfter(r.Errors[0].Message, r.Errors[0].Extensions.Code) || r.Data != nil {
				t.Fatalf("status %d, response %+v", status, r)
			}
		})
	}
	t.Run("same query with another page size", func(t *testing.T) {
		p2 := h.page(map[string]any{"first": 5, "orderBy": order, "after": cur})
		if len(p2.Nodes) != 5 || p2.Nodes[0].ID == p.Nodes[9].ID {
			t.Fatalf("continuation page wrong: %+v", p2.Nodes)
		}
	})
	t.Run("invalidated", func(t *testing.T) {
		h.sim.InvalidateCursors()
		status, r := h.do(StandardQuery, map[string]any{"first": 10, "orderBy": order, "after": cur})
		if status != http.StatusOK || len(r.Errors) != 1 || !isBadAfter(r.Errors[0].Message, r.Errors[0].Extensions.Code) {
			t.Fatalf("status %d, response %+v", status, r)
		}
	})
}

func TestCursorStableAcrossChanges(t *testing.T) {
	h := newHarness(t, Options{Issues: 300, Seed: 10})
	h.revealAll()
	order := map[string]any{"field": "CREATED_AT", "direction": "ASC"}
	p := h.page(map[string]any{"first": 10, "orderBy": order})
	// A new issue (created now, so last in the order) must not shift the next page.
	before := h.page(map[string]any{"first": 10, "orderBy": order, "after": *p.PageInfo.EndCursor})
	if _, err := h.sim.AddIssue(NewIssue{}); err != nil {
		t.Fatal(err)
	}
	after := h.page(map[string]any{"first": 10, "orderBy": order, "after": *p.PageInfo.EndCursor})
	if !slices.Equal(ids(before.Nodes), ids(after.Nodes)) {
		t.Fatal("page after a cursor changed when an issue was added")
	}
}

func TestValidationErrors(t *testing.T) {
	h := newHarness(t, Options{Issues: 50, Seed: 11})
	tests := []struct {
		name   string
		query  string
		vars   map[string]any
		status int
		code   string
		substr string
	}{
		{"unknown field", `{ issuesV2 { nodes { id bogus } } }`, nil, 200, CodeValidationFailed, "bogus"},
		{"unknown argument", `{ issuesV2(bogus: 1) { nodes { id } } }`, nil, 200, CodeValidationFailed, "bogus"},
		{"syntax", `{ issuesV2 { nodes { id }`, nil, 200, CodeValidationFailed, ""},
		{"wrong variable type", `query($first: String) { issuesV2(first: $first) { nodes { id } } }`, map[string]any{"first": "5"}, 200, CodeValidationFailed, "first"},
		{"wrong variable value", `query($first: Int) { issuesV2(first: $first) { nodes { id } } }`, map[string]any{"first": "abc"}, 200, CodeBadUserInput, "first"},
		{"unknown enum in variable", StandardQuery, map[string]any{"filterBy": map[string]any{"status": []string{"CLOSED"}}}, 200, CodeBadUserInput, "CLOSED"},
		{"unknown filter key", StandardQuery, map[string]any{"filterBy": map[string]any{"bogus": 1}}, 200, CodeBadUserInput, "bogus"},
		{"first zero", StandardQuery, map[string]any{"first": 0}, 200, CodeBadUserInput, "first"},
		{"first too big", StandardQuery, map[string]any{"first": 501}, 200, CodeBadUserInput, "first"},
		{"bad timestamp", StandardQuery, map[string]any{"filterBy": map[string]any{"createdAt": map[string]any{"after": "yesterday"}}}, 200, CodeBadUserInput, "createdAt"},
		{"empty list", StandardQuery, map[string]any{"filterBy": map[string]any{"severity": []string{}}}, 400, CodeBadUserInput, "severity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, r := h.do(tt.query, tt.vars)
			if status != tt.status || len(r.Errors) == 0 || r.Errors[0].Extensions.Code != tt.code ||
				!strings.Contains(r.Errors[0].Message, tt.substr) {
				t.Fatalf("status %d (want %d), errors %+v (want code %s containing %q)", status, tt.status, r.Errors, tt.code, tt.substr)
			}
			if r.Data != nil {
				t.Fatalf("data should be null, got %v", r.Data)
			}
		})
	}
}

func TestLateVisibility(t *testing.T) {
	h := newHarness(t, Options{Issues: 1000, Seed: 12})
	snap := h.sim.Snapshot()
	now := h.clock.Now()
	hidden := len(snap) - len(visible(snap, now))
	if hidden == 0 {
		t.Fatal("no issue is hidden at start: late visibility is not exercised")
	}
	for _, st := range snap {
		if st.VisibleAt.Before(st.CreatedAt) || st.VisibleAt.Sub(st.CreatedAt) > 7*24*time.Hour+maxLag {
			t.Fatalf("issue %s visible at %s, created %s", st.ID, st.VisibleAt, st.CreatedAt)
		}
		if now.Sub(st.VisibleAt) < -maxLag {
			t.Fatalf("issue %s hidden for more than %s", st.ID, maxLag)
		}
	}
	got := h.walk(500, nil, nil)
	if len(got) != len(snap)-hidden {
		t.Fatalf("served %d issues at start, want %d", len(got), len(snap)-hidden)
	}
	h.clock.Advance(maxLag)
	if got := h.walk(500, nil, nil); len(got) != len(snap) {
		t.Fatalf("served %d issues after the lag, want %d", len(got), len(snap))
	}
}

func TestDeterministic(t *testing.T) {
	clock := newClock()
	a, err := New(Options{Issues: 200, Seed: 42, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Issues: 200, Seed: 42, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Issues: 200, Seed: 43, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(a.Snapshot(), b.Snapshot(), func(x, y IssueState) bool { return x.ID == y.ID && x.VisibleAt.Equal(y.VisibleAt) }) {
		t.Error("same seed generated different data")
	}
	if a.Snapshot()[0].ID == c.Snapshot()[0].ID {
		t.Error("different seeds generated the same data")
	}
}

// Query responses carry a Content-Length (not chunked), so a client that stops reading at the end of
// the JSON value, as encoding/json's Decoder does, still sees the end of the body and keeps its
// connection.
func TestQueryResponseHasContentLength(t *testing.T) {
	h := newHarness(t, Options{Issues: 50, Seed: 1})
	status, hdr, body := h.raw(h.token, smallQuery, nil)
	if status != 200 || hdr.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Fatalf("status %d, Content-Length %q for %d bytes", status, hdr.Get("Content-Length"), len(body))
	}
}
