package feed

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// simSource starts a simulator of n issues generated up to now, whose clock then runs 10 minutes
// ahead (so every issue is visible: late visibility is under 5 minutes), and returns it with a
// client on it.
func simSource(t *testing.T, now time.Time, n int) (*wizsim.Server, *wiz.Client) {
	t.Helper()
	var ahead atomic.Bool
	sim, err := wizsim.New(wizsim.Options{Issues: n, Seed: 7, Days: 2, Now: func() time.Time {
		if ahead.Load() {
			return now.Add(10 * time.Minute)
		}
		return now
	}})
	if err != nil {
		t.Fatal(err)
	}
	ahead.Store(true)
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := wiz.New(ctx, wiz.Options{
		APIURL: sim.URL(), AuthURL: sim.TokenURL(), Audience: wiz.AudienceCognito,
		ClientID: "wizsim-client", ClientSecret: "wizsim-secret", RetryFor: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// Wiz's wording for an invalid or expired cursor is not documented (WIZ_API.md §10), and the
// simulator's never says "cursor": the client tells a rejected cursor by its BAD_USER_INPUT code on
// a page it requested with one, so the feed restarts its window, losing and duplicating nothing,
// instead of failing the fetch as a bad request.
func TestSimRejectedCursorRestartsWindow(t *testing.T) {
	fx := newFixture(t, 10)
	fx.fetch.Status = nil // every issue of the window
	sim, client := simSource(t, fx.now, 60)
	fx.source = client

	first, err := fx.feed(Created).Fetch(context.Background())
	if err != nil || !first.Backlog || first.Created != 10 {
		t.Fatalf("first fetch: %+v, %v; want 10 created and a backlog", first, err)
	}
	sim.InvalidateCursors() // the window's stored cursor is refused from now on
	second, err := fx.feed(Created).Fetch(context.Background())
	if err != nil {
		t.Fatalf("fetch with a refused cursor: %v (want the window restarted)", err)
	}
	if second.Restarts != 1 || second.Created != 10 {
		t.Fatalf("second fetch: %+v; want 1 restart and 10 created", second)
	}
	fx.run(Created)

	evs := fx.events()
	if want := len(sim.Snapshot()); len(evs) != want {
		t.Fatalf("got %d events, want one per issue (%d)", len(evs), want)
	}
	for id, k := range kinds(evs) {
		if len(k) != 1 {
			t.Fatalf("issue %s got %v", id, k)
		}
	}
}
