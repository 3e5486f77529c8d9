package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// Tx.Wrote is true once the transaction has changed something, and only then; PageWrites grows
// with a commit and not with a rollback.
func TestTxWroteAndPageWrites(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	if err := st.Update(func(tx *Tx) error {
		return tx.PutMark("default", "updates", "a|1", at)
	}); err != nil {
		t.Fatal(err)
	}

	errRollback := errors.New("rollback")
	writes := st.PageWrites()
	err = st.Update(func(tx *Tx) error {
		// Reads, a prune with nothing to prune, a delete of nothing: no change.
		if _, _, err := tx.Checkpoint("default", "updates"); err != nil {
			return err
		}
		if _, err := tx.HasMark("default", "updates", "a|1"); err != nil {
			return err
		}
		if n, err := tx.PruneMarks("default", "updates", at.Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("prune: %d, %v", n, err)
		}
		if err := tx.DeleteCheckpoint("default", "updates"); err != nil {
			return err
		}
		if tx.Wrote() {
			t.Error("Wrote is true after reads only")
		}
		if err := tx.PutCheckpoint("default", "updates", Checkpoint{Watermark: at}); err != nil {
			return err
		}
		if !tx.Wrote() {
			t.Error("Wrote is false after a put")
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("update: %v", err)
	}
	if got := st.PageWrites(); got != writes {
		t.Fatalf("a rolled-back transaction wrote %d pages", got-writes)
	}

	if err := st.Update(func(tx *Tx) error {
		if _, err := tx.PruneMarks("default", "updates", at.Add(time.Hour)); err != nil {
			return err
		}
		if !tx.Wrote() {
			t.Error("Wrote is false after a prune that deleted a mark (and its counter)")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st.PageWrites() == writes {
		t.Fatal("a commit wrote no page")
	}
	if err := st.View(func(tx *Tx) error {
		if tx.Wrote() {
			t.Error("Wrote is true in a read transaction")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
