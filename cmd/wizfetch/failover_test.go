package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// failoverPrefix is the etcd prefix the replicas of the failover test share.
const failoverPrefix = "/wizfetch/failover/"

// failoverLease is the replicas' lease_ttl: the smallest the config allows, so failovers are quick.
const failoverLease = 5 * time.Second

// receiver is a webhook endpoint that counts the deliveries of every event id.
type receiver struct {
	mu      sync.Mutex
	seen    map[string]int    // event id -> deliveries
	created map[string]string // issue id -> event id of its created event
	bad     []string
}

func newReceiver() *receiver {
	return &receiver{seen: map[string]int{}, created: map[string]string{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev struct {
		EventID string `json:"event_id"`
		Kind    string `json:"kind"`
		IssueID string `json:"issue_id"`
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := json.Unmarshal(body, &ev); err != nil || ev.EventID == "" || ev.EventID != r.Header.Get("webhook-id") {
		rc.bad = append(rc.bad, fmt.Sprintf("event %q (webhook-id %q): %v", ev.EventID, r.Header.Get("webhook-id"), err))
		w.WriteHeader(http.StatusOK) // a torn event must be reported, not retried into a loop
		return
	}
	rc.seen[ev.EventID]++
	if ev.Kind == "created" {
		if prev, ok := rc.created[ev.IssueID]; ok && prev != ev.EventID {
			rc.bad = append(rc.bad, fmt.Sprintf("issue %s has two created events %s and %s", ev.IssueID, prev, ev.EventID))
		}
		rc.created[ev.IssueID] = ev.EventID
	}
	w.WriteHeader(http.StatusOK)
}

// counts returns the distinct created issues and the duplicate deliveries so far.
func (rc *receiver) counts() (created, duplicates int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.seen {
		duplicates += n - 1
	}
	return len(rc.created), duplicates
}

// replicaProc is one wizfetch replica (a child process).
type replicaProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startReplica(t *testing.T, bin, cfgPath, logPath string) *replicaProc {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &replicaProc{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// leaderPID returns the process id in the election key of the replica that leads (the replica id
// is host-pid), or 0 while none leads.
func leaderPID(ctx context.Context, cli *clientv3.Client) (int, error) {
	resp, err := cli.Get(ctx, failoverPrefix+"election/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return 0, err
	}
	id := string(resp.Kvs[0].Value)
	pid, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	if err != nil {
		return 0, fmt.Errorf("replica id %q has no pid: %w", id, err)
	}
	return pid, nil
}

// TestFailoverLosesNothing runs three replicas on one etcd through a backfill with Wiz faults on,
// kill -9s the leader at progress points drawn from a logged seed, restarts a replica in its place
// each time, and checks that a standby takes over within lease_ttl + 5 s and that the webhook
// receiver ends with every expected event at least once (duplicates counted and reported: network
// sinks are at-least-once on etcd).
//
// WIZFETCH_CRASH_SEED replays a run; WIZFETCH_FAILOVER_ISSUES and WIZFETCH_FAILOVER_KILLS make it
// longer (the issue's full form: 20000 issues, 10 kills).
func TestFailoverLosesNothing(t *testing.T) {
	seed := crashSeed()
	issues := envInt("WIZFETCH_FAILOVER_ISSUES", 3000)
	kills := envInt("WIZFETCH_FAILOVER_KILLS", 10)
	t.Logf("failover test seed %d (replay with WIZFETCH_CRASH_SEED=%d), %d issues, %d kills", seed, seed, issues, kills)
	rng := rand.New(rand.NewPCG(seed, seed^0x51ed270b27f3a5c1))

	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	bin := buildBinary(t)
	sim, frozen := startFrozenSim(t, issues, seed, "5xx:p=0.03;429:p=0.03")
	rc := newReceiver()
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wizfetch.yaml")
	cfg := simWizConfig(sim) + fmt.Sprintf(`fetch:
  interval: 1s
  max_per_fetch: 100
  status: [OPEN, IN_PROGRESS, RESOLVED, REJECTED]
store:
  backend: etcd
  etcd:
    endpoints: [%s]
    prefix: %s
    lease_ttl: %s
sinks:
  - {name: hook, type: webhook, url: %s, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, timeout: 5s}
server:
  listen: 127.0.0.1:0
`, strings.Join(etcd.Endpoints(), ", "), failoverPrefix, failoverLease, hook.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	procs := map[int]*replicaProc{}
	spawn := func() {
		p := startReplica(t, bin, cfgPath, filepath.Join(dir, fmt.Sprintf("replica-%d.log", len(procs)+1)))
		procs[p.cmd.Process.Pid] = p
	}
	for range 3 {
		spawn()
	}
	waitLeader := func(not int, within time.Duration) (int, time.Duration) {
		start := time.Now()
		for time.Since(start) < within {
			pid, err := leaderPID(ctx, cli)
			if err == nil && pid != 0 && pid != not {
				return pid, time.Since(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no new leader within %s (previous pid %d); logs in %s", within, not, dir)
		return 0, 0
	}
	leader, _ := waitLeader(0, 30*time.Second)

	// Kill points: distinct numbers of created issues received, spread over the first 90 % of the
	// expected backfill, so every kill lands while there is work left.
	points := make([]int, kills)
	for i := range points {
		points[i] = 1 + rng.IntN(issues*9/10)
	}
	slices.Sort(points)
	var worst time.Duration
	for k, point := range points {
		for {
			got, _ := rc.counts()
			if got >= point {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("kill %d: progress stuck at %d created issues (want %d)", k+1, got, point)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // land anywhere in a commit or a delivery
		got, _ := rc.counts()
		p := procs[leader]
		if p == nil {
			t.Fatalf("the leader pid %d is not one of ours", leader)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		delete(procs, leader)
		spawn()
		next, took := waitLeader(leader, failoverLease+5*time.Second+10*time.Second)
		if took > failoverLease+5*time.Second {
			t.Errorf("kill %d: a standby took over after %s; want within lease_ttl + 5 s (%s)", k+1, took.Round(time.Millisecond), failoverLease+5*time.Second)
		}
		worst = max(worst, took)
		t.Logf("kill %d at %d created issues received: leader pid %d killed, pid %d took over after %s", k+1, got, leader, next, took.Round(time.Millisecond))
		leader = next
	}

	// The expected set: every visible issue created inside the first run's lookback.
	start := firstStart(ctx, t, cli)
	want := map[string]bool{}
	for _, is := range sim.Snapshot() {
		if is.CreatedAt.After(start) && !frozen.Before(is.VisibleAt) {
			want[is.ID] = true
		}
	}
	for {
		got, _ := rc.counts()
		if got >= len(want) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after the kills, %d of %d expected issues arrived; logs in %s (seed %d)", got, len(want), dir, seed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Let the leader settle what it is delivering, then stop every replica cleanly.
	time.Sleep(500 * time.Millisecond)
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for pid, p := range procs {
		select {
		case <-p.done:
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				log, _ := os.ReadFile(p.log)
				t.Errorf("replica %d exited %d after SIGTERM:\n%s", pid, code, tail(log))
			}
		case <-time.After(15 * time.Second):
			t.Errorf("replica %d did not stop within 15 s of SIGTERM", pid)
		}
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, b := range rc.bad {
		t.Errorf("receiver: %s", b)
	}
	lost := 0
	for id := range want {
		if _, ok := rc.created[id]; !ok {
			lost++
			if lost <= 5 {
				t.Errorf("issue %s never arrived (seed %d)", id, seed)
			}
		}
	}
	for id := range rc.created {
		if !want[id] {
			t.Errorf("issue %s arrived but is not expected (seed %d)", id, seed)
		}
	}
	dups := 0
	for _, n := range rc.seen {
		dups += n - 1
	}
	t.Logf("%d expected issues, %d lost, %d events delivered, %d duplicate deliveries (at-least-once), slowest takeover %s",
		len(want), lost, len(rc.seen), dups, worst.Round(time.Millisecond))
	if lost > 0 {
		t.Fatalf("%d expected issues lost", lost)
	}
}

// firstStart reads the created feed's first-run pin from the replicas' store in etcd.
func firstStart(ctx context.Context, t *testing.T, cli *clientv3.Client) time.Time {
	t.Helper()
	db, err := etcdkv.Open(ctx, etcdkv.Options{Client: cli, Prefix: failoverPrefix, SkipRecover: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenKV(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var start time.Time
	if err := st.View(func(tx *store.Tx) error {
		cp, _, err := tx.Checkpoint("default", feed.Created)
		start = cp.FirstStart
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if start.IsZero() {
		t.Fatal("no first-run pin in the store")
	}
	return start
}
