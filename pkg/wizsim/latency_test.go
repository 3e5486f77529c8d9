package wizsim

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestLatencyModel: an answer takes Latency plus LatencyPerIssue for each node it returns.
func TestLatencyModel(t *testing.T) {
	h := newHarness(t, Options{Issues: 100, Seed: 3, Latency: 150 * time.Millisecond, LatencyPerIssue: 5 * time.Millisecond})
	h.revealAll()
	start := time.Now()
	p := h.page(map[string]any{"first": 40})
	took := time.Since(start)
	if len(p.Nodes) != 40 {
		t.Fatalf("%d nodes, want 40", len(p.Nodes))
	}
	if want := 150*time.Millisecond + 40*5*time.Millisecond; took < want {
		t.Fatalf("a page of 40 took %v, want at least %v", took, want)
	}
}

// TestIDListFilter: a list of ids answers those issues (unknown ones are simply absent); more ids
// than one page can hold are refused with BAD_USER_INPUT.
func TestIDListFilter(t *testing.T) {
	h := newHarness(t, Options{Issues: 50, Seed: 3})
	h.revealAll()
	var ids []string
	for _, is := range h.sim.Snapshot()[:7] {
		ids = append(ids, is.ID)
	}
	ids = append(ids, "00000000-0000-4000-8000-000000000000")
	p := h.page(map[string]any{"first": 500, "filterBy": map[string]any{"id": ids}})
	if len(p.Nodes) != 7 {
		t.Fatalf("%d nodes for 7 known ids", len(p.Nodes))
	}
	long := make([]string, 501)
	for i := range long {
		long[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	status, r := h.do(StandardQuery, map[string]any{"first": 500, "filterBy": map[string]any{"id": long}})
	if status != http.StatusOK || len(r.Errors) == 0 || r.Errors[0].Extensions.Code != CodeBadUserInput {
		t.Fatalf("501 ids: status %d errors %+v, want BAD_USER_INPUT", status, r.Errors)
	}
}
