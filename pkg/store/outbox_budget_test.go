package store

import (
	"strings"
	"testing"
)

// TestOutboxReadIsBoundedInBytes: one outbox read stops once MaxBatchBytes of events are in hand,
// whatever the count limit, yet always returns at least one event, however large.
func TestOutboxReadIsBoundedInBytes(t *testing.T) {
	st := openTest(t)
	big := []byte(`{"event_id":"e","pad":"` + strings.Repeat("x", 3<<20) + `"}`)
	huge := []byte(`{"event_id":"h","pad":"` + strings.Repeat("y", MaxBatchBytes+1) + `"}`)
	if err := st.Update(func(tx *Tx) error {
		if _, err := tx.Enqueue("s", "default", huge); err != nil {
			return err
		}
		for i := 0; i < 10; i++ {
			if _, err := tx.Enqueue("s", "default", big); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	items, err := st.Outbox("s", 0, 500)
	if err != nil || len(items) != 1 || len(items[0].Data) != len(huge) {
		t.Fatalf("first read: %d items, %v; want the huge event alone", len(items), err)
	}
	items, err = st.Outbox("s", items[0].Seq, 500)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, it := range items {
		total += len(it.Data)
	}
	if len(items) == 0 || len(items) == 10 || total-len(items[len(items)-1].Data) >= MaxBatchBytes {
		t.Fatalf("second read: %d items, %d bytes; want a byte-bounded batch", len(items), total)
	}
}
