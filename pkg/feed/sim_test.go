package feed

import (
	"context"
	"fmt"
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

// Every page a feed reads with PageSlots gives its slot back, whether it is committed, kept at the
// head of a stream for the next fetch, or dropped with a stream whose cursor Wiz refused: with a
// single slot, one page kept would stop the feed for good. The backfill still emits one event per
// issue, and once the feed is closed no slot is held.
func TestSimPageSlotsAreGivenBack(t *testing.T) {
	for _, prefetch := range []bool{false, true} {
		t.Run(fmt.Sprintf("prefetch=%v", prefetch), func(t *testing.T) {
			fx := newFixture(t, 37)
			fx.fetch.Status = nil
			fx.prefetch = prefetch
			fx.pageSlots = wiz.NewPageSlots(1)
			sim, client := simSource(t, fx.now, 400)
			fx.source = client
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f := fx.feed(Created)
			allFree := func(when string) {
				for fx.pageSlots.Held() != 0 {
					select {
					case <-ctx.Done():
						t.Fatalf("%d page slots still held %s", fx.pageSlots.Held(), when)
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
			for i := 0; ; i++ {
				switch i {
				case 2:
					// Mid-backfill: a stream holds the next page, fetched ahead; closing the
					// feed drops it, and the feed goes on afterwards.
					for prefetch && fx.pageSlots.Held() == 0 {
						select {
						case <-ctx.Done():
							t.Fatal("the stream never fetched ahead")
						case <-time.After(5 * time.Millisecond):
						}
					}
					f.Close()
					allFree("after closing the feed mid-backfill")
				case 4:
					sim.InvalidateCursors() // the window restarts; the stream goes with it
				}
				res, err := f.Fetch(ctx)
				if err != nil {
					t.Fatalf("fetch %d: %v (slots held: %d)", i, err, fx.pageSlots.Held())
				}
				if !res.Backlog {
					break
				}
			}
			f.Close()
			allFree("after the feed closed")
			if got, want := len(kinds(fx.events())), len(sim.Snapshot()); got != want {
				t.Fatalf("events for %d issues, want %d", got, want)
			}
		})
	}
}
