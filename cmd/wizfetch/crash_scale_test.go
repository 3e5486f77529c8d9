package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// scaleReceiver is the webhook sink's receiver: it checks the Standard Webhooks signature and
// records each delivered event by webhook-id. A request cut short by a SIGKILL is not recorded
// (its body never arrived whole), just as a real receiver would drop it.
type scaleReceiver struct {
	key []byte

	mu       sync.Mutex
	got      map[string]int // webhook-id -> requests answered 200
	answered int            // requests answered 200
	bad      int            // bad signature or webhook-id not the body's event_id
	broken   int            // body not read whole
}

func (rc *scaleReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.mu.Lock()
		rc.broken++
		rc.mu.Unlock()
		return
	}
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, rc.key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	var ev struct {
		EventID string `json:"event_id"`
	}
	ok := r.Header.Get("webhook-signature") == "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) &&
		json.Unmarshal(body, &ev) == nil && ev.EventID == id && id != ""
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !ok {
		rc.bad++
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	rc.got[id]++
	rc.answered++
	w.WriteHeader(http.StatusOK)
}

// waitForDeliveries waits until n more requests have been answered 200, or for at most limit (the
// backfill may end first).
func (rc *scaleReceiver) waitForDeliveries(n int, limit time.Duration) {
	rc.mu.Lock()
	target := rc.answered + n
	rc.mu.Unlock()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		rc.mu.Lock()
		done := rc.answered >= target
		rc.mu.Unlock()
		if done {
			return
		}
	}
}

// scaleEvent is the part of a JSONL line the proofs need.
type scaleEvent struct {
	EventID string `json:"event_id"`
	Kind    string `json:"kind"`
	IssueID string `json:"issue_id"`
}

// readScaleJSONL parses every line, failing on a torn or repeated one; with tornTail, a torn last
// line is left out instead: a SIGKILL can land inside the write(2) of a batch (Linux stops copying a
// write at a fatal signal, between pages), and the sink cuts such a line when it starts again.
func readScaleJSONL(t *testing.T, path string, seed uint64, tornTail bool) []scaleEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	seen := map[string]bool{}
	var out []scaleEvent
	var torn error // the last line that did not parse, while more may follow
	for sc.Scan() {
		if torn != nil {
			t.Fatalf("line %d is torn: %v (seed %d)", len(out)+1, torn, seed)
		}
		var ev scaleEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			torn = err
			continue
		}
		if ev.EventID == "" || seen[ev.EventID] {
			t.Fatalf("line %d repeats or lacks its event id %q (seed %d)", len(out)+1, ev.EventID, seed)
		}
		seen[ev.EventID] = true
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if torn != nil && !tornTail {
		t.Fatalf("the last line (%d) is torn: %v (seed %d)", len(out)+1, torn, seed)
	}
	return out
}

