package store

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
)

// Stats summarises the store for `wizfetch status` and metrics. Every figure comes from counters kept
// inside the transactions, so Stats costs O(instances × (feeds + sinks)), not O(records).
type Stats struct {
	Path            string         `json:"path"`
	FileSize        int64          `json:"file_size_bytes"`
	SchemaVersion   int            `json:"schema_version"`
	Checkpoints     int            `json:"checkpoints"`
	Incidents       map[string]int `json:"incidents"`        // per instance
	ClosedIncidents int            `json:"closed_incidents"` // awaiting retention
	Marks           []MarkStat     `json:"marks"`            // per instance and feed
	Outbox          map[string]int `json:"outbox"`           // per sink
	DeadLetters     map[string]int `json:"dead_letters"`     // per sink
	Refetch         int            `json:"refetch"`          // queued, and posted to the inbox (inbox.go)
	// OutboxLanes is the outbox per sink, then per instance (instances without events left out).
	OutboxLanes map[string]map[string]int `json:"outbox_lanes"`
}

// MarkStat is the number of dedup marks of one feed.
type MarkStat struct {
	Instance string `json:"instance"`
	Feed     string `json:"feed"`
	Count    int    `json:"count"`
}

// Stats reads the current figures in one read transaction.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.View(func(tx *Tx) error {
		var err error
		st, err = tx.stats()
		return err
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store stats: %w", err)
	}
	st.Path = s.path
	return st, nil
}

func (tx *Tx) stats() (Stats, error) {
	st := Stats{
		Incidents:   map[string]int{},
		Outbox:      map[string]int{},
		OutboxLanes: map[string]map[string]int{},
		DeadLetters: map[string]int{},
	}
	if btx, ok := tx.ktx.(boltkv.Tx); ok {
		st.FileSize = btx.Bolt().Size() // the file's size is bbolt's; other engines leave it 0
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return st, err
	}
	st.SchemaVersion, _ = strconv.Atoi(string(meta.Get(keySchema)))
	cps, err := tx.bucket(bucketCheckpoints)
	if err != nil {
		return st, err
	}
	st.Checkpoints = cps.KeyN() // a handful of keys: cheap
	counters, err := tx.bucket(bucketCounters)
	if err != nil {
		return st, err
	}
	values := make(map[string]int64)
	err = counters.ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("malformed counter %q", k)
		}
		values[string(k)] = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return st, err
	}
	for k, d := range tx.deltas { // changes not yet flushed by this (write) transaction
		values[k] += d
	}
	for k, v := range values {
		n := int(max(v, 0))
		parts := strings.Split(k, "\x00")
		switch {
		case parts[0] == "incidents" && len(parts) == 2:
			st.Incidents[parts[1]] = n
		case parts[0] == "marks" && len(parts) == 3:
			st.Marks = append(st.Marks, MarkStat{Instance: parts[1], Feed: parts[2], Count: n})
		case parts[0] == "outbox" && len(parts) == 2:
			st.Outbox[parts[1]] = n
		case parts[0] == "outbox" && len(parts) == 3 && n > 0:
			if st.OutboxLanes[parts[1]] == nil {
				st.OutboxLanes[parts[1]] = map[string]int{}
			}
			st.OutboxLanes[parts[1]][parts[2]] = n
		case parts[0] == "dead" && len(parts) == 2:
			st.DeadLetters[parts[1]] = n
		case k == counterClosed:
			st.ClosedIncidents = n
		case k == counterRefetch:
			st.Refetch = n
		}
	}
	st.Refetch += tx.inboxLen()
	slices.SortFunc(st.Marks, func(a, b MarkStat) int {
		return cmp.Or(cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Feed, b.Feed))
	})
	return st, nil
}
