package store

import (
	"errors"
	"fmt"
	"os"
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
	// The disk frees up (bbolt reads MaxSize at each allocation). The last commit's failure still
	// tells until a commit is tried: nothing wrote, and the probe is not due yet.
	st.bolt.MaxSize = 0
	if st.WriteHealth() == nil {
		t.Fatal("healthy again before any write was tried")
	}
	// An idle store (no commit tried for probeAfter) probes with a small write of its own.
	now = now.Add(probeAfter)
	if err := st.WriteHealth(); err != nil {
		t.Fatalf("the probe did not clear the failure: %v", err)
	}
	// Full again; then a real commit after space is back clears the failure at once.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st.bolt.MaxSize = int(fi.Size())
	failed = nil
	for i := 64; i < 128 && failed == nil; i++ {
		failed = st.Update(func(tx *Tx) error { return tx.PutSinkState("s", fmt.Sprint("k", i), big) })
	}
	if failed == nil || st.WriteHealth() == nil {
		t.Fatalf("the store did not fail again: %v", failed)
	}
	st.bolt.MaxSize = 0
	if err := st.Update(func(tx *Tx) error { return tx.PutSinkState("s", "tiny", []byte("x")) }); err != nil {
		t.Fatalf("a commit with space back: %v", err)
	}
	if err := st.WriteHealth(); err != nil {
		t.Fatalf("still unhealthy after a successful commit: %v", err)
	}
}
