package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/backoff"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/ha"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// replica is what a daemon on the etcd backend adds: its etcd client, the engine over its prefix
// and the election that decides whether this replica runs the engine.
type replica struct {
	client  *clientv3.Client
	db      *etcdkv.DB
	elector *ha.Elector
}

// engineSettled is how long an engine must have run for its stop to count as a new failure: the
// restart delay (1 s doubling to 30 s) then starts again from 1 s, instead of growing over a term's
// days with every etcd hiccup.
const engineSettled = time.Minute

// openStore opens the store of cfg: the bbolt file (taking its lock), or the etcd prefix. With etcd
// it also returns the replica; every write of the store is then fenced by the replica's leadership
// (pushes excepted: they are posted to the shared inbox, see store.EnqueueRefetch).
func (d *shared) openStore(ctx context.Context, cfg *config.Config, stack *cleanups) (*store.Store, *replica, error) {
	if cfg.Store.Backend != config.StoreEtcd {
		st, err := store.Open(cfg.Store.Path, store.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("open store: %w", err)
		}
		stack.push(st.Close)
		return st, nil, nil
	}
	e := cfg.Store.Etcd
	client, err := ha.Connect(ctx, e)
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	stack.push(client.Close)
	if err := initEtcdStore(ctx, client, e.Prefix); err != nil {
		return nil, nil, fmt.Errorf("open store on etcd %s: %w", e.Prefix, err)
	}
	r := &replica{client: client}
	r.elector = ha.NewElector(client, ha.ElectorOptions{
		Prefix: e.Prefix, TTL: e.LeaseTTL.D(), Logger: d.opt.Logger,
		OnChange: func(leader string, leading bool) {
			d.tracker.SetHA(r.elector.ID(), leader, leading)
			d.opt.Logger.Info("leadership changed", "leader", leader, "leading", leading)
		},
	})
	d.tracker.SetHA(r.elector.ID(), "", false)
	// Open recovers nothing here (this replica does not lead yet); the leader's Recover, and a
	// commit refused over a record a failed commit left, finish records once the fence is held.
	r.db, err = etcdkv.Open(ctx, etcdkv.Options{Client: client, Prefix: e.Prefix, Fence: r.elector.Fence,
		Logger: d.opt.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("open store on etcd %s: %w", e.Prefix, err)
	}
	st, err := store.OpenKV(r.db, store.Options{})
	if err != nil {
		_ = r.db.Close()
		return nil, nil, fmt.Errorf("open store on etcd %s: %w", e.Prefix, err)
	}
	stack.push(st.Close)
	return st, r, nil
}

// initEtcdStore creates the store's buckets and schema version under prefix when they are missing.
// Every replica may do it at once: it only adds what is absent, through an engine that neither
// fences nor recovers (recovery is the leader's, after it wins).
func initEtcdStore(ctx context.Context, client *clientv3.Client, prefix string) error {
	db, err := etcdkv.Open(ctx, etcdkv.Options{Client: client, Prefix: prefix, SkipRecover: true})
	if err != nil {
		return err
	}
	st, err := store.OpenKV(db, store.Options{})
	if err != nil {
		_ = db.Close()
		return err
	}
	return st.Close()
}

// runReplica runs a daemon of the etcd backend until ctx ends: every replica serves the HTTP API
// (views, write-back, MCP, issue context) and takes Wiz pushes (into the shared queue) through its
// standby engine; the one that wins the election also runs the full engine (fetching, mirroring,
// delivering) until it loses the lease, then campaigns again. A reload applies to the next term
// and restarts the engine of this one.
func (d *shared) runReplica(ctx context.Context, cfg *config.Config, srv *server.Server, r *replica) error {
	log := d.opt.Logger
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()

	var mu sync.Mutex // guards cfg, standby and leading
	leading := false
	standby, err := d.newStandbyEngine(runCtx, cfg)
	if err != nil {
		return err
	}
	current := func() (*config.Config, *engine) { mu.Lock(); defer mu.Unlock(); return cfg, standby }
	d.current.p.Store(standby)
	if srv != nil {
		srv.SetReady(true) // standbys are ready: they take pushes and serve the API
	}
	log.Info("wizfetch started as a replica", "version", d.opt.Version, "replica", r.elector.ID(),
		"instances", len(cfg.Instances), "sinks", len(cfg.Sinks), "etcd_prefix", cfg.Store.Etcd.Prefix)

	restart := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-d.opt.Reload:
				old, _ := current()
				next, err := d.reload(old)
				if err == nil {
					var sb *engine
					if sb, err = d.newStandbyEngine(runCtx, next); err == nil {
						mu.Lock()
						cfg, standby = next, sb
						if !leading {
							d.current.p.Store(sb) // a standby answers with the new config at once
						}
						mu.Unlock()
					}
				}
				if err != nil {
					log.Error("reload rejected; keeping the running config", "err", err)
					continue
				}
				if srv != nil {
					srv.SetAuthToken(next.Server.AuthToken.Reveal())
				}
				log.Info("config reloaded", "instances", len(next.Instances), "sinks", len(next.Sinks))
				select {
				case restart <- struct{}{}:
				default:
				}
			}
		}
	}()
	setLeading := func(on bool) {
		mu.Lock()
		defer mu.Unlock()
		leading = on
		if !on {
			d.current.p.Store(standby) // the leader's engine has stopped: stand by
			d.tracker.Reset()          // and show no feed or sink this replica no longer runs
		}
	}

	var endErr error
	var ended bool
	_ = r.elector.Run(runCtx, func(leadCtx context.Context) error {
		setLeading(true)
		defer setLeading(false)
		// A commit of the previous leader may have stopped between its write-ahead record and its
		// keys: finish it before reading anything.
		// A newer replica may have bumped the schema since this one started (a rolling upgrade):
		// this code must not write under it, nor finish that replica's last commit. It ends the
		// daemon, as at a start. Checked again after the recovery, which may finish a bump.
		checkSchema := func() error {
			if err := d.store.CheckSchema(); errors.Is(err, store.ErrSchemaTooNew) {
				endErr, ended = err, true
				stopRun()
				return err
			} else if err != nil {
				return err
			}
			return nil
		}
		if err := checkSchema(); err != nil {
			return err
		}
		if err := r.db.Recover(leadCtx); err != nil {
			return fmt.Errorf("recover the last leader's commit: %w", err)
		}
		if err := checkSchema(); err != nil {
			return err
		}
		select { // a reload before this term already applies
		case <-restart:
		default:
		}
		failures := 0
		for {
			c, _ := current()
			started := time.Now()
			eng, err := d.startEngine(leadCtx, c)
			if errors.Is(err, ErrConfig) {
				// A config this replica cannot run (a sink's CA file missing, say) ends the
				// daemon as it would on bbolt (exit 2), instead of passing a broken leadership on.
				endErr, ended = err, true
				stopRun()
				return err
			}
			if err != nil {
				return err // resign: another replica may do better; Run backs off
			}
			select {
			case <-eng.done:
				err := eng.wait()
				if leadCtx.Err() != nil {
					return nil // leadership lost: stand by, campaign again
				}
				if d.opt.Mode != schedule.Daemon {
					// --once and --until-idle end when their work is done, as with bbolt.
					endErr, ended = err, true
					stopRun()
					return err
				}
				// A daemon's engine stops by itself only on a store error (a delivery batch
				// that could not be read or recorded). On etcd that is routine — an etcd member
				// restarting, "leader changed", a timeout — so keep leading and start the
				// engine again after a pause; a lost lease ends the term instead.
				if time.Since(started) > engineSettled {
					failures = 0 // an engine that ran a while stopped on a new error, not the last one's
				}
				failures++
				pause := backoff.Delay(time.Second, 30*time.Second, failures)
				log.Error("engine stopped on an error; restarting it", "err", err, "in", pause)
				if !backoff.Sleep(leadCtx, pause) {
					return nil
				}
				continue
			case <-restart:
				log.Info("reloading: stopping the engine")
				eng.stop()
				if err := eng.wait(); err != nil {
					log.Warn("engine stopped with an error during reload", "err", err)
				}
			}
		}
	})
	if srv != nil {
		srv.SetReady(false)
	}
	log.Info("wizfetch stopped")
	if ended {
		return endErr
	}
	return nil
}

