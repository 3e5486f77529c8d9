package store

import (
	"sync"
	"time"
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

// maxRecentAge is how long a commit's lines stay at most: lines a sink does not read from here (a
// backlog, a dead letter) would otherwise pin the feed's buffers until later commits push them out.
const maxRecentAge = 10 * time.Second

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
	added   time.Time
	release func()
}

// recentCache is the store's cache of recently committed lines.
type recentCache struct {
	mu      sync.Mutex
	commits []*recentCommit // oldest first
	closed  bool            // the store is closing: nothing more is kept
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
	if prev := tx.pending.release; prev != nil {
		tx.pending.release = func() { prev(); release() }
		return
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

// settle hands a finished transaction's lines to the cache (committed) or releases them. Every
// settle also drops what has been kept for longer than maxRecentAge.
func (c *recentCache) settle(p *pendingLines, committed bool, now time.Time) {
	if p == nil || p.release == nil {
		return
	}
	keep := committed && !p.broken && len(p.lines) > 0
	var evicted []*recentCommit
	c.mu.Lock()
	if c.closed {
		keep = false
	}
	for len(c.commits) > 0 && (now.Sub(c.commits[0].added) > maxRecentAge || keep && len(c.commits) >= maxRecentCommits) {
		evicted = append(evicted, c.commits[0])
		c.commits = append(c.commits[:0], c.commits[1:]...)
	}
	if keep {
		rc := &recentCommit{lines: p.lines, first: p.first, release: p.release, added: now,
			unread: len(p.lines) * len(p.first), read: make(map[string][]bool, len(p.first))}
		for sink := range p.first {
			rc.read[sink] = make([]bool, len(p.lines))
		}
		c.commits = append(c.commits, rc)
	}
	c.mu.Unlock()
	for _, rc := range evicted {
		rc.release()
	}
	if !keep {
		p.release()
	}
}

// recentReader looks lines up for one OutboxInto call; the commits it reads to the end are released
// by release, which OutboxInto calls once its read transaction is over.
type recentReader struct {
	c    *recentCache
	done []*recentCommit
}

func (c *recentCache) reader() *recentReader { return &recentReader{c: c} }

// appendLine appends sink's event seq to dst and reports true, if the cache has it unread. It holds
// the cache's lock only for the lookup and the copy.
func (r *recentReader) appendLine(dst []byte, sink string, seq uint64) ([]byte, bool) {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
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

// release releases the commits read to the end.
func (r *recentReader) release() {
	for _, rc := range r.done {
		rc.release()
	}
	r.done = nil
}

// dropAll releases everything and keeps nothing from now on (the store is closing; a transaction
// still running hands its lines back at once).
func (c *recentCache) dropAll() {
	c.mu.Lock()
	commits := c.commits
	c.commits, c.closed = nil, true
	c.mu.Unlock()
	for _, rc := range commits {
		rc.release()
	}
}
