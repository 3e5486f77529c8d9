package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteHealthFollowsFailingCommits: a commit that fails for lack of space makes WriteHealth
// report it; a later successful commit (here the health probe itself, once space is back) clears it.
// A function's own error does not count.
func TestWriteHealthFollowsFailingCommits(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "wizfetch.db")
	st, err := Open(path, Options{NoSync: true, Now: clock, MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(func(*Tx) error { return errors.New("the caller's own error") }); err == nil {
		t.Fatal("the caller's error was lost")
	}
	if err := st.WriteHealth(); err != nil {
		t.Fatalf("a caller's error made the store unhealthy: %v", err)
	}
	big := []byte(strings.Repeat("x", 64<<10))
	var failed error
	for i := 0; i < 64 && failed == nil; i++ {
		failed = st.Update(func(tx *Tx) error { return tx.PutSinkState("s", fmt.Sprint("k", i), big) })
	}
	if failed == nil {
		t.Fatal("the store never filled up")
	}
	health := st.WriteHealth()
	if health == nil || !strings.Contains(health.Error(), "store writes fail") {
		t.Fatalf("WriteHealth = %v after a failed commit", health)
	}
	// An idle store (no commit tried for a while) probes with a small write of its own.
	now = now.Add(probeAfter)
	if err := st.WriteHealth(); err != nil {
		t.Fatalf("the probe did not clear the failure: %v", err)
	}
	now = now.Add(time.Second)
	for i := 64; i < 128 && st.WriteHealth() == nil; i++ {
		_ = st.Update(func(tx *Tx) error { return tx.PutSinkState("s", fmt.Sprint("k", i), big) })
	}
	if st.WriteHealth() == nil {
		t.Fatal("the store never failed again")
	}
	// A small commit fits in the pages freed by earlier transactions: the store takes writes again.
	if err := st.Update(func(tx *Tx) error { return tx.PutSinkState("s", "tiny", []byte("x")) }); err != nil {
		t.Fatalf("a small commit after the failure: %v", err)
	}
	if err := st.WriteHealth(); err != nil {
		t.Fatalf("still unhealthy after a successful commit: %v", err)
	}
}
