package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkCommitPage measures what the feed engine does per page, with fsync on: for 200 issues it
// reads the mark and the incident, then writes 200 incidents, 200 marks, 200 events into each of two
// outboxes and the checkpoint, in one transaction. The dispatcher's acks run outside the timer so
// the outbox stays at a steady depth, as in production. The nosync variants isolate the CPU cost
// from the disk's fsync latency (which dominates and varies with the machine's load).
func BenchmarkCommitPage(b *testing.B) {
	for _, nosync := range []bool{false, true} {
		for _, size := range []int{1 << 10, 4 << 10} {
			name := fmt.Sprintf("incident=%dKiB", size>>10)
			if nosync {
				name += "/nosync"
			}
			b.Run(name, func(b *testing.B) { benchCommitPage(b, size, nosync) })
		}
	}
}

func benchCommitPage(b *testing.B, incidentSize int, nosync bool) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{NoSync: nosync})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const page = 200
	sinks := []string{"file", "xsoar"}
	incident := []byte(`{"name":"rule","pad":"` + strings.Repeat("x", incidentSize) + `"}`)
	event := []byte(`{"event_id":"e","kind":"created","incident":` + string(incident) + "}\n")
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	var lastSeqs []uint64
	var pagesWritten int64
	b.SetBytes(int64(page * (len(incident) + len(sinks)*len(event))))
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		seqs := lastSeqs[:0:0]
		before := writes(s)
		err := s.Update(func(tx *Tx) error {
			var wm time.Time
			for i := range page {
				id := fmt.Sprintf("00000000-0000-4000-8000-%012d", n*page+i)
				ts := base.Add(time.Duration(n*page+i) * time.Millisecond)
				if ok, err := tx.HasMark("default", "created", id); err != nil || ok {
					return fmt.Errorf("mark %s: %v %w", id, ok, err)
				}
				if _, _, err := tx.IncidentAt("default", id, ts); err != nil {
					return err
				}
				rec := &IncidentRecord{
					Instance: "default", IssueID: id, Status: "OPEN", StatusChangedAt: &ts, CreatedAt: ts,
					Incident: incident, Version: 1, LastEventID: id, FirstSeen: ts, UpdatedAt: ts,
				}
				if err := tx.PutIncident(rec); err != nil {
					return err
				}
				if err := tx.PutMark("default", "created", id, ts); err != nil {
					return err
				}
				for _, sink := range sinks {
					seq, err := tx.Enqueue(sink, "default", event)
					if err != nil {
						return err
					}
					if sink == sinks[0] {
						seqs = append(seqs, seq)
					}
				}
				wm = ts
			}
			// As the engine does: marks older than the watermark minus twice the overlap go.
			if _, err := tx.PruneMarks("default", "created", wm.Add(-2*page*time.Millisecond)); err != nil {
				return err
			}
			return tx.PutCheckpoint("default", "created", Checkpoint{Watermark: wm, WindowAfter: base, Cursor: "c", UpdatedAt: wm})
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		pagesWritten += writes(s) - before
		for _, sink := range sinks {
			if err := s.Ack(sink, laneItems("default", lastSeqs...)...); err != nil {
				b.Fatal(err)
			}
		}
		lastSeqs = seqs
		b.StartTimer()
	}
	b.StopTimer()
	st, err := s.Stats()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.FileSize)/float64(st.Incidents["default"]), "filebytes/incident")
	b.ReportMetric(float64(pagesWritten)/float64(b.N), "pagewrites/op")
}

// BenchmarkPruneMarks measures pruning one page's worth (200) of old marks from a feed holding 20 000.
func BenchmarkPruneMarks(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	put := func(from, to int) {
		if err := s.Update(func(tx *Tx) error {
			for i := from; i < to; i++ {
				if err := tx.PutMark("default", "updates", fmt.Sprintf("issue-%d", i), base.Add(time.Duration(i)*time.Second)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	put(0, 20000)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		var pruned int
		if err := s.Update(func(tx *Tx) error {
			var err error
			pruned, err = tx.PruneMarks("default", "updates", base.Add(time.Duration((n+1)*200)*time.Second))
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if pruned != 200 {
			b.Fatalf("pruned %d, want 200", pruned)
		}
		b.StopTimer()
		put(20000+n*200, 20000+(n+1)*200) // keep the feed at 20 000 marks
		b.StartTimer()
	}
}

// writes is bbolt's running count of page writes.
func writes(s *Store) int64 {
	st := s.bolt.Stats()
	return st.TxStats.GetWrite()
}
