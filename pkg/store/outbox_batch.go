package store

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// The dispatcher of a sink delivers its outbox a batch at a time, and the batch is fair across
// instances: NextBatch takes turns over the lanes with events and deals the batch out of them
// round-robin (A1 B1 C1 A2 B2 A3 …), so a fresh event of one instance is among the first of the
// next batch however long another instance's backlog is.
//
// Why the batch in flight is durable. The JSONL sink is exactly-once because, after a crash
// between its write and the acknowledgement, the first batch it is handed begins with the events it
// wrote (it finds its file's last line among them and acknowledges instead of writing again). With
// one FIFO that held by itself; a fair batch depends on which lanes had events when it was made,
// which a restart may change. So NextBatch records the batch it makes (its plan, in meta) in the
// same transaction, and hands out the rest of that batch, in the same order, until every event of
// it is acknowledged or dead-lettered; only then does it make the next one. The plan names, per
// lane in dealing order, how many events it took and the sequence number of the last: the lane's
// events up to that number are the ones still due (acknowledgements remove a batch's leading
// events, so what remains of a lane is a suffix of what it gave, and events enqueued later have
// larger numbers), and the count places each of them at its original position in the deal.

// batchPlan is a sink's batch in flight.
type batchPlan struct {
	Lanes []planLane `json:"lanes"`
	// After is the lane the next batch's turn starts after.
	After string `json:"after"`
	// BySeq orders the batch by sequence number instead of dealing it: a batch of the events a
	// schema 5 FIFO held (fifoBatch).
	BySeq bool `json:"by_seq,omitempty"`
}

// planLane is one lane's share of a batch: its Count oldest events, the last of them Last.
type planLane struct {
	Instance string `json:"instance"`
	Count    int    `json:"count"`
	Last     uint64 `json:"last"`
}

// NextBatch returns the events sink's dispatcher delivers next: what is left of the batch in flight
// if any, else a new batch of up to limit events (limit <= 0: no count limit) dealt round-robin
// across the instances with events, in at most MaxBatchBytes of data beyond its first event. Within
// an instance the events keep their commit order. The caller acknowledges (Ack) or dead-letters
// (MoveToDeadLetter) events from the front of the batch; until it has done so with all of them,
// NextBatch returns the rest of the same batch, also after a restart.
func (s *Store) NextBatch(sink string, limit int) ([]OutboxItem, error) {
	var items []OutboxItem
	pending := false
	err := s.View(func(tx *Tx) error {
		var err error
		// The data, not a counter, says whether events wait: a miscount must never strand them.
		if pending, err = tx.outboxPending(sink); err != nil || !pending {
			return err // an idle sink's poll costs one descent of its outbox
		}
		items, _, err = tx.batchInFlight(sink)
		return err
	})
	if err != nil || len(items) > 0 || !pending {
		return items, wrapBatchErr(sink, err)
	}
	err = s.Update(func(tx *Tx) error {
		var plan batchPlan
		var err error
		if items, plan, err = tx.batchInFlight(sink); err != nil || len(items) > 0 {
			return err
		}
		items, plan, err = tx.dealBatch(sink, plan.After, limit)
		if err != nil || len(items) == 0 {
			return err
		}
		return tx.putBatchPlan(sink, plan)
	})
	return items, wrapBatchErr(sink, err)
}

func wrapBatchErr(sink string, err error) error {
	if err != nil {
		return fmt.Errorf("next batch of %s: %w", sink, err)
	}
	return nil
}

// outboxPending reports whether sink's outbox holds any event.
func (tx *Tx) outboxPending(sink string) (bool, error) {
	parent, err := tx.bucket(bucketOutbox)
	if err != nil {
		return false, err
	}
	b := parent.Bucket([]byte(sink))
	if b == nil {
		return false, nil
	}
	k, _ := b.Cursor().First()
	return k != nil, nil
}

