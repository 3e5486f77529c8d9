package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// TestTenantsAtScale measures issue 19's tenant targets: N instances of 200 issues each in one
// daemon against one in-process simulator (every instance uses the simulator's client and reads the
// same 200 issues; each keeps its own checkpoints and dedup keys in the shared store under its
// name), at interval 1m with a JSONL sink. It reports the time until every instance's first fetch
// completed, the memory at the end of the backfill, and the CPU used over 60 s of idle afterwards
// (the process's getrusage, which includes the simulator answering the idle fetches). It takes a
// few minutes, so it runs only when asked:
//
//	WIZFETCH_TENANTS=1000 go test -run TestTenantsAtScale -v -count=1 -timeout 30m ./pkg/app/
//
// WIZFETCH_TENANTS_HEAP=/path writes a heap profile at the end of the backfill, and
// WIZFETCH_TENANTS_CPU=/path a CPU profile of the idle minute.
func TestTenantsAtScale(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv("WIZFETCH_TENANTS"), &n); err != nil || n <= 0 {
		t.Skip("set WIZFETCH_TENANTS=N to run N instances of 200 issues in one process")
	}
	const perTenant = 200
	sim := startSim(t, wizsim.Options{Issues: perTenant, Seed: 19})
	dir := t.TempDir()
	cfg := testConfig(sim, dir, perTenant)
	cfg.Sinks[0].MaxPending = 4 * n * perTenant
	base := cfg.Instances[0]
	base.Fetch.Interval = config.Duration(time.Minute)
	cfg.Instances = make([]config.Instance, n)
	for i := range cfg.Instances {
		inst := base
		inst.Name = fmt.Sprintf("tenant-%04d", i)
		cfg.Instances[i] = inst
	}
	t.Logf("before the daemon: %s", memLine())

	var mu sync.Mutex
	firstFetch := map[string]time.Duration{} // instance → first completed fetch (any feed)
	backfilled := map[string]bool{}          // instance → its created feed closed without backlog
	fetchErrs, created := 0, 0
	// Lateness of fetch starts after the backfill: a fetch is due an interval after the previous
	// one ended (at once after one that left a backlog); it starts when its result's Duration
	// says, counted back from when it was observed. The schedule's alignment
	// (schedule.DefaultAlign) counts as lateness here: the user sees it.
	type feedKey struct{ instance, feed string }
	lastEnd, lastBacklog := map[feedKey]time.Time{}, map[feedKey]bool{}
	var idleSince time.Time
	var maxLate time.Duration
	lateFetches, idleFetches := 0, 0
	start := time.Now()
	onFetch := func(instance, feedName string, res feed.Result, err error) {
		mu.Lock()
		defer mu.Unlock()
		now, k := time.Now(), feedKey{instance, feedName}
		began := now.Add(-res.Duration)
		if prev, ok := lastEnd[k]; ok && !idleSince.IsZero() && began.After(idleSince) {
			due := prev.Add(base.Fetch.Interval.D())
			if lastBacklog[k] {
				due = prev
			}
			late := began.Sub(due)
			maxLate = max(maxLate, late)
			idleFetches++
			if late > 2*time.Second {
				lateFetches++
			}
		}
		if err != nil {
			delete(lastEnd, k) // the next one is due after a backoff, not an interval
			fetchErrs++
			return
		}
		lastEnd[k], lastBacklog[k] = now, res.Backlog
		if _, ok := firstFetch[instance]; !ok {
			firstFetch[instance] = time.Since(start)
		}
		created += res.Created
		if feedName == feed.Created && !res.Backlog {
			backfilled[instance] = true
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Config: cfg, Mode: schedule.Daemon, Logger: slog.New(slog.DiscardHandler),
			OnFetch: onFetch,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("daemon did not stop within 60s")
		}
	})

	jsonl := filepath.Join(dir, "incidents.jsonl")
	var allFirst time.Duration
	for {
		select {
		case err := <-done:
			t.Fatalf("daemon stopped: %v", err)
		default:
		}
		mu.Lock()
		nFirst, nBack, nCreated, nErr := len(firstFetch), len(backfilled), created, fetchErrs
		if nFirst == n && allFirst == 0 {
			for _, d := range firstFetch {
				allFirst = max(allFirst, d)
			}
		}
		mu.Unlock()
		if nBack == n && streamLines(jsonl) >= nCreated {
			break
		}
		if time.Since(start) > 20*time.Minute {
			t.Fatalf("after 20 minutes: %d first fetches, %d backfilled, %d created, %d lines, %d fetch errors",
				nFirst, nBack, nCreated, streamLines(jsonl), nErr)
		}
		time.Sleep(250 * time.Millisecond)
	}
	backfill := time.Since(start)
	mu.Lock()
	t.Logf("%d instances × %d issues: every instance's first fetch completed within %s (target 10s); backfill and delivery done in %s; %d events; %d fetch errors",
		n, perTenant, allFirst.Round(time.Millisecond), backfill.Round(time.Millisecond), created, fetchErrs)
	mu.Unlock()
	t.Logf("end of backfill: %s", memLine())
	if p := os.Getenv("WIZFETCH_TENANTS_HEAP"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}

	if p := os.Getenv("WIZFETCH_TENANTS_CPU"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	mu.Lock()
	idleSince = time.Now()
	mu.Unlock()
	before, wall := cpuTime(t), time.Now()
	time.Sleep(60 * time.Second)
	used, elapsed := cpuTime(t)-before, time.Since(wall)
	t.Logf("idle at interval 1m: %s CPU over %s = %.2f%% of one core (target 2%%); %s",
		used.Round(time.Millisecond), elapsed.Round(time.Millisecond), 100*used.Seconds()/elapsed.Seconds(), memLine())
	mu.Lock()
	t.Logf("fetch starts in the idle minute: %d fetches, the latest %s after it was due, %d more than 2s late (target: none)",
		idleFetches, maxLate.Round(time.Millisecond), lateFetches)
	mu.Unlock()
}

// streamLines counts the file's lines through a small buffer: countLines reads the whole file,
// which at this scale (hundreds of MiB) would dominate the heap being measured.
func streamLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n := 0
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte("\n"))
		if err != nil {
			return n
		}
	}
}

// cpuTime is the process's user+system CPU so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memLine reports /proc/self/status's memory lines and the Go runtime's view.
func memLine() string {
	var parts []string
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			for _, k := range []string{"VmHWM:", "VmRSS:", "RssAnon:", "RssFile:"} {
				if strings.HasPrefix(l, k) {
					parts = append(parts, strings.Join(strings.Fields(l), " "))
				}
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	parts = append(parts, fmt.Sprintf("heap_inuse %.1f MiB, stack_inuse %.1f MiB, sys %.1f MiB, goroutines %d",
		float64(ms.HeapInuse)/(1<<20), float64(ms.StackInuse)/(1<<20), float64(ms.Sys)/(1<<20), runtime.NumGoroutine()))
	return strings.Join(parts, ", ")
}
