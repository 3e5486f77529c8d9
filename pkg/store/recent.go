package store

import (
	"sync"
)

// The sinks read events a few milliseconds after the feed committed them. A codecDocRef event is
// then put together from the store: a document lookup and an S2 decompression per event, about a
// tenth of the pipeline's CPU per issue. While the feed still holds the incidents' JSON it built
// (Tx.KeepLines), the store keeps, for the last few page commits, where each event's line is, and
// OutboxInto copies it from there instead. Only what was committed is kept (the transaction hands it
// over after its commit), each line is read from here once per sink (a re-read, after a failed
// delivery, goes to the store), and at most maxRecentCommits commits are kept: the oldest is dropped
// (and its buffers handed back) when a new one comes. The lines are byte for byte what the store
// would return: prefix, then the JSON whose S2 block is the incident's document, then suffix.

// maxRecentCommits bounds the commits whose lines are kept (each about a page of incidents, 1 MiB,
// held in the feed's buffers): the sinks normally read a commit's lines within the next commit or
// two, and every commit kept here is a set of page buffers the feed cannot reuse (with 4 kept,
// peak RSS at 50k issues was about 5 MiB higher for the same throughput).
const maxRecentCommits = 3

// recentLine is one event's line, in three parts; every sink of the commit has it at its first seq
// plus the line's index.
type recentLine struct {
	prefix, json, suffix []byte
}

// recentCommit is the lines of one commit.
type recentCommit struct {
	lines   []recentLine
	first   map[string]uint64 // per sink, the seq of lines[0]; seqs are consecutive
	unread  int               // (sink, line) pairs not read yet
	read    map[string][]bool // per sink, which lines were read
	release func()
}

// recentCache is the store's cache of recently committed lines.
type recentCache struct {
	mu      sync.Mutex
	commits []*recentCommit // oldest first
}

// pendingLines is what a transaction records for the cache: its lines and the outbox entries of each.
type pendingLines struct {
	lines   []recentLine
	first   map[string]uint64
	next    map[string]uint64 // the seq each sink's next line must have to stay consecutive
	broken  bool              // some line's seqs were not consecutive: keep nothing
	release func()
}

// KeepLines declares that the incident JSON, prefixes and suffixes passed to PutIncidentAndEnqueue
// in this transaction stay valid until release is called, so the store may serve those events'
// lines to the sinks from memory (see recent.go). The store calls release exactly once: when it no
// longer needs them, at once if the transaction does not commit.
func (tx *Tx) KeepLines(release func()) {
	if tx.pending == nil {
		tx.pending = &pendingLines{}
	}
	tx.pending.release = release
}

// recordLine notes, for KeepLines, that the event line prefix + json + suffix went to refs.
func (tx *Tx) recordLine(refs []outboxRef, prefix, json, suffix []byte) {
	if tx.pending == nil {
		tx.pending = &pendingLines{}
	}
	p := tx.pending
	if p.broken {
		return
	}
	if p.first == nil {
		p.first, p.next = make(map[string]uint64, len(refs)), make(map[string]uint64, len(refs))
		for _, ref := range refs {
			p.first[ref.sink], p.next[ref.sink] = ref.seq, ref.seq
		}
	}
	if len(refs) != len(p.first) {
		p.broken = true
		return
	}
	for _, ref := range refs {
		if next, ok := p.next[ref.sink]; !ok || next != ref.seq {
			p.broken = true
			return
		}
		p.next[ref.sink] = ref.seq + 1
	}
	p.lines = append(p.lines, recentLine{prefix: prefix, json: json, suffix: suffix})
}

// breakLines keeps this transaction's lines out of the cache (an event whose line it cannot hold).
func (tx *Tx) breakLines() {
	if tx.pending == nil {
		tx.pending = &pendingLines{}
	}
	tx.pending.broken = true
}

// settle hands a finished transaction's lines to the cache (committed) or releases them.
func (c *recentCache) settle(p *pendingLines, committed bool) {
	if p == nil || p.release == nil {
		return
	}
	if !committed || p.broken || len(p.lines) == 0 {
		p.release()
		return
	}
	rc := &recentCommit{lines: p.lines, first: p.first, release: p.release,
		unread: len(p.lines) * len(p.first), read: make(map[string][]bool, len(p.first))}
	for sink := range p.first {
		rc.read[sink] = make([]bool, len(p.lines))
	}
	var evicted *recentCommit
	c.mu.Lock()
	if len(c.commits) >= maxRecentCommits {
		evicted = c.commits[0]
		c.commits = append(c.commits[:0], c.commits[1:]...)
	}
	c.commits = append(c.commits, rc)
	c.mu.Unlock()
	if evicted != nil {
		evicted.release()
	}
}

// reader looks lines up for one OutboxInto call, holding the cache's lock meanwhile.
type recentReader struct {
	c    *recentCache
	done []*recentCommit // fully read: released after the lock is dropped
}

func (c *recentCache) reader() *recentReader {
	c.mu.Lock()
	return &recentReader{c: c}
}

// appendLine appends sink's event seq to dst and reports true, if the cache has it unread.
func (r *recentReader) appendLine(dst []byte, sink string, seq uint64) ([]byte, bool) {
	for i, rc := range r.c.commits {
		first, ok := rc.first[sink]
		if !ok || seq < first || seq-first >= uint64(len(rc.lines)) {
			continue
		}
		n := seq - first
		read := rc.read[sink]
		if read[n] {
			return dst, false
		}
		read[n] = true
		l := rc.lines[n]
		dst = append(dst, l.prefix...)
		dst = append(dst, l.json...)
		dst = append(dst, l.suffix...)
		if rc.unread--; rc.unread == 0 {
			r.c.commits = append(r.c.commits[:i], r.c.commits[i+1:]...)
			r.done = append(r.done, rc)
		}
		return dst, true
	}
	return dst, false
}

// close drops the lock and releases the commits read to the end.
func (r *recentReader) close() {
	r.c.mu.Unlock()
	for _, rc := range r.done {
		rc.release()
	}
}

// dropAll releases everything (the store is closing).
func (c *recentCache) dropAll() {
	c.mu.Lock()
	commits := c.commits
	c.commits = nil
	c.mu.Unlock()
	for _, rc := range commits {
		rc.release()
	}
}
