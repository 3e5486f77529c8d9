package ha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
)

// term records one replica's leadership: when it began, and a channel closed when its lead
// function returned.
type term struct {
	id    string
	ended chan struct{}
}

// runElector starts an elector on its own client whose lead function reports each term on terms
// and holds the leadership until its context ends. It returns the elector and a stop function
// (a clean stop: the elector resigns).
func runElector(t *testing.T, srv *etcdtest.Server, id string, ttl time.Duration, terms chan<- term) (*Elector, *clientv3.Client, func()) {
	t.Helper()
	cli := srv.Client(t)
	e := NewElector(cli, ElectorOptions{Prefix: "/wizfetch/test/", TTL: ttl, ID: id})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = e.Run(ctx, func(leadCtx context.Context) error {
			tm := term{id: id, ended: make(chan struct{})}
			terms <- tm
			<-leadCtx.Done()
			close(tm.ended)
			return nil
		})
	}()
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return e, cli, stop
}

func nextTerm(t *testing.T, terms <-chan term, within time.Duration) term {
	t.Helper()
	select {
	case tm := <-terms:
		return tm
	case <-time.After(within):
		t.Fatalf("no replica took the leadership within %s", within)
		return term{}
	}
}

// One of two replicas leads at a time; the leader's fence is its live election key; a clean stop
// hands the leadership over at once (resign), not after the lease.
func TestOneLeaderAndCleanHandOver(t *testing.T) {
	srv := etcdtest.Start(t)
	terms := make(chan term, 4)
	a, _, stopA := runElector(t, srv, "a", 10*time.Second, terms)
	first := nextTerm(t, terms, 10*time.Second)
	if first.id != "a" {
		t.Fatalf("first leader %q, want a (the only candidate)", first.id)
	}
	b, _, _ := runElector(t, srv, "b", 10*time.Second, terms)
	select {
	case tm := <-terms:
		t.Fatalf("%s leads while a still does", tm.id)
	case <-time.After(500 * time.Millisecond):
	}
	// The standby learns who leads (the status page shows it).
	for deadline := time.Now().Add(10 * time.Second); b.Leader() != "a"; {
		if time.Now().After(deadline) {
			t.Fatalf("the standby sees leader %q, want a", b.Leader())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.Leading() || !a.Leading() {
		t.Fatalf("Leading: a %v, b %v; want a only", a.Leading(), b.Leading())
	}
	key, rev, ok := a.Fence()
	if !ok || key == "" || rev == 0 {
		t.Fatalf("leader's fence = %q, %d, %v; want its election key", key, rev, ok)
	}
	if _, _, ok := b.Fence(); ok {
		t.Fatal("the standby holds a fence")
	}
	// The fence is the key etcd holds for the leader: the compare a fenced commit makes holds.
	resp, err := srv.Client(t).Txn(context.Background()).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("fence compare on the live key: %v, succeeded=%v", err, resp != nil && resp.Succeeded)
	}

	start := time.Now()
	stopA()
	second := nextTerm(t, terms, 5*time.Second)
	if second.id != "b" {
		t.Fatalf("after a stopped, %q leads; want b", second.id)
	}
	// A resign hands over at once; the 10 s lease is not waited for.
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("hand-over took %s after a clean stop", took)
	}
	select {
	case <-first.ended:
	default:
		t.Fatal("a's term did not end before b's began")
	}
	// The old fence no longer holds: a deposed leader's commit would fail.
	resp, err = srv.Client(t).Txn(context.Background()).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Commit()
	if err != nil || resp.Succeeded {
		t.Fatalf("fence compare on the old key after the hand-over: %v, succeeded=%v; want a failed compare", err, resp != nil && resp.Succeeded)
	}
}

