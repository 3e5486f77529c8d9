package store

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// refEvent commits an event of incident i1 whose JSON is doc, by reference, to sinks.
func refEvent(t *testing.T, s *Store, eventID, doc string, closedAt *time.Time, sinks ...string) {
	t.Helper()
	mustUpdate(t, s, func(tx *Tx) error {
		rec, _, err := tx.IncidentAt("default", "i1", refCreated)
		if err != nil {
			return err
		}
		if rec == nil {
			rec = &IncidentRecord{Instance: "default", IssueID: "i1", CreatedAt: refCreated, FirstSeen: refCreated}
		}
		rec.Status, rec.LastEventID, rec.ClosedAt = "OPEN", eventID, closedAt
		rec.Incident = []byte(doc)
		rec.PackedIncident = AppendPackedIncident(nil, rec.Incident)
		rec.Version++
		var arena []byte
		return tx.PutIncidentAndEnqueue(rec, sinks, []byte(`{"event_id":"`+eventID+`","incident":`), []byte("}"), &arena)
	})
}

var refCreated = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func refLine(eventID, doc string) string {
	return `{"event_id":"` + eventID + `","incident":` + doc + "}"
}

// outboxLines returns the lines of sink's outbox, and checks that each value refers to its incident
// (codecDocRef) or holds it (codecEvent) as want says, in order.
func outboxLines(t *testing.T, s *Store, sink string, wantCodecs ...byte) []string {
	t.Helper()
	items, err := s.Outbox(sink, 0, 0)
	if err != nil {
		t.Fatalf("outbox %s: %v", sink, err)
	}
	var lines []string
	for _, it := range items {
		lines = append(lines, string(it.Data))
	}
	var codecs []byte
	mustView(t, s, func(tx *Tx) error {
		parent, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		return parent.Bucket([]byte(sink)).ForEach(func(_, v []byte) error {
			codecs = append(codecs, v[0])
			return nil
		})
	})
	if !bytes.Equal(codecs, wantCodecs) {
		t.Errorf("outbox %s value codecs %v, want %v", sink, codecs, wantCodecs)
	}
	return lines
}

func docCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	mustView(t, s, func(tx *Tx) error {
		docs, err := tx.bucket(bucketIncidentDocs)
		if err != nil {
			return err
		}
		n = docs.Stats().KeyN
		return nil
	})
	return n
}