// batchInFlight returns what is left of sink's recorded batch, in its order, and the plan.
func (tx *Tx) batchInFlight(sink string) ([]OutboxItem, batchPlan, error) {
	var plan batchPlan
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return nil, plan, err
	}
	raw := meta.Get(batchPlanKey(sink))
	if raw == nil {
		return nil, plan, nil
	}
	if err := json.Unmarshal(raw, &plan); err != nil {
		return nil, plan, fmt.Errorf("batch plan: %w", err)
	}
	parent, err := tx.bucket(bucketOutbox)
	if err != nil {
		return nil, plan, err
	}
	b := parent.Bucket([]byte(sink))
	if b == nil {
		return nil, plan, nil
	}
	shares := make([]laneShare, len(plan.Lanes))
	for i, pl := range plan.Lanes {
		c := b.Cursor()
		for k, v := c.Seek(outboxKey(pl.Instance, 0)); k != nil; k, v = c.Next() {
			lane, seq, ok := splitOutboxKey(k)
			if !ok || lane != pl.Instance || seq > pl.Last {
				break
			}
			line, err := outboxLine(v)
			if err != nil {
				return nil, plan, fmt.Errorf("outbox item %d: %w", seq, err)
			}
			shares[i].items = append(shares[i].items, OutboxItem{Seq: seq, Instance: lane, Data: line})
		}
		shares[i].count = max(pl.Count, len(shares[i].items))
	}
	if plan.BySeq {
		return bySeq(shares), plan, nil
	}
	return deal(shares), plan, nil
}