// newStandbyEngine builds what a replica that does not lead serves, from cfg: each instance's Wiz
// client (write-back, issue context and MCP tools call Wiz with it), the push receiver (pushes go
// to the store, which posts them to the shared inbox; the leader's refetch worker takes them), the
// write-back API and the MCP server. It runs nothing: no feed, no delivery, no mirror, so it
// writes nothing to the store but those posts. (A write that an MCP tool makes to the store fails
// on a standby: the store's commits are the leader's.)
func (d *shared) newStandbyEngine(ctx context.Context, cfg *config.Config) (*engine, error) {
	eng := &engine{cfg: cfg, instances: map[string]*instanceRuntime{}, done: make(chan struct{}), cancel: func() {}}
	sinks := make([]string, 0, len(cfg.Sinks))
	for _, s := range cfg.Sinks {
		sinks = append(sinks, s.Name)
	}
	feeds, err := d.buildInstances(ctx, cfg, eng, sinks, func() {})
	if err != nil {
		return nil, err
	}
	for _, f := range feeds {
		f.feed.Close() // a standby fetches nothing
	}
	d.tracker.Reset() // nor does its status page list feeds it does not run
	eng.push = d.newPushHandler(cfg, d.store)
	eng.actions = d.newActionsHandler(cfg, eng)
	if eng.mcp, err = d.newMCPHandler(cfg, eng); err != nil {
		return nil, err
	}
	return eng, nil
}
