package wiz

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// IssuesByID reads many issues with one request: the ids the simulator knows come back once each
// with their raw nodes, unknown ids are simply absent, and repeated or blank ids are not sent.
func TestIssuesByIDAgainstTheSimulator(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 300})
	c := newTestClient(t, simOptions(sim))
	ctx := testCtx(t)
	snap := sim.Snapshot()
	var ids []string
	for _, is := range snap[:120] {
		ids = append(ids, is.ID)
	}
	unknown := []string{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"}
	ask := append(append([]string{" ", ids[0]}, ids...), unknown...)
	sim.ResetStats()
	issues, raws, err := c.IssuesByID(ctx, ask)
	if err != nil {
		t.Fatal(err)
	}
	if n := simCount(sim, wizsim.EndpointGraphQL, http.StatusOK); n != 1 {
		t.Fatalf("%d GraphQL requests for %d ids, want 1", n, len(ask))
	}
	if len(issues) != len(ids) || len(raws) != len(ids) {
		t.Fatalf("%d issues, %d raw nodes; want %d (unknown ids absent)", len(issues), len(raws), len(ids))
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for i, is := range issues {
		if !want[is.ID] {
			t.Fatalf("issue %s returned twice or not asked for", is.ID)
		}
		want[is.ID] = false
		var node struct{ ID string }
		if err := json.Unmarshal(raws[i], &node); err != nil || node.ID != is.ID {
			t.Fatalf("raw node %d is %s (%v), issue %s", i, node.ID, err, is.ID)
		}
	}
	if st := sim.Stats(); st.IssuesServed != len(ids) {
		t.Fatalf("simulator served %d nodes, want %d", st.IssuesServed, len(ids))
	}
}

// The request is the query of every read with filterBy.id a list and first its length; a node
// Wiz returns that was not asked for is never passed off as a requested issue; a list longer than
// one page is refused before anything is sent.
func TestIssuesByIDRequest(t *testing.T) {
	f := newFakeWiz(t)
	const asked, other = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, req gqlRequest, _ int64) {
		node := func(id string) map[string]any {
			return map[string]any{"id": id, "type": "TOXIC_COMBINATION", "status": "OPEN", "severity": "HIGH",
				"createdAt": "2025-01-01T00:00:00.000000Z", "updatedAt": "2025-01-01T00:00:00.000000Z"}
		}
		writeJSON(w, 200, map[string]any{"data": map[string]any{"issues": map[string]any{
			"nodes":    []any{node(other), node(strings.ToUpper(asked))},
			"pageInfo": map[string]any{"hasNextPage": false, "endCursor": nil},
		}}})
	})
	c := newTestClient(t, f.options())
	issues, _, err := c.IssuesByID(testCtx(t), []string{asked, "33333333-3333-4333-8333-333333333333"})
	if err != nil {
		t.Fatal(err)
	}
	if len(issues) != 1 || !strings.EqualFold(issues[0].ID, asked) {
		t.Fatalf("issues %+v: want only the asked-for one", issues)
	}
	reqs := f.recorded("/graphql")
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	var body struct {
		Query     string
		Variables struct {
			FilterBy map[string]any `json:"filterBy"`
			First    int            `json:"first"`
		}
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Query != IssuesQuery || body.Variables.First != 2 || len(body.Variables.FilterBy) != 1 {
		t.Fatalf("variables %+v: want filterBy {id: [..]} only and first 2", body.Variables)
	}
	if list, ok := body.Variables.FilterBy["id"].([]any); !ok || len(list) != 2 {
		t.Fatalf("filterBy.id = %#v, want a list of the two ids", body.Variables.FilterBy["id"])
	}

	long := make([]string, MaxIDsPerRequest+1)
	for i := range long {
		long[i] = strings.Repeat("a", 8) + string(rune('a'+i%26)) + strings.Repeat("0", i/26+1)
	}
	if _, _, err := c.IssuesByID(testCtx(t), long); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("%d ids: err %v, want ErrBadRequest", len(long), err)
	}
	if _, _, err := c.IssuesByID(testCtx(t), []string{" "}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("no id: err %v, want ErrBadRequest", err)
	}
	if n := len(f.recorded("/graphql")); n != 1 {
		t.Fatalf("%d requests after refused lists, want still 1", n)
	}
}
