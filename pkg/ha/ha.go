// Package ha runs wizfetch as one of several replicas on etcd: it connects to the cluster of
// store.etcd and elects, with etcd's concurrency package, the one replica that fetches, mirrors
// and delivers. The others stand by (they serve the API, the status page and Wiz pushes) and one
// of them takes over when the leader's lease ends.
//
// The leader's writes are fenced by its election key (Fence): every commit of the etcd store
// compares the key's create revision, so a replica that lost its lease (paused, partitioned, or
// deposed while a commit was in flight) cannot write once another may lead.
package ha

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/wizfetch/wizfetch/pkg/backoff"
	"github.com/wizfetch/wizfetch/pkg/certpool"
	"github.com/wizfetch/wizfetch/pkg/config"
)

// dialTimeout bounds the first connection to etcd.
const dialTimeout = 5 * time.Second

// Connect returns a client of the cluster of e (secrets resolved: e.Password holds the password of
// password_file). It checks the connection with one request, so a wrong endpoint, certificate or
// password fails here, before the daemon starts anything.
func Connect(ctx context.Context, e config.Etcd) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: dialTimeout,
		Username:    e.Username,
		Password:    e.Password.Reveal(),
		Logger:      zap.NewNop(),
		Context:     ctx,
		// etcd's default request limit is 1.5 MiB; the store keeps every request below it.
		MaxCallSendMsgSize: 2 << 20,
	}
	if e.CAFile != "" || e.CertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if e.CAFile != "" {
			pool, err := certpool.WithFile(e.CAFile)
			if err != nil {
				return nil, fmt.Errorf("store.etcd.ca_file: %w", err)
			}
			tc.RootCAs = pool
		}
		if e.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("store.etcd.cert_file/key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", e.Endpoints, err)
	}
	probe, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if _, err := cli.Get(probe, e.Prefix+"meta-probe", clientv3.WithCountOnly()); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("connect to etcd %v: %w", e.Endpoints, err)
	}
	return cli, nil
}

// ReplicaID names this replica: the host name (a Kubernetes pod's name) and the process id.
func ReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// Elector campaigns for the leadership of one prefix. It is safe for concurrent use.
type Elector struct {
	client *clientv3.Client
	prefix string
	ttl    time.Duration
	id     string
	log    *slog.Logger

	mu       sync.Mutex
	key      string // our election key while we lead
	rev      int64  // its create revision
	leading  bool
	leader   string // the leader's id as last observed
	onChange func(leader string, leading bool)
}

// ElectorOptions configure NewElector.
type ElectorOptions struct {
	// Prefix is the store's prefix; the election lives under Prefix + "election/".
	Prefix string
	// TTL is the lease of the leader (store.etcd.lease_ttl): a leader that stops renewing it is
	// replaced within TTL (plus etcd's own election time).
	TTL time.Duration
	// ID names this replica in the election and on the status page.
	ID string
	// OnChange, when set, is told the leader's id and whether it is this replica, on every change.
	OnChange func(leader string, leading bool)
	Logger   *slog.Logger
}

// NewElector returns an elector for client.
func NewElector(client *clientv3.Client, opt ElectorOptions) *Elector {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.ID == "" {
		opt.ID = ReplicaID()
	}
	return &Elector{client: client, prefix: opt.Prefix + "election/", ttl: opt.TTL, id: opt.ID,
		log: opt.Logger.With("component", "ha", "replica", opt.ID), onChange: opt.OnChange}
}

// ID is this replica's id.
func (e *Elector) ID() string { return e.id }

// Fence returns the election key and its create revision while this replica leads, for the
// store's fenced commits; ok is false when it does not lead.
func (e *Elector) Fence() (key string, createRevision int64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.key, e.rev, e.leading
}

// Leading reports whether this replica leads.
func (e *Elector) Leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading
}

// setLeading records whether this replica leads, and the key that fences its writes.
func (e *Elector) setLeading(key string, rev int64, leading bool) {
	e.mu.Lock()
	changed := e.leading != leading
	e.leading, e.key, e.rev = leading, key, rev
	if leading {
		changed = changed || e.leader != e.id
		e.leader = e.id
	}
	leader, fn := e.leader, e.onChange
	e.mu.Unlock()
	if changed && fn != nil {
		fn(leader, leading)
	}
}

// setLeader records the leader observed in etcd.
func (e *Elector) setLeader(leader string) {
	e.mu.Lock()
	changed := e.leader != leader
	e.leader = leader
	leading, fn := e.leading, e.onChange
	e.mu.Unlock()
	if changed && fn != nil {
		fn(leader, leading)
	}
}

