package wiz

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestPageSlots: a page read with PageSlots holds its slot until Release; an answer that fails to
// decode gives its slot back at once; answers other than 200 never take one; lookups without slots
// in their context hold nothing.
func TestPageSlots(t *testing.T) {
	fake := newFakeWiz(t)
	c := newTestClient(t, fake.options())
	slots := NewPageSlots(1)
	ctx := WithPageSlots(context.Background(), slots)
	free := func() bool {
		if !slots.sem.TryAcquire(1) {
			return false
		}
		slots.sem.Release(1)
		return true
	}

	page, err := c.Issues(ctx, IssueFilter{}, nil, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if free() {
		t.Fatal("a page read with slots holds none")
	}
	page.Release()
	if !free() {
		t.Fatal("Release did not give the slot back")
	}
	page.Release() // a second Release must not free a slot it no longer holds
	if !slots.sem.TryAcquire(1) || slots.sem.TryAcquire(1) {
		t.Fatal("a second Release freed another slot")
	}
	slots.sem.Release(1)

	// A 200 whose body is not JSON: the call fails (retried until RetryFor) and every attempt gave
	// its slot back.
	fake.mu.Lock()
	fake.graphql = func(w http.ResponseWriter, r *http.Request, req gqlRequest, n int64) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("{not json"))
	}
	fake.mu.Unlock()
	opts := fake.options()
	opts.RetryFor = 20 * time.Millisecond
	quick := newTestClient(t, opts)
	if _, err := quick.Issues(ctx, IssueFilter{}, nil, 10, ""); err == nil {
		t.Fatal("a page that is not JSON was accepted")
	}
	if fake.gqlCount.Load() < 2 {
		t.Fatalf("%d GraphQL requests; want the first page and at least one undecodable answer", fake.gqlCount.Load())
	}
	if !free() {
		t.Fatal("a failed call kept its slot")
	}

	// Without slots in the context nothing is held, whatever the client.
	fake.mu.Lock()
	fake.graphql = func(w http.ResponseWriter, r *http.Request, req gqlRequest, n int64) {
		writeJSON(w, 200, map[string]any{"data": emptyIssues()})
	}
	fake.mu.Unlock()
	if !slots.sem.TryAcquire(1) {
		t.Fatal("slot taken")
	}
	defer slots.sem.Release(1)
	page, err = c.Issues(context.Background(), IssueFilter{}, nil, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	page.Release() // holds nothing: must not release the slot the test holds
	if slots.sem.TryAcquire(1) {
		t.Fatal("Release of a page without a slot freed one")
	}
}

// TestPageSlotsNon200TakesNone: with every slot taken, a 429 answer comes back as an error at once
// instead of waiting for a slot (one instance's 429 storm delays no other).
func TestPageSlotsNon200TakesNone(t *testing.T) {
	fake := newFakeWiz(t)
	opts := fake.options()
	opts.RetryFor = 0
	c := newTestClient(t, opts)
	fake.graphql = func(w http.ResponseWriter, r *http.Request, req gqlRequest, n int64) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": []any{map[string]any{"message": "no"}}})
	}
	slots := NewPageSlots(1)
	if !slots.sem.TryAcquire(1) {
		t.Fatal("fresh slots are taken")
	}
	defer slots.sem.Release(1)
	if _, err := c.Issues(WithPageSlots(context.Background(), slots), IssueFilter{}, nil, 10, ""); err == nil {
		t.Fatal("a 401 answer succeeded")
	}
}
