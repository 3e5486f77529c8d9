package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// DemoOptions configure `wizfetch demo`.
type DemoOptions struct {
	Issues   int           // issues the simulator starts with (default 2000)
	Duration time.Duration // 0: until ctx ends
	Dir      string        // store and incidents.jsonl (default ./wizfetch-demo)
	Listen   string        // the daemon's HTTP listener (default 127.0.0.1:0)
	Logger   *slog.Logger
	Out      io.Writer // progress lines
	Version  string
}

// demoChangeRate is the simulator's live churn: new issues and status changes per second (the demo
// promises at least one status change per second among open issues).
const demoChangeRate = 3

// Demo runs the real daemon against an in-process simulator that keeps creating and changing issues,
// writing DIR/incidents.jsonl and printing progress, until ctx ends or Duration passes.
func Demo(ctx context.Context, o DemoOptions) error {
	if o.Issues <= 0 {
		o.Issues = 2000
	}
	if o.Dir == "" {
		o.Dir = defaultDemoDir
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := freshDemoDir(o.Dir); err != nil {
		return err
	}
	sim, err := wizsim.New(wizsim.Options{Issues: o.Issues, Seed: time.Now().UnixNano(), Live: demoChangeRate})
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	defer sim.Close()

	cfg := DemoConfig(sim.GraphQLURL(), sim.TokenURL(), o.Dir, o.Listen)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	jsonl := filepath.Join(o.Dir, "incidents.jsonl")
	fmt.Fprintf(o.Out, "wizfetch demo: simulated Wiz tenant with %d issues at %s (live churn %d/s)\n", o.Issues, sim.URL(), demoChangeRate)
	fmt.Fprintf(o.Out, "fresh store %s, incidents -> %s\n", cfg.Store.Path, jsonl)

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var mu sync.Mutex
	var created, updated int
	err = Run(ctx, Options{
		OnListen: func(url string) { fmt.Fprintf(o.Out, "status page: %s/  (metrics %s/metrics)\n", url, url) },
		Config:   cfg,
		Mode:     schedule.Daemon,
		Logger:   o.Logger,
		Version:  o.Version,
		OnFetch: func(instance, name string, res feed.Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			created += res.Created
			updated += res.Updated
			if err != nil {
				fmt.Fprintf(o.Out, "%s %-7s fetch failed: %v\n", time.Now().Format("15:04:05"), name, err)
				return
			}
			if res.Emitted() > 0 {
				fmt.Fprintf(o.Out, "%s %-7s +%d created +%d updated (total %d created, %d updated) watermark %s\n",
					time.Now().Format("15:04:05"), name, res.Created, res.Updated, created, updated, formatTime(res.Watermark))
			}
		},
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	mu.Lock()
	fmt.Fprintf(o.Out, "demo finished: %d created and %d updated events in %s\n", created, updated, jsonl)
	mu.Unlock()
	return nil
}

// demoMarker names the file that marks a directory as the demo's own.
const demoMarker = ".wizfetch-demo"

// freshDemoDir gives a demo run a fresh store and incidents file in dir (DESIGN.md §4): each run
// simulates a new tenant (a new seed), whose backlog the last run's checkpoints would hide. Only
// what an earlier demo wrote is removed: the directory must be the demo's (its marker file, or the
// default directory's name, which earlier versions wrote without a marker); a store elsewhere is
// somebody's data and refused. A store another process holds (a demo still running) is refused
// too, before anything is removed: the store lock guards the sink's file as well (DESIGN.md §7).
func freshDemoDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	marker := filepath.Join(dir, demoMarker)
	_, markErr := os.Stat(marker)
	switch {
	case errors.Is(markErr, fs.ErrNotExist) && filepath.Base(filepath.Clean(dir)) != defaultDemoDir:
		for _, name := range []string{"wizfetch.db", "incidents.jsonl"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return &DemoDirError{Dir: dir, Reason: "holds a " + name + " the demo did not write; the demo replaces its files on every run"}
			}
		}
	case markErr != nil && !errors.Is(markErr, fs.ErrNotExist):
		return fmt.Errorf("demo directory: %w", markErr)
	}
	db := filepath.Join(dir, "wizfetch.db")
	if _, err := os.Stat(db); err == nil {
		st, err := store.Open(db, store.Options{Timeout: 500 * time.Millisecond})
		if errors.Is(err, store.ErrLocked) {
			return &DemoDirError{Dir: dir, Reason: "is in use by another wizfetch (a demo still running?)"}
		}
		if err == nil {
			_ = st.Close()
		} // a damaged store is the last demo's: replaced like a sound one
	}
	for _, name := range []string{"wizfetch.db", "incidents.jsonl"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("demo directory: replace the last run's %s: %w", name, err)
		}
	}
	if err := os.WriteFile(marker, []byte("written by `wizfetch demo`: each demo run replaces this directory's store and incidents.jsonl\n"), 0o600); err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	return nil
}

// defaultDemoDir is the name of the demo's default directory.
const defaultDemoDir = "wizfetch-demo"

// DemoDirError is a demo directory the demo may not use: a usage error.
type DemoDirError struct{ Dir, Reason string }

func (e *DemoDirError) Error() string {
	return fmt.Sprintf("--dir %s %s; pick another --dir", e.Dir, e.Reason)
}

// DemoConfig is the configuration the demo runs with: one instance against the simulator, a 2 s
// interval, a JSONL sink in dir.
func DemoConfig(apiURL, tokenURL, dir, listen string) *config.Config {
	cfg := config.Default()
	cfg.Wiz.APIURL = apiURL
	cfg.Wiz.AuthURL = tokenURL
	cfg.Wiz.Audience = wizdef.AudienceCognito
	cfg.Wiz.ClientID = "wizsim-client"
	cfg.Wiz.ClientSecret = "wizsim-secret"
	cfg.Wiz.RequestsPerSecond = 20
	cfg.Fetch.Interval = config.Duration(2 * time.Second)
	cfg.Store.Path = filepath.Join(dir, "wizfetch.db")
	cfg.Sinks = []config.Sink{{
		Name: "file", Type: "jsonl", Path: filepath.Join(dir, "incidents.jsonl"),
		MaxPending: 10000, RetryFor: config.Duration(24 * time.Hour), Timeout: config.Duration(30 * time.Second),
	}}
	cfg.Server.Listen = listen
	cfg.Instances = []config.Instance{{Name: "default", Wiz: cfg.Wiz, Fetch: cfg.Fetch, Classify: cfg.Classify, Mapping: cfg.Mapping}}
	return cfg
}
