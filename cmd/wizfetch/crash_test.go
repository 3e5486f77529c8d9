package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// buildBinary compiles wizfetch once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wizfetch")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// extra renders sink list items for writeConfig.
func extra(items []string) string {
	out := ""
	for _, it := range items {
		out += "  - " + it + "\n"
	}
	return out
}

// crashSeed is WIZFETCH_CRASH_SEED when set (to replay a run), else a fresh seed.
func crashSeed() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("WIZFETCH_CRASH_SEED"), 10, 64); err == nil {
		return s
	}
	return uint64(time.Now().UnixNano())
}

// startFrozenSim starts a simulator whose clock stands 10 minutes after generation, so every issue is
// visible and the expected set is fixed; it returns the frozen time.
func startFrozenSim(t *testing.T, issues int, seed uint64, faults string) (*wizsim.Server, time.Time) {
	t.Helper()
	frozen := time.Now().Add(10 * time.Minute)
	sim, err := wizsim.New(wizsim.Options{
		Issues: issues, Seed: int64(seed % (1 << 62)), Now: func() time.Time { return frozen }, Faults: faults,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, frozen
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// simWizConfig is the wiz: section of a daemon's config that reaches sim without a rate limit.
func simWizConfig(sim *wizsim.Server) string {
	return fmt.Sprintf(`wiz:
  api_url: %s
  auth_url: %s
  audience: wiz-api
  client_id: wizsim-client
  client_secret: wizsim-secret
  requests_per_second: 1000
`, sim.GraphQLURL(), sim.TokenURL())
}

// writeConfig writes the daemon's config for a crash test: the simulator, a store and a JSONL sink in
// dir, an ephemeral HTTP listener, plus any extra sink lines (YAML list items).
func writeConfig(t *testing.T, dir string, sim *wizsim.Server, maxPerFetch int, extraSinks ...string) string {
	t.Helper()
	cfg := simWizConfig(sim) + fmt.Sprintf(`fetch:
  interval: 1s
  max_per_fetch: %d
store:
  path: %s
sinks:
  - {name: file, type: jsonl, path: %s}
%sserver:
  listen: 127.0.0.1:0
`, maxPerFetch, filepath.Join(dir, "wizfetch.db"), filepath.Join(dir, "incidents.jsonl"), extra(extraSinks))
	path := filepath.Join(dir, "wizfetch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCrashKillNineLosesAndDuplicatesNothing kills the daemon with SIGKILL during a backfill at kill
// points chosen by progress (after k logged fetches, plus a short random delay so kills land in every
// phase: mid-request, mid-commit, mid-write), then finishes the backfill and proves every expected issue
// has exactly one created event and no line is torn or repeated.
//
// WIZFETCH_CRASH_SEED replays a run; WIZFETCH_CRASH_KILLS and WIZFETCH_CRASH_ISSUES make it longer.
func TestCrashKillNineLosesAndDuplicatesNothing(t *testing.T) {
	seed := crashSeed()
	kills := envInt("WIZFETCH_CRASH_KILLS", 6)
	issues := envInt("WIZFETCH_CRASH_ISSUES", 6000)
	t.Logf("crash test seed %d (replay with WIZFETCH_CRASH_SEED=%d), %d kills, %d issues", seed, seed, kills, issues)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := buildBinary(t)
	sim, frozen := startFrozenSim(t, issues, seed, "5xx:p=0.03;429:p=0.03")
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, sim, 100)

	killed := 0
	for round := 0; killed < kills && round < kills*3; round++ {
		afterFetches := 1 + rng.IntN(3)
		delay := time.Duration(rng.IntN(25)) * time.Millisecond
		if done := runAndKill(t, bin, cfgPath, afterFetches, delay); done {
			break // the backfill finished before this kill point
		}
		killed++
	}
	t.Logf("killed the daemon %d times", killed)
	if killed < 5 {
		t.Fatalf("only %d kills landed before the backfill finished; use more issues", killed)
	}

	// Finish the backfill.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--until-idle", "--config", cfgPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run --until-idle: %v\n%s", err, tail(out))
	}

	st, err := store.Open(filepath.Join(dir, "wizfetch.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var start time.Time
	st.View(func(tx *store.Tx) error {
		cp, _, _ := tx.Checkpoint("default", feed.Created)
		start = cp.FirstStart
		return nil
	})
	st.Close()

	want := map[string]bool{}
	for _, is := range sim.Snapshot() {
		if (is.Status == "OPEN" || is.Status == "IN_PROGRESS") && is.CreatedAt.After(start) && !frozen.Before(is.VisibleAt) {
			want[is.ID] = true
		}
	}
	f, err := os.Open(filepath.Join(dir, "incidents.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	ids := map[string]bool{}
	created := map[string]int{}
	lines := 0
	for sc.Scan() {
		lines++
		var ev struct {
			EventID string `json:"event_id"`
			Kind    string `json:"kind"`
			IssueID string `json:"issue_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is torn: %v", lines, err)
		}
		if ids[ev.EventID] {
			t.Fatalf("line %d repeats event %s", lines, ev.EventID)
		}
		ids[ev.EventID] = true
		if ev.Kind == "created" {
			created[ev.IssueID]++
		}
	}
	for id := range want {
		if created[id] != 1 {
			t.Fatalf("issue %s has %d created events, want 1 (seed %d)", id, created[id], seed)
		}
	}
	for id := range created {
		if !want[id] {
			t.Fatalf("issue %s was emitted but is not expected (seed %d)", id, seed)
		}
	}
	t.Logf("%d lines, %d expected issues, all exactly once", lines, len(want))
}

// runAndKill starts the daemon, waits for afterFetches fetch log lines that emitted events, waits
// delay, and kills it with SIGKILL. It reports true if the daemon went idle (nothing left to kill for).
func runAndKill(t *testing.T, bin, cfgPath string, afterFetches int, delay time.Duration) bool {
	t.Helper()
	return runAndKillAfter(t, bin, cfgPath, afterFetches, func() { time.Sleep(delay) })
}

// runAndKillAfter is runAndKill with the wait after the fetches given as a function (a kill point
// chosen by progress rather than time).
func runAndKillAfter(t *testing.T, bin, cfgPath string, afterFetches int, wait func()) bool {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var idle atomic.Bool
	reached := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n := 0
		signalled := false
		// Read to the end (the kill closes the pipe): a backfill that finishes while the test waits
		// to kill must not count the kill as landed.
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, `"msg":"fetch"`) {
				continue
			}
			if strings.Contains(line, `"feed":"created"`) && strings.Contains(line, `"backlog":false`) {
				idle.Store(true)
			}
			if n++; !signalled && (n == afterFetches || idle.Load()) {
				signalled = true
				close(reached)
			}
		}
		if !signalled {
			close(reached)
		}
	}()
	select {
	case <-reached:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-scanned
		cmd.Wait()
		t.Fatal("the daemon logged no fetch within a minute")
	}
	wait()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-scanned // every line the daemon wrote before it died
	cmd.Wait()
	return idle.Load()
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