// TestCrashAtScale SIGKILLs the daemon at least 20 times during a backfill with Wiz faults on (5xx,
// 429, cursor invalidation), at kill points chosen by progress (after 1–3 logged fetches, then a short
// delay, or 1–200 more webhook deliveries, at most 500 ms, so kills land in the middle of a delivery
// burst) from a logged seed.
// It then finishes with `run --until-idle` and proves exactly-once in the JSONL file (by event id, and
// one created event per expected issue) and at-least-once in a webhook receiver (every JSONL event id
// arrived; duplicates, from kills between the receiver's 200 and the acknowledgement, are reported).
//
// By default (CI) 16000 issues and max_per_fetch 25; WIZFETCH_CRASH_SCALE=1 runs 20000 issues and
// max_per_fetch 50. Both try 30 kills and need at least 20 to land while the backfill is still
// running (a kill after the daemon logged the end of the backfill does not count).
// WIZFETCH_CRASH_SEED replays a run.
func TestCrashAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it 20 times")
	}
	began := time.Now()
	// kills are attempted; at least minKills must land before the backfill finishes (the faster the
	// daemon, the more of the backfill each round covers).
	issues, kills, minKills, maxPerFetch := 16000, 30, 20, 25
	if os.Getenv("WIZFETCH_CRASH_SCALE") == "1" {
		issues, kills, minKills, maxPerFetch = 20000, 30, 20, 50
	}
	seed := crashSeed()
	t.Logf("crash-at-scale seed %d (replay with WIZFETCH_CRASH_SEED=%d), %d issues, %d kills, max_per_fetch %d", seed, seed, issues, kills, maxPerFetch)
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))

	bin := buildBinary(t)
	sim, frozen := startFrozenSim(t, issues, seed, "5xx:p=0.03;429:p=0.03;cursor:p=0.01")

	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(rng.IntN(256))
	}
	rc := &scaleReceiver{key: key, got: map[string]int{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, sim, maxPerFetch, fmt.Sprintf("{name: hook, type: webhook, url: %q, secret: %q, timeout: 10s}",
		srv.URL, "whsec_"+base64.StdEncoding.EncodeToString(key)))

	killed := 0
	var points []string
	for round := 0; killed < kills && round < kills*3; round++ {
		afterFetches := 1 + rng.IntN(3)
		delay := time.Duration(rng.IntN(25)) * time.Millisecond
		point := fmt.Sprintf("%d+%dms", afterFetches, delay.Milliseconds())
		wait := func() { time.Sleep(delay) }
		if rng.IntN(4) == 0 {
			// Deep in a delivery burst: after 1–200 more webhook deliveries (by progress, not time,
			// so that a faster daemon does not finish the backfill first).
			deliveries := 1 + rng.IntN(200)
			point = fmt.Sprintf("%d+%dwebhooks", afterFetches, deliveries)
			wait = func() { rc.waitForDeliveries(deliveries, 500*time.Millisecond) }
		}
		if done := runAndKillAfter(t, bin, cfgPath, afterFetches, wait); done {
			break // the backfill finished before this kill point
		}
		killed++
		points = append(points, point)
	}
	t.Logf("killed the daemon %d times at (fetches + delay or webhook deliveries) %s", killed, strings.Join(points, " "))
	if killed < minKills {
		t.Fatalf("only %d of %d kills landed before the backfill finished (seed %d, at least %d needed); use more issues", killed, kills, seed, minKills)
	}
	lines := 0
	if _, err := os.Stat(filepath.Join(dir, "incidents.jsonl")); err == nil {
		lines = len(readScaleJSONL(t, filepath.Join(dir, "incidents.jsonl"), seed, true))
	}
	t.Logf("%d events in the JSONL file before the final run", lines)

	// Finish the backfill and drain both sinks.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	final := time.Now()
	cmd := exec.CommandContext(ctx, bin, "run", "--until-idle", "--config", cfgPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run --until-idle: %v (seed %d)\n%s", err, seed, tail(out))
	}
	t.Logf("final run --until-idle took %s", time.Since(final).Round(time.Millisecond))

	st, err := store.Open(filepath.Join(dir, "wizfetch.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var start time.Time
	if err := st.View(func(tx *store.Tx) error {
		cp, _, err := tx.Checkpoint("default", feed.Created)
		start = cp.FirstStart
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"file", "hook"} {
		depth, derr := st.OutboxDepth(s)
		dead, cerr := st.DeadLetterCount(s)
		if derr != nil || cerr != nil || depth != 0 || dead != 0 {
			st.Close()
			t.Fatalf("sink %s: %d pending, %d dead letters after --until-idle (%v %v, seed %d)", s, depth, dead, derr, cerr, seed)
		}
	}
	st.Close()

	// Exactly once in the JSONL file.
	want := map[string]bool{}
	for _, is := range sim.Snapshot() {
		if (is.Status == "OPEN" || is.Status == "IN_PROGRESS") && is.CreatedAt.After(start) && !frozen.Before(is.VisibleAt) {
			want[is.ID] = true
		}
	}
	events := readScaleJSONL(t, filepath.Join(dir, "incidents.jsonl"), seed, false)
	created := map[string]int{}
	for _, ev := range events {
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

	// At least once at the webhook receiver, by event id.
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.bad != 0 {
		t.Fatalf("the receiver got %d requests with a bad signature or mismatched webhook-id (seed %d)", rc.bad, seed)
	}
	inFile := make(map[string]bool, len(events))
	dupEvents, dupRequests := 0, 0
	for _, ev := range events {
		inFile[ev.EventID] = true
		n := rc.got[ev.EventID]
		if n == 0 {
			t.Fatalf("event %s (%s %s) is in the JSONL file but never reached the webhook receiver (seed %d)", ev.EventID, ev.Kind, ev.IssueID, seed)
		}
		if n > 1 {
			dupEvents++
			dupRequests += n - 1
		}
	}
	for id := range rc.got {
		if !inFile[id] {
			t.Fatalf("the receiver got event %s which is not in the JSONL file (seed %d)", id, seed)
		}
	}
	stats := sim.Stats()
	t.Logf("%d JSONL lines, %d expected issues, all exactly once; receiver: %d distinct events, %d re-sent (%d extra requests), %d cut short by a kill; sim faults %v, %d throttled; wall %s",
		len(events), len(want), len(rc.got), dupEvents, dupRequests, rc.broken, stats.Faults, stats.Throttled, time.Since(began).Round(time.Millisecond))
}
