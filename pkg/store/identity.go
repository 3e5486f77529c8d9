package store

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// An issue's identity is its id. Incidents are keyed by (createdAt, id) for the created feed's sake
// (see the package doc), and Wiz never changes an issue's createdAt — but when a node comes back
// with another one (a bogus 2999-01-01 later corrected, say), a lookup by (createdAt, id) alone
// misses the incident, and the issue would look new: a second `created` with the same event_id
// (issue 17). FindIncident and KnownIssue find the incident by id whatever createdAt the caller has.
//
// A persistent id index would cost every new incident a write at a random place of a B-tree (a
// backfill would dirty a leaf per issue, the cost the createdAt key was chosen to avoid). Instead
// the store keeps, in memory, a set of 64-bit hashes of the (instance, issue id) of every incident
// (idSet, 48 bits of each kept): the set answers "certainly no incident of that id" for the new
// issues that make nearly every miss, in a map lookup and a binary search, and only a hit — an
// incident stored under another createdAt, or, once in 2^48 / incidents, a collision — walks the
// index heads by id (Tx.Incident). What such a walk finds is remembered (moved), so a node that
// keeps a changed createdAt costs one walk per process. (A persistent index keyed by id, tried for
// issue 18, cost 7 % more CPU per issue at 12k and 58 % more at 200k: BENCHMARKS.md.)
//
// The set is built from the incidents index by the first write transaction that needs it, and then
// kept in step by putIncident, the only writer of heads; it is only built in write transactions,
// which the engine serialises, so no commit can slip between the walk and the set. A rolled-back
// transaction or a pruned incident leaves its hash behind: a false "maybe", which only costs a walk.
// Memory: about 4 to 4.7 bytes per incident, and a fixed 256 KiB (idSet).
//
// On an engine that replicas share (OpenKV), another replica may lead for a while and store
// incidents this Store's set never saw; a "certainly not" would then be wrong. So there the meta key
// "ids_owner" names the Store whose set holds every incident: a write transaction that stores a new
// incident or consults the set first makes it this Store's, dropping the set (to be rebuilt) when
// another Store owned it; a read transaction that finds another owner walks instead.
type issueIndex struct {
	mu    sync.Mutex
	built bool
	seed  maphash.Seed
	set   *idSet
	// moved remembers, for issues found under another createdAt than the one asked for, the
	// createdAt their incident is keyed by (instance NUL issue id -> createdAt).
	moved map[string]time.Time
	// walks counts the walks of the heads by id (findMoved): a new issue must cost none.
	walks atomic.Int64
}

// maxMoved bounds issueIndex.moved: past it the memory is dropped (and rebuilt walk by walk).
const maxMoved = 4096

func (x *issueIndex) hash(instance, issueID string) uint64 {
	var h maphash.Hash
	h.SetSeed(x.seed)
	h.WriteString(instance)
	h.WriteByte(sep)
	h.WriteString(issueID)
	return h.Sum64()
}

// add records an incident of (instance, issueID); before the set is built there is nothing to do
// (the build reads the index).
func (x *issueIndex) add(instance, issueID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.built {
		return
	}
	x.set.add(x.hash(instance, issueID))
}

// mayHave reports whether (instance, issueID) may have an incident; false is certain. It builds
// the set first when tx can (a write transaction); ok is false when it cannot, and the caller
// must look the issue up by walking.
func (x *issueIndex) mayHave(tx *Tx, instance, issueID string) (maybe, ok bool, err error) {
	if owned, err := tx.ownIndex(); err != nil || !owned {
		return false, false, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.built {
		if !tx.ktx.Writable() {
			return false, false, nil
		}
		if err := x.build(tx); err != nil {
			return false, false, err
		}
	}
	return x.set.has(x.hash(instance, issueID)), true, nil
}

// build fills the set from the incidents index, as tx sees it.
func (x *issueIndex) build(tx *Tx) error {
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return err
	}
	x.seed = maphash.MakeSeed()
	set, err := buildIDSet(func(add func(uint64)) error {
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			instance, _, issueID, err := splitIncidentKey(k)
			if err != nil {
				return fmt.Errorf("index incident ids: %w", err)
			}
			add(x.hash(instance, issueID))
		}
		return nil
	})
	if err != nil {
		return err
	}
	x.set, x.built = set, true
	return nil
}

