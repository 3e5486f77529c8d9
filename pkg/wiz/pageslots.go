package wiz

import (
	"context"

	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// PageSlots bounds how many pages of issues are held in memory at once by every fetch that shares
// it, whatever the number of instances: a page takes a slot once Wiz has answered (status 200,
// before its body is read) and gives it back with Page.Release, once the caller has committed or
// dropped it. Requests still go out and wait for Wiz's answer concurrently, so a thousand instances
// hide Wiz's latency together; only the decoded pages, about 1-2 MiB per 200 issues, are bounded.
// A response waiting for a slot stays unread in its connection. Answers other than 200 (a 401 or a
// 429 storm of one instance) take no slot, so they delay no other instance. Slots are handed out in
// the order they were asked for (semaphore.Weighted), so no instance starves.
type PageSlots struct {
	sem  *semaphore.Weighted
	held atomic.Int64
}

// NewPageSlots returns a bound of n pages (at least 1).
func NewPageSlots(n int) *PageSlots {
	return &PageSlots{sem: semaphore.NewWeighted(int64(max(n, 1)))}
}

type pageSlotsKey struct{}

// WithPageSlots returns ctx with slots attached: Client.Issues called with it holds a slot for the
// page it returns until Page.Release. Without them (the zero case: single-issue lookups, pushes'
// refetches, the credentials check) pages hold nothing and Release does nothing.
func WithPageSlots(ctx context.Context, slots *PageSlots) context.Context {
	if slots == nil {
		return ctx
	}
	return context.WithValue(ctx, pageSlotsKey{}, slots)
}

// takePageSlot takes a slot of the ctx's PageSlots, waiting for one, and returns the function that
// gives it back (nil when ctx carries none).
func takePageSlot(ctx context.Context) (release func(), err error) {
	slots, _ := ctx.Value(pageSlotsKey{}).(*PageSlots)
	if slots == nil {
		return nil, nil
	}
	if err := slots.sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	slots.held.Add(1)
	return func() {
		slots.held.Add(-1)
		slots.sem.Release(1)
	}, nil
}

// Held returns how many pages hold a slot now.
func (s *PageSlots) Held() int { return int(s.held.Load()) }

// Release gives back the page's slot (see PageSlots), if it holds one. Call it once the page has
// been committed or dropped; further calls, and calls on a nil page, do nothing. A page is used by
// one goroutine at a time, so Release needs no lock.
func (p *Page) Release() {
	if p != nil && p.release != nil {
		p.release()
		p.release = nil
	}
}