// An event stored by reference reads back as its whole line; when its incident's document is replaced
// or pruned before delivery, or the event is dead-lettered, the event keeps the incident it was
// emitted with.
func TestEventsByReference(t *testing.T) {
	s := openTest(t)
	v1, v2, v3 := `{"name":"first"}`, `{"name":"second","x":[1,2,3]}`, `{"name":"third"}`

	refEvent(t, s, "e1", v1, nil, "file", "hook")
	if got := outboxLines(t, s, "file", codecDocRef); !reflect.DeepEqual(got, []string{refLine("e1", v1)}) {
		t.Fatalf("file outbox = %q", got)
	}
	mustView(t, s, func(tx *Tx) error {
		rec, _, err := tx.IncidentAt("default", "i1", refCreated)
		if err != nil {
			return err
		}
		if string(rec.Incident) != v1 {
			t.Errorf("incident JSON %q, want %q", rec.Incident, v1)
		}
		return nil
	})

	// A second event before the first is delivered: the first gets a copy of v1, the second refers
	// to v2, and v1's document is gone.
	refEvent(t, s, "e2", v2, nil, "file", "hook")
	want := []string{refLine("e1", v1), refLine("e2", v2)}
	for _, sink := range []string{"file", "hook"} {
		if got := outboxLines(t, s, sink, codecEventDict1, codecDocRef); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s outbox = %q, want %q", sink, got, want)
		}
	}
	if n := docCount(t, s); n != 1 {
		t.Fatalf("%d incident documents, want 1", n)
	}

	// The freshest JSON without an event (PutIncident) replaces v2: e2 keeps v2.
	mustUpdate(t, s, func(tx *Tx) error {
		rec, _, err := tx.IncidentAt("default", "i1", refCreated)
		if err != nil {
			return err
		}
		rec.Incident, rec.PackedIncident = []byte(v3), nil
		return tx.PutIncident(rec)
	})
	if got := outboxLines(t, s, "file", codecEventDict1, codecEventDict1); !reflect.DeepEqual(got, want) {
		t.Fatalf("file outbox after PutIncident = %q, want %q", got, want)
	}

	// A dead letter holds its incident itself.
	refEvent(t, s, "e3", v1, nil, "hook")
	items, err := s.Outbox("hook", 0, 0)
	if err != nil || len(items) != 3 {
		t.Fatalf("hook outbox: %v, %v", items, err)
	}
	if err := s.MoveToDeadLetter("hook", items[2].Seq, "gave up", 3); err != nil {
		t.Fatal(err)
	}
	refEvent(t, s, "e4", v2, nil, "hook") // replaces e3's document
	dead, err := s.DeadLetters("hook", 0)
	if err != nil || len(dead) != 1 || string(dead[0].Data) != refLine("e3", v1) {
		t.Fatalf("dead letters = %+v, %v", dead, err)
	}
	if n, err := s.RequeueAllDeadLetters("hook"); err != nil || n != 1 {
		t.Fatalf("requeue: %d, %v", n, err)
	}
	if got := outboxLines(t, s, "hook", codecEventDict1, codecEventDict1, codecDocRef, codecEventDict1); got[3] != refLine("e3", v1) || got[2] != refLine("e4", v2) {
		t.Fatalf("hook outbox after the requeue = %q", got)
	}

	// Pruning the closed incident while its last event waits: the event keeps its incident.
	closed := refCreated.Add(time.Hour)
	refEvent(t, s, "e5", v3, &closed, "file")
	mustUpdate(t, s, func(tx *Tx) error {
		n, err := tx.PruneClosedIncidents(closed.Add(48 * time.Hour))
		if n != 1 {
			return fmt.Errorf("pruned %d incidents, want 1 (%w)", n, err)
		}
		return err
	})
	if n := docCount(t, s); n != 0 {
		t.Fatalf("%d incident documents after the prune, want 0", n)
	}
	got := outboxLines(t, s, "file", codecEventDict1, codecEventDict1, codecEventDict1)
	if got[2] != refLine("e5", v3) {
		t.Fatalf("file outbox after the prune = %q", got)
	}
}

// Only heads with refs carry the refs section, so heads without refs keep schema 3's bytes.
func TestHeadRefsRoundTrip(t *testing.T) {
	at := refCreated
	for _, h := range []incidentHead{
		{docSeq: 7, version: 2, status: "OPEN", lastEventID: "e", firstSeen: at, updatedAt: at},
		{docSeq: 9, closedSeq: 3, version: 1, status: "RESOLVED", firstSeen: at, updatedAt: at, closedAt: &at,
			refs: []outboxRef{{sink: "file", seq: 1}, {sink: "xsoar-prod", seq: 1 << 40}}},
	} {
		b := appendHead(nil, &h)
		got, err := decodeHead(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Errorf("decoded %+v, want %+v", got, h)
		}
		if _, err := decodeHead(b[:len(b)-1]); err == nil {
			t.Errorf("a truncated head decoded")
		}
	}
}

// A lookup that finds an incident missing lets the next put skip its own lookup, but only once: a
// second put in the same transaction replaces the first (one incident, one document).
func TestAbsentLookupThenPuts(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if known, err := tx.HasIncidentAt("default", "i1", refCreated); err != nil || known {
			return fmt.Errorf("known %v, %w", known, err)
		}
		for _, doc := range []string{`{"v":1}`, `{"v":2}`} {
			rec := &IncidentRecord{Instance: "default", IssueID: "i1", CreatedAt: refCreated, Status: "OPEN", Incident: []byte(doc)}
			if err := tx.PutIncident(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if n := docCount(t, s); n != 1 {
		t.Fatalf("%d documents, want 1", n)
	}
	mustView(t, s, func(tx *Tx) error {
		if n, err := tx.IncidentCount("default"); err != nil || n != 1 {
			t.Errorf("incident count %d (%v), want 1", n, err)
		}
		return nil
	})
}