// reset drops the set (and what it remembers); the next write transaction that needs it rebuilds it.
func (x *issueIndex) reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.built, x.set, x.moved = false, nil, nil
}

func (x *issueIndex) movedTo(instance, issueID string) (time.Time, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	t, ok := x.moved[instance+"\x00"+issueID]
	return t, ok
}

func (x *issueIndex) setMoved(instance, issueID string, createdAt time.Time, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	key := instance + "\x00" + issueID
	if !ok {
		delete(x.moved, key)
		return
	}
	if x.moved == nil || len(x.moved) >= maxMoved {
		x.moved = map[string]time.Time{}
	}
	x.moved[key] = createdAt
}

// noteIncident keeps the id set in step with a new incident head (putIncident). The migration's
// transactions (before Open returns) have no store, and need not: the set is built later.
func (tx *Tx) noteIncident(instance, issueID string) error {
	if tx.store == nil {
		return nil
	}
	if _, err := tx.ownIndex(); err != nil {
		return err
	}
	tx.store.ids.add(instance, issueID)
	return nil
}

// keyIndexOwner is the meta key naming the Store whose id set holds every incident (shared engines).
var keyIndexOwner = []byte("ids_owner")

// ownIndex reports whether the id set may answer for tx. It always may on bbolt, which one process
// holds. On a shared engine it may when the meta key "ids_owner" names this Store; else a write
// transaction drops the set, names this Store and may, and a read transaction may not.
func (tx *Tx) ownIndex() (bool, error) {
	s := tx.store
	if s == nil || !s.shared || tx.claimed {
		return true, nil
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(meta.Get(keyIndexOwner), s.id) {
		if !tx.ktx.Writable() {
			return false, nil
		}
		s.ids.reset()
		if err := meta.Put(keyIndexOwner, s.id); err != nil {
			return false, fmt.Errorf("claim the incident id set: %w", err)
		}
	}
	tx.claimed = true
	return true, nil
}

// FindIncident returns a copy of the record of the issue issueID of instance, looked up by id: at
// createdAt first (IncidentAt, the hot path), else wherever it is keyed (see issueIndex). rec.CreatedAt
// is the createdAt the incident is keyed by, which callers must keep when they write it back.
func (tx *Tx) FindIncident(instance, issueID string, createdAt time.Time) (*IncidentRecord, bool, error) {
	rec, ok, err := tx.IncidentAt(instance, issueID, createdAt)
	if ok || err != nil {
		return rec, ok, err
	}
	return tx.findMoved(instance, issueID)
}

// KnownIssue reports whether the issue issueID of instance has an incident, whatever its createdAt:
// FindIncident without decoding the incident in the common case.
func (tx *Tx) KnownIssue(instance, issueID string, createdAt time.Time) (bool, error) {
	ok, err := tx.HasIncidentAt(instance, issueID, createdAt)
	if ok || err != nil {
		return ok, err
	}
	_, ok, err = tx.findMoved(instance, issueID)
	return ok, err
}

// findMoved finds the incident of an issue that is not keyed by the createdAt the caller has.
func (tx *Tx) findMoved(instance, issueID string) (*IncidentRecord, bool, error) {
	x := &tx.store.ids
	maybe, indexed, err := x.mayHave(tx, instance, issueID)
	if err != nil {
		return nil, false, fmt.Errorf("read incident: %w", err)
	}
	if indexed && !maybe {
		return nil, false, nil
	}
	if at, ok := x.movedTo(instance, issueID); ok {
		rec, found, err := tx.IncidentAt(instance, issueID, at)
		if found || err != nil {
			return rec, found, err
		}
	}
	x.walks.Add(1)
	rec, found, err := tx.Incident(instance, issueID)
	if err != nil {
		return nil, false, err
	}
	if found {
		x.setMoved(instance, issueID, rec.CreatedAt, true)
	} else {
		x.setMoved(instance, issueID, time.Time{}, false)
	}
	return rec, found, nil
}
