package store

import (
	"strings"
	"testing"
)

// TestDeadLetterReasonIsBounded: a receiver's endless reason is kept to MaxReasonLen bytes.
func TestDeadLetterReasonIsBounded(t *testing.T) {
	st := openTest(t)
	var seq uint64
	if err := st.Update(func(tx *Tx) error {
		var err error
		seq, err = tx.Enqueue("s", "default", []byte(`{"event_id":"e"}`))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.MoveToDeadLetter("s", OutboxItem{Instance: "default", Seq: seq}, strings.Repeat("é", 1<<20), 1); err != nil {
		t.Fatal(err)
	}
	dls, err := st.DeadLetters("s", 0)
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters: %v %v", dls, err)
	}
	if r := dls[0].Reason; len(r) > MaxReasonLen+len("…") || !strings.HasPrefix(r, "éé") || !strings.HasSuffix(r, "…") {
		t.Fatalf("reason of %d bytes: %.40q…", len(r), r)
	}
}
