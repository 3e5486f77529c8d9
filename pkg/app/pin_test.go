package app

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// TestAnUnreadableCheckpointStopsOnlyItsFeed: pinning every feed's first start at engine start
// (feed.PinFirstStarts) must not turn one feed's unreadable checkpoint into a daemon that fetches
// nothing: the other instance fetches, and the broken feed reports its error on its own.
func TestAnUnreadableCheckpointStopsOnlyItsFeed(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 50, Seed: 31})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	a := cfg.Instances[0]
	a.Name = "a"
	a.Fetch.Interval = config.Duration(time.Second)
	b := a
	b.Name = "b"
	cfg.Instances = []config.Instance{a, b}
	st, err := store.Open(cfg.Store.Path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := bolt.Open(cfg.Store.Path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("checkpoints")).Put([]byte("b\x00created"), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var mu sync.Mutex
	fetched, failed := map[string]int{}, map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Mode: schedule.Daemon, NoServer: true, Logger: slog.New(slog.DiscardHandler),
			RetryBackoff: 50 * time.Millisecond,
			OnFetch: func(instance, feedName string, _ feed.Result, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed[instance+"/"+feedName]++
				} else {
					fetched[instance+"/"+feedName]++
				}
			}})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		ok := fetched["a/created"] > 0 && failed["b/created"] > 0
		mu.Unlock()
		if ok || time.Now().After(deadline) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the daemon ended: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fetched["a/created"] == 0 || failed["b/created"] == 0 || fetched["b/created"] != 0 {
		t.Fatalf("fetched %v, failed %v: want a's feeds fetching and b/created failing on its own", fetched, failed)
	}
}
