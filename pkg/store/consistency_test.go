package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
)

// checkConsistency verifies, white-box, that every index and counter agrees with the data it
// describes. Tests run it whenever they close a store (see openAt and reopen).
func checkConsistency(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(btx kv.Tx) error {
		counters := map[string]int{}
		_ = btx.Bucket(bucketCounters).ForEach(func(k, v []byte) error {
			counters[string(k)] = int(binary.BigEndian.Uint64(v))
			return nil
		})
		want := map[string]int{}

		// Marks and their time index are in one-to-one correspondence.
		marks, byTime := btx.Bucket(bucketMarks), btx.Bucket(bucketMarksByTime)
		_ = marks.ForEach(func(k, v []byte) error {
			parts := strings.SplitN(string(k), "\x00", 3)
			want[markCounter(parts[0], parts[1])]++
			if byTime.Get(markTimeKey(parts[0], parts[1], parts[2], v)) == nil {
				t.Errorf("mark %q has no time index entry", k)
			}
			return nil
		})
		if m, i := marks.KeyN(), byTime.KeyN(); m != i {
			t.Errorf("%d marks but %d time index entries", m, i)
		}

		// Each closed incident has exactly its index entry, and each incident JSON document belongs
		// to exactly one incident.
		incidents, closed := btx.Bucket(bucketIncidents), btx.Bucket(bucketIncidentsClosed)
		docs := btx.Bucket(bucketIncidentDocs)
		referenced := 0
		_ = incidents.ForEach(func(k, v []byte) error {
			inst, _, _, err := splitIncidentKey(k)
			if err != nil {
				t.Error(err)
				return nil
			}
			want[incidentCounter(inst)]++
			h, err := decodeHead(v)
			if err != nil {
				t.Errorf("incident %q: %v", k, err)
				return nil
			}
			if h.docSeq != 0 {
				referenced++
				if docs.Get(seqKey(h.docSeq)) == nil {
					t.Errorf("incident %q: document %d is missing", k, h.docSeq)
				}
			}
			if h.closedAt != nil {
				want[counterClosed]++
				if got := closed.Get(closedKey(*h.closedAt, h.closedSeq)); !bytes.Equal(got, k) {
					t.Errorf("closed incident %q: retention index entry %d holds %q", k, h.closedSeq, got)
				}
			} else if h.closedSeq != 0 {
				t.Errorf("open incident %q refers to retention index entry %d", k, h.closedSeq)
			}
			return nil
		})
		if n := docs.KeyN(); n != referenced {
			t.Errorf("%d incident documents for %d references (orphans)", n, referenced)
		}
		// Every value is in a form schema 7 reads: documents JSON as it is (with or without the
		// codec byte schema 6 wrote, or S2-compressed, as the migration from schema 4 leaves
		// them), outbox values and dead letters' payloads the event line.
		_ = docs.ForEach(func(k, v []byte) error {
			if len(v) == 0 || v[0] != plainJSON && v[0] != codecRaw && v[0] != codecS2 {
				t.Errorf("document %x is neither JSON, codec raw nor S2", k)
			} else if doc, err := unpack(v); err != nil {
				t.Errorf("document %x: %v", k, err)
			} else if !json.Valid(doc) {
				t.Errorf("document %x is not JSON: %.80q", k, doc)
			}
			return nil
		})
		if n := closed.KeyN(); n != want[counterClosed] {
			t.Errorf("%d retention index entries for %d closed incidents", n, want[counterClosed])
		}

		for _, q := range []struct {
			bucket []byte
			prefix string
		}{{bucketOutbox, "outbox\x00"}, {bucketDead, "dead\x00"}} {
			parent := btx.Bucket(q.bucket)
			_ = parent.ForEachBucket(func(name []byte) error {
				if n := parent.Bucket(name).KeyN(); n > 0 {
					want[q.prefix+string(name)] = n
				}
				return parent.Bucket(name).ForEach(func(k, v []byte) error {
					if q.prefix == "dead\x00" {
						_, v, _ = unframe(v)
					} else if lane, _, ok := splitOutboxKey(k); !ok {
						t.Errorf("outbox %s: key %x is not instance 0 seq", name, k)
					} else {
						want[laneCounter(string(name), lane)]++
					}
					if _, err := outboxLine(v); err != nil {
						t.Errorf("%s%s item %x: %v", q.prefix, name, k, err)
					}
					return nil
				})
			})
		}

		refetch, due := btx.Bucket(bucketRefetch), btx.Bucket(bucketRefetchDue)
		_ = refetch.ForEach(func(k, v []byte) error {
			want[counterRefetch]++
			inst, _, _ := splitKey2(k)
			want[refetchInstanceCounter(inst)]++
			var rec refetchRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				t.Errorf("refetch %q: %v", k, err)
			} else if got := due.Get(refetchDueKey(rec)); !bytes.Equal(got, k) {
				t.Errorf("refetch %q: due index holds %q", k, got)
			}
			return nil
		})
		if n := due.KeyN(); n != want[counterRefetch] {
			t.Errorf("%d due index entries for %d queued refetches", n, want[counterRefetch])
		}

		// Rejected-issue records are counted per instance (the bucket exists once one was made).
		if rejected := btx.Bucket(bucketRejected); rejected != nil {
			_ = rejected.ForEach(func(k, v []byte) error {
				inst, _, _ := splitKey2(k)
				want[rejectedCounter(inst)]++
				var r RejectedIssue
				if err := json.Unmarshal(v, &r); err != nil || r.Instance != inst {
					t.Errorf("rejected issue %q: instance %q, %v", k, r.Instance, err)
				}
				return nil
			})
		}

		for k, n := range want {
			if counters[k] != n {
				t.Errorf("counter %q = %d, data says %d", k, counters[k], n)
			}
		}
		for k, n := range counters {
			if _, ok := want[k]; !ok {
				t.Errorf("counter %q = %d for data that does not exist", k, n)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) && !errors.Is(err, etcdkv.ErrClosed) {
		t.Errorf("consistency check: %v", err)
	}
}