// bySeq merges the lanes' items in sequence order.
func bySeq(shares []laneShare) []OutboxItem {
	var out []OutboxItem
	for _, s := range shares {
		out = append(out, s.items...)
	}
	slices.SortFunc(out, func(a, b OutboxItem) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// fifoBatch makes, while sink's outbox still holds events a schema 5 FIFO held (sequence numbers
// up to the fifoThroughKey mark, see startMigrationV5), a batch of the oldest of them in sequence
// order, as schema 5 dealt them; ok is false once none is left (the mark is then dropped).
func (tx *Tx) fifoBatch(sink string, b kv.Bucket, after string, limit int) (items []OutboxItem, plan batchPlan, ok bool, err error) {
	plan = batchPlan{After: after, BySeq: true}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return nil, plan, false, err
	}
	mark := meta.Get(fifoThroughKey(sink))
	if len(mark) != 8 {
		return nil, plan, false, nil
	}
	through := binary.BigEndian.Uint64(mark)
	if limit <= 0 {
		limit = math.MaxInt
	}
	var shares []laneShare
	for _, lane := range lanes(b) {
		var s laneShare
		c := b.Cursor()
		for k, v := c.Seek(outboxKey(lane, 0)); k != nil && len(s.items) < limit; k, v = c.Next() {
			l, seq, ok := splitOutboxKey(k)
			if !ok || l != lane || seq > through {
				break
			}
			line, err := outboxLine(v)
			if err != nil {
				return nil, plan, false, fmt.Errorf("outbox item %d: %w", seq, err)
			}
			s.items = append(s.items, OutboxItem{Seq: seq, Instance: lane, Data: line})
		}
		if len(s.items) > 0 {
			shares = append(shares, s)
		}
	}
	items = bySeq(shares)
	if len(items) == 0 {
		return nil, plan, false, meta.Delete(fifoThroughKey(sink))
	}
	size := 0
	for i, it := range items {
		if i >= limit || i > 0 && size >= MaxBatchBytes {
			items = items[:i]
			break
		}
		size += len(it.Data)
	}
	last := map[string]int{} // lane -> index in plan.Lanes
	for _, it := range items {
		i, seen := last[it.Instance]
		if !seen {
			i = len(plan.Lanes)
			last[it.Instance] = i
			plan.Lanes = append(plan.Lanes, planLane{Instance: it.Instance})
		}
		plan.Lanes[i].Count++
		plan.Lanes[i].Last = it.Seq
	}
	return items, plan, true, nil
}

// laneShare is what one lane gives a batch: the first count events it gave, of which items remain.
type laneShare struct {
	count int
	items []OutboxItem
}

// deal orders a batch: the i-th event of every lane, lane after lane, then the (i+1)-th. A lane
// whose first events are gone (acknowledged) keeps its remaining ones at their original places.
func deal(shares []laneShare) []OutboxItem {
	n, rounds := 0, 0
	for _, s := range shares {
		n += len(s.items)
		rounds = max(rounds, s.count)
	}
	out := make([]OutboxItem, 0, n)
	for round := 0; round < rounds && len(out) < n; round++ {
		for _, s := range shares {
			if i := round - (s.count - len(s.items)); i >= 0 && i < len(s.items) {
				out = append(out, s.items[i])
			}
		}
	}
	return out
}

// maxLanesPerBatch bounds how many lanes one batch draws from while more have events. A batch's
// acknowledgement deletes its events from every lane it drew from, and each lane is its own range
// of the outbox's keys: a batch of 500 events dealt one per lane, as 1,000 instances backfilling at
// once made them, dirtied 500 leaves (8 MB written per acknowledgement), and the dispatcher took a
// third of the daemon's CPU and held the store's write lock the feeds wait for. With at most 16
// lanes a batch, every lane still gets its turn within ⌈lanes ÷ 16⌉ batches, and with 16 lanes or
// fewer (the case of one instance's backlog beside others' fresh events) nothing changes.
const maxLanesPerBatch = 16

// dealBatch makes a new batch of sink: the lanes with events take turns starting after the lane
// after, each giving an equal share of what is left of limit (the rest going round again to the
// lanes that have more), until limit events or MaxBatchBytes of data are in hand. While more than
// maxLanesPerBatch lanes have events, only the first maxLanesPerBatch of the turn take part.
func (tx *Tx) dealBatch(sink, after string, limit int) ([]OutboxItem, batchPlan, error) {
	plan := batchPlan{After: after}
	parent, err := tx.bucket(bucketOutbox)
	if err != nil {
		return nil, plan, err
	}
	b := parent.Bucket([]byte(sink))
	if b == nil {
		return nil, plan, nil
	}
	if items, fifo, ok, err := tx.fifoBatch(sink, b, after, limit); err != nil || ok {
		return items, fifo, err
	}
	// The turn starts at the first lane after the last turn's mark, wrapping around. Many lanes
	// waiting: this batch draws from the first maxLanesPerBatch of the turn, the next batch from
	// the lanes after them.
	ring, truncated := turn(b, after, maxLanesPerBatch)
	if len(ring) == 0 {
		return nil, plan, nil
	}
	if limit <= 0 {
		limit = math.MaxInt
	}
	shares := make([]laneShare, len(ring))
	done := make([]bool, len(ring))
	total, size, active := 0, 0, len(ring)
	full := func() bool { return total >= limit || total > 0 && size >= MaxBatchBytes }
	for active > 0 && !full() {
		quantum := max(1, (limit-total)/active)
		for i, lane := range ring {
			if done[i] {
				continue
			}
			if full() {
				break
			}
			var last uint64
			if n := len(shares[i].items); n > 0 {
				last = shares[i].items[n-1].Seq
			}
			took := 0
			c := b.Cursor()
			k, v := c.Seek(outboxKey(lane, last+1))
			for ; k != nil && took < quantum && !full(); k, v = c.Next() {
				l, seq, ok := splitOutboxKey(k)
				if !ok || l != lane {
					break
				}
				line, err := outboxLine(v)
				if err != nil {
					return nil, plan, fmt.Errorf("outbox item %d: %w", seq, err)
				}
				shares[i].items = append(shares[i].items, OutboxItem{Seq: seq, Instance: lane, Data: line})
				total, size, took = total+1, size+len(line), took+1
			}
			if took < quantum && !full() {
				done[i] = true // the lane ran out
				active--
			}
		}
	}
	served := 0
	for i, lane := range ring {
		n := len(shares[i].items)
		if n == 0 {
			continue
		}
		shares[i].count = n
		plan.Lanes = append(plan.Lanes, planLane{Instance: lane, Count: n, Last: shares[i].items[n-1].Seq})
		plan.After = lane
		served++
	}
	if served == len(ring) && !truncated {
		// Every lane had its turn: the next batch starts one lane further on, so no lane is always
		// dealt last. Else it starts at the first lane this one left out (with more lanes than a
		// batch draws from, the first after those it drew from).
		plan.After = ring[0]
	}
	return deal(shares), plan, nil
}

// putBatchPlan records sink's batch in flight.
func (tx *Tx) putBatchPlan(sink string, plan batchPlan) error {
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	return meta.Put(batchPlanKey(sink), raw)
}

// turn lists up to n lanes of b with events in turn order: those after the lane after, then,
// wrapping around, those from the first up to after itself. more reports that other lanes have
// events too. It seeks from lane to lane, so it costs n seeks however many lanes wait.
func turn(b kv.Bucket, after string, n int) (ring []string, more bool) {
	c := b.Cursor()
	var k []byte
	if after == "" {
		k, _ = c.First()
	} else {
		k, _ = c.Seek(append([]byte(after), sep+1)) // the first key past the lane after
	}
	wrapped := after == ""
	for {
		if k == nil {
			if wrapped {
				return ring, false
			}
			wrapped = true
			k, _ = c.First()
			continue
		}
		lane, _, ok := splitOutboxKey(k)
		if !ok {
			k, _ = c.Next() // not an outbox key of this schema: never written, but never a loop
			continue
		}
		if wrapped && after != "" && lane > after {
			return ring, false // round the whole ring
		}
		if len(ring) == n {
			return ring, true
		}
		ring = append(ring, lane)
		k, _ = c.Seek(append([]byte(lane), sep+1))
	}
}