// A leader whose lease ends (as when it is paused or cut off for longer than the TTL) loses its
// term and its fence, and the standby takes over within the TTL.
func TestLeaseLossEndsTheTermAndAStandbyTakesOver(t *testing.T) {
	srv := etcdtest.Start(t)
	terms := make(chan term, 4)
	a, cliA, _ := runElector(t, srv, "a", 5*time.Second, terms)
	first := nextTerm(t, terms, 10*time.Second)
	if first.id != "a" {
		t.Fatalf("first leader %q, want a", first.id)
	}
	runElector(t, srv, "b", 5*time.Second, terms)

	// Revoke a's lease behind its back: what etcd does when the lease's TTL passes unrenewed.
	key, _, _ := a.Fence()
	resp, err := cliA.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read a's election key: %v", err)
	}
	if _, err := cliA.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("a's term did not end after its lease was revoked")
	}
	if _, _, ok := a.Fence(); ok {
		t.Fatal("a still holds a fence after losing its lease")
	}
	second := nextTerm(t, terms, 10*time.Second)
	if second.id != "b" && second.id != "a" {
		t.Fatalf("unexpected leader %q", second.id)
	}
	// Whoever won, exactly one replica leads now.
	select {
	case tm := <-terms:
		t.Fatalf("a second concurrent leader %q", tm.id)
	case <-time.After(300 * time.Millisecond):
	}
}

// Connect fails fast, naming the endpoint, when no etcd answers.
func TestConnectFailsOnAnUnreachableCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Connect(ctx, config.Etcd{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/x/"})
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
}

// A clean stop (the daemon's ctx cancelled) keeps the fence, and the lease, until the leader's
// work has returned: its last acknowledgements must still commit.
func TestCleanStopKeepsTheFenceUntilTheWorkEnds(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	for i := range 10 {
		e := NewElector(cli, ElectorOptions{Prefix: "/stop/", TTL: 5 * time.Second, ID: fmt.Sprintf("r%d", i)})
		ctx, cancel := context.WithCancel(context.Background())
		held := make(chan bool, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = e.Run(ctx, func(leadCtx context.Context) error {
				cancel() // SIGTERM
				<-leadCtx.Done()
				time.Sleep(50 * time.Millisecond) // the dispatcher's last acknowledgement
				select {
				case <-LeaseLost(leadCtx):
					held <- false // a clean stop keeps the lease: delivery must not stop on it
					return nil
				default:
				}
				key, rev, ok := e.Fence()
				if ok {
					resp, err := cli.Txn(context.Background()).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Commit()
					ok = err == nil && resp.Succeeded
				}
				held <- ok
				return nil
			})
		}()
		if !<-held {
			t.Fatalf("stop %d: the fence was gone before the leader's work ended", i)
		}
		<-done
		if _, _, ok := e.Fence(); ok {
			t.Fatalf("stop %d: the fence outlived Run", i)
		}
	}
}

// A term whose work fails at once is not retried in a hot loop: the elector backs off (1 s, 2 s,
// ...), so a few seconds hold a handful of terms, not hundreds.
func TestFailedTermsBackOff(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	e := NewElector(cli, ElectorOptions{Prefix: "/loop/", TTL: 5 * time.Second, ID: "r"})
	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	var terms atomic.Int32
	_ = e.Run(ctx, func(context.Context) error {
		terms.Add(1)
		return errors.New("a sink's CA file is missing")
	})
	// 0 s, then after 1 s, 2 s (at 3 s), then 4 s: 3 terms in 3.5 s.
	if n := terms.Load(); n < 2 || n > 4 {
		t.Fatalf("%d terms in 3.5 s, want 2..4 with the backoff", n)
	}
}

// LeaseLost is closed when the leader's lease ends (not on a clean stop: see the test above), so
// that delivery stops at once; it is nil outside a term.
func TestLeaseLostIsClosedWhenTheLeaseEnds(t *testing.T) {
	if LeaseLost(context.Background()) != nil {
		t.Fatal("LeaseLost outside a term is not nil")
	}
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	e := NewElector(cli, ElectorOptions{Prefix: "/lost/", TTL: 5 * time.Second, ID: "r"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx, func(leadCtx context.Context) error {
			lost := LeaseLost(leadCtx)
			if lost == nil {
				got <- "no channel in a term"
				return nil
			}
			key, _, _ := e.Fence()
			resp, err := cli.Get(context.Background(), key)
			if err != nil || len(resp.Kvs) != 1 {
				got <- fmt.Sprintf("read the election key: %v", err)
				return nil
			}
			if _, err := cli.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
				got <- err.Error()
				return nil
			}
			select {
			case <-lost:
				got <- ""
			case <-time.After(10 * time.Second):
				got <- "not closed 10 s after the lease was revoked"
			}
			cancel()
			<-leadCtx.Done()
			return nil
		})
	}()
	if msg := <-got; msg != "" {
		t.Fatal(msg)
	}
	<-done
}
