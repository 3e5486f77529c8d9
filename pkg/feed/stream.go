package feed

import (
	"context"
	"sync"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// streamDepth is how many fetched pages may wait for the fetch that takes them, besides the one at
// the head of the stream: with one more request in flight, a stream runs at most streamDepth+2
// pages ahead of the page being committed.
const streamDepth = 1

// pageStream fetches the pages of one window from a cursor on, each request starting as soon as the
// previous page has arrived, and maps every page as it arrives, on a goroutine each (Options.Prefetch):
// fetching, mapping and committing then overlap, and the requests follow one another as closely as
// a bare client's would. A fetch takes the pages in order; a page that would not fit in a fetch's
// budget stays at the head for the next fetch (so a streamed page is never stopped mid-way, and no
// page is fetched twice). A fetch that asks for anything else than the head drops the stream.
type pageStream struct {
	after  time.Time
	first  int
	cancel context.CancelFunc
	pages  chan *streamPage // fetched pages in order; closed when the stream ends
	head   *streamPage      // the next page, received from pages and not yet taken
	done   chan struct{}    // closed once both goroutines have returned
}

// streamPage is one page of a stream.
type streamPage struct {
	cursor    string
	fetchedAt time.Time
	page      *wiz.Page
	err       error
	mapped    chan struct{} // closed once incidents is set (at once after an error or a cancel)
	incidents mapped
}

// startStream starts a stream of the window pinned at after, from cursor. It lives until it is
// cancelled, ctx ends, a request fails or the window's last page has been fetched.
func (f *Feed) startStream(ctx context.Context, after time.Time, cursor string, first int) *pageStream {
	sctx, cancel := context.WithCancel(ctx)
	s := &pageStream{
		after: after, first: first, cancel: cancel,
		pages: make(chan *streamPage, streamDepth), done: make(chan struct{}),
	}
	toMap := make(chan *streamPage, streamDepth+2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(s.pages)
		defer close(toMap)
		for {
			page, err := f.opt.Source.Issues(wiz.WithPageSlots(sctx, f.opt.PageSlots), f.pol.filter(after), f.pol.order(), first, cursor)
			sp := &streamPage{cursor: cursor, fetchedAt: time.Now(), page: page, err: err, mapped: make(chan struct{})}
			select {
			case toMap <- sp:
			case <-sctx.Done():
				close(sp.mapped)
				page.Release()
				return
			}
			select {
			case s.pages <- sp:
			case <-sctx.Done():
				<-sp.mapped // the mapper may still be reading it
				page.Release()
				return
			}
			if err != nil || !page.HasNextPage || page.EndCursor == "" {
				return
			}
			cursor = page.EndCursor
		}
	}()
	go func() {
		defer wg.Done()
		for sp := range toMap {
			if sp.err == nil && sctx.Err() == nil {
				sp.incidents = f.mapPage(sp.page)
			}
			close(sp.mapped)
		}
	}()
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return s
}

// next returns the head of the stream — waiting for it to arrive — when it is the page of (after,
// cursor, first) fetched within maxPrefetchAge, else nil (the stream went elsewhere, or ended). The
// head stays in place until take.
func (s *pageStream) next(ctx context.Context, after time.Time, cursor string, first int) (*streamPage, error) {
	if !s.after.Equal(after) || s.first != first {
		return nil, nil
	}
	if s.head == nil {
		select {
		case sp, ok := <-s.pages:
			if !ok {
				return nil, nil
			}
			s.head = sp
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.head.cursor != cursor || time.Since(s.head.fetchedAt) > maxPrefetchAge {
		return nil, nil
	}
	return s.head, nil
}

// take removes the head of the stream (the page a fetch is about to commit, and release).
func (s *pageStream) take() { s.head = nil }

// drop cancels the stream and releases every page it still holds (the head, and those waiting in
// s.pages) once its goroutines have returned: a dropped stream is never read again.
func (s *pageStream) drop() {
	s.cancel()
	if s.head != nil {
		<-s.head.mapped
		s.head.page.Release()
		s.head = nil
	}
	go func() {
		<-s.done
		for sp := range s.pages {
			<-sp.mapped
			sp.page.Release()
		}
	}()
}
