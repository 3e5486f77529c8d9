package store

import (
	"path/filepath"
	"testing"
)

// One buffer backs every sink's copy of an event, and each outbox reads it back intact; a
// buffer not made by EventBuffer is refused.
func TestEnqueueOwned(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	line := `{"event_id":"e1"}`
	err = st.Update(func(tx *Tx) error {
		if err := tx.EnqueueOwned([]string{"a"}, []byte(line)); err == nil {
			t.Error("EnqueueOwned took a buffer not built with AppendEventBuffer")
		}
		return tx.EnqueueOwned([]string{"a", "b"}, append(AppendEventBuffer(nil), line...))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"a", "b"} {
		items, err := st.Outbox(sink, 0, 0)
		if err != nil || len(items) != 1 || string(items[0].Data) != line {
			t.Fatalf("outbox %s = %+v, %v; want the one line", sink, items, err)
		}
	}
	checkConsistency(t, st)
}
