package app

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/ha"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
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
	r.db, err = etcdkv.Open(ctx, etcdkv.Options{Client: client, Prefix: e.Prefix, Fence: r.elector.Fence,
		Logger: d.opt.Logger, SkipRecover: true})
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
// and takes Wiz pushes (into the shared queue); the one that wins the election also runs the
// engine (fetching, mirroring, delivering) until it loses the lease, then campaigns again. A
// reload applies to the next term and restarts the engine of this one.
func (d *shared) runReplica(ctx context.Context, cfg *config.Config, srv *server.Server, r *replica) error {
	log := d.opt.Logger
	var mu sync.Mutex // guards cfg
	current := func() *config.Config { mu.Lock(); defer mu.Unlock(); return cfg }
	d.setStandbyPush(cfg)
	if srv != nil {
		srv.SetReady(true) // standbys are ready: they take pushes and serve the API
	}
	log.Info("wizfetch started as a replica", "version", d.opt.Version, "replica", r.elector.ID(),
		"instances", len(cfg.Instances), "sinks", len(cfg.Sinks), "etcd_prefix", cfg.Store.Etcd.Prefix)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	restart := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-d.opt.Reload:
				next, err := d.reload(current())
				if err != nil {
					log.Error("reload rejected; keeping the running config", "err", err)
					continue
				}
				mu.Lock()
				cfg = next
				mu.Unlock()
				d.setStandbyPush(next)
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

	var endErr error
	var ended bool
	_ = r.elector.Run(runCtx, func(leadCtx context.Context) error {
		// A commit of the previous leader may have stopped between its write-ahead record and its
		// keys: finish it before reading anything.
		if err := r.db.Recover(leadCtx); err != nil {
			return fmt.Errorf("recover the last leader's commit: %w", err)
		}
		select { // a reload before this term already applies
		case <-restart:
		default:
		}
		for {
			eng, err := d.startEngine(leadCtx, current())
			if err != nil {
				return err
			}
			select {
			case <-eng.done:
				d.current.p.Store(nil)
				err := eng.wait()
				if leadCtx.Err() != nil {
					return nil // leadership lost: campaign again
				}
				// The engine ended by itself (its run mode's end, or a fatal delivery error): so
				// does the daemon, as with bbolt.
				endErr, ended = err, true
				stopRun()
				return err
			case <-restart:
				log.Info("reloading: stopping the engine")
				eng.stop()
				if err := eng.wait(); err != nil {
					log.Warn("engine stopped with an error during reload", "err", err)
				}
				d.current.p.Store(nil)
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

// setStandbyPush builds the push receiver that a replica without an engine answers with: pushes go
// to the store (posted to the shared inbox), and the leader's refetch worker takes them.
func (d *shared) setStandbyPush(cfg *config.Config) {
	h := d.newPushHandler(cfg, d.store)
	d.standbyPush.Store(&h)
}

// standbyAnswer answers write-back and MCP requests on a replica that does not lead.
func (d *shared) standbyAnswer(w http.ResponseWriter) {
	leader := ""
	if d.tracker != nil {
		if snap := d.tracker.Snapshot(); snap.HA != nil {
			leader = snap.HA.Leader
		}
	}
	w.Header().Set("Retry-After", "1")
	msg := "this replica stands by; the leader serves this request"
	if leader != "" {
		msg += " (leader: " + leader + ")"
	}
	http.Error(w, msg, http.StatusServiceUnavailable)
}