// Leader returns the id of the leader as last seen ("" while none).
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Run campaigns until ctx ends. Each time this replica wins it calls lead with a context that ends
// when the leadership does (the lease expired or could not be renewed), and campaigns again once
// lead returns. lead must stop all work that writes when its context ends; its error is logged,
// not fatal (a standby takes over meanwhile). Run resigns on the way out so that a clean stop hands
// over at once instead of after the lease's TTL.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	observeCtx, stopObserve := context.WithCancel(ctx)
	defer stopObserve()
	go e.observe(observeCtx)

	ttl := max(int(e.ttl.Seconds()), 1)
	// The session outlives ctx: a clean stop must keep renewing the lease while the work drains
	// (else the lease could lapse, and another replica lead, before the last deliveries are
	// recorded); term resigns and Close revokes it afterwards.
	sessionCtx := context.WithoutCancel(ctx)
	failed := 0 // terms in a row whose work failed, for the backoff
	for ctx.Err() == nil {
		session, err := concurrency.NewSession(e.client, concurrency.WithTTL(ttl), concurrency.WithContext(sessionCtx))
		if err != nil {
			e.log.Warn("etcd session failed; retrying", "err", err)
			if !backoff.Sleep(ctx, time.Second) {
				break
			}
			continue
		}
		end := e.term(ctx, session, lead)
		_ = session.Close() // revokes the lease: a standby's campaign goes on at once
		switch end {
		case termDone:
			failed = 0
		case termCampaignFailed:
			// An etcd hiccup (a member restart, a watch on a compacted revision): campaign again
			// soon, as after a failed session. Growing this delay, as for failed work, kept a
			// standby out of the election for up to a minute after routine etcd events.
			if !backoff.Sleep(ctx, time.Second) {
				return e.stopped()
			}
		case termWorkFailed:
			// A term whose work failed at once (a bad sink file, an unreadable record) would
			// fail again: back off, about 1 s doubling to a minute, instead of churning leases.
			failed++
			if !backoff.Sleep(ctx, backoff.Delay(time.Second, time.Minute, failed)) {
				return e.stopped()
			}
		}
	}
	return e.stopped()
}

// stopped records that Run no longer leads and returns Run's result.
func (e *Elector) stopped() error {
	e.setLeading("", 0, false)
	return nil
}

type leaseLostKey struct{}

// LeaseLost returns, for the context a leader's work runs in, a channel closed when its lease ends
// (another replica may lead from then on), or nil outside a term. It is not closed by a clean stop,
// during which the lease is kept until the work has drained: work that must not outlive the lease
// (delivering to sinks) stops on it at once instead of waiting for the rest of the work to end.
func LeaseLost(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(leaseLostKey{}).(<-chan struct{})
	return ch
}

// termEnd is how a term ended.
type termEnd int

const (
	termDone           termEnd = iota // the work ended cleanly, or the lease or ctx ended
	termCampaignFailed                // the campaign failed (etcd trouble): campaign again soon
	termWorkFailed                    // the leader's work failed: back off before leading again
)

// term campaigns in one session and leads until the session or ctx ends.
func (e *Elector) term(ctx context.Context, session *concurrency.Session, lead func(ctx context.Context) error) termEnd {
	election := concurrency.NewElection(session, e.prefix)
	if err := election.Campaign(ctx, e.id); err != nil {
		if ctx.Err() == nil {
			e.log.Warn("campaign failed; retrying", "err", err)
			return termCampaignFailed
		}
		return termDone
	}
	select {
	case <-session.Done():
		return termDone // the lease ended while we were being elected
	default:
	}
	key, rev := election.Key(), election.Rev()
	e.log.Info("leading", "key", key, "revision", rev)
	e.setLeading(key, rev, true)

	leadCtx, stop := context.WithCancel(context.WithValue(ctx, leaseLostKey{}, session.Done()))
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-session.Done():
			// Fence first, then stop the work: a commit already in flight fails on the fence
			// (another replica may lead by now).
			e.log.Warn("leadership lost: the lease ended")
			e.setLeading("", 0, false)
		case <-leadCtx.Done():
			// A clean stop: the lease still holds (the session does not end with ctx), so the
			// work ends as it would without etcd (the deliveries in flight are recorded) before
			// this replica resigns below.
		}
		stop()
	}()
	err := lead(leadCtx)
	end := termDone
	if err != nil && leadCtx.Err() == nil {
		e.log.Error("leader work failed; resigning", "err", err)
		end = termWorkFailed
	}
	stop()
	<-watched // its fence clearing must not land on a later term
	e.setLeading("", 0, false)
	resignCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := election.Resign(resignCtx); err != nil {
		e.log.Debug("resign failed (the lease will expire)", "err", err)
	}
	return end
}

// observe follows who leads, for the status page: the leader is the campaigner whose key etcd
// created first (concurrency.Election's rule).
func (e *Elector) observe(ctx context.Context) {
	for {
		resp, err := e.client.Get(ctx, e.prefix, clientv3.WithFirstCreate()...)
		switch {
		case err != nil:
			e.log.Debug("reading the leader failed", "err", err)
		case len(resp.Kvs) == 0:
			e.setLeader("")
		default:
			e.setLeader(string(resp.Kvs[0].Value))
		}
		if !backoff.Sleep(ctx, time.Second) {
			return
		}
	}
}
