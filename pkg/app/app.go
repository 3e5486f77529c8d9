// Package app wires wizfetch together, and does no work of its own: it builds config, store, HTTP
// server, Wiz clients, feeds and their schedules, the push receiver and worker (pkg/push), sinks and
// the dispatcher with explicit dependencies, runs them, and keeps a LIFO list of cleanups run on stop.
// It never touches process signals (cmd/wizfetch forwards them), so tests run the whole daemon
// in-process.
//
// Lifecycle: the store (and its lock) and the HTTP server live for the whole run; everything that
// depends on the config (clients, feeds, sinks) is an engine, rebuilt on SIGHUP from a freshly loaded
// and validated config. A bad config keeps the running engine; a change of store.path or server.listen
// is refused ("needs a restart").
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/mcp"
	"github.com/wizfetch/wizfetch/pkg/metrics"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Options are what `wizfetch run` decides before the daemon starts.
type Options struct {
	Config *config.Config // loaded and validated; secrets are resolved by Run
	// ConfigPath is re-read on Reload; empty disables reloading.
	ConfigPath string
	// Reload receives one value per SIGHUP.
	Reload  <-chan struct{}
	Mode    schedule.Mode
	Logger  *slog.Logger
	Version string
	// Now is the clock for first-run pins and event times; nil uses time.Now.
	Now func() time.Time
	// PollEvery is the dispatcher's idle poll (tests shorten it); zero uses the default.
	PollEvery time.Duration
	// RetryBackoff is the first delay after a failed fetch, delivery or refetch (tests shorten it);
	// zero uses the defaults (1s, doubling).
	RetryBackoff time.Duration
	// WizRetryFor bounds how long the Wiz client retries one request (tests shorten it); zero uses
	// the client's default.
	WizRetryFor time.Duration
	// OnFetch, when set, sees every fetch (demo progress, tests).
	OnFetch func(instance, feedName string, res feed.Result, err error)
	// OnListen, when set, is told the HTTP server's base URL once it listens.
	OnListen func(url string)
	// NoServer skips the HTTP server (one-shot runs in tests).
	NoServer bool
}

// ErrConfig marks failures caused by the configuration or its secrets (exit code 2).
var ErrConfig = errors.New("configuration problem")

// ShutdownTimeout bounds a graceful stop (DESIGN.md §7: ≤ 10 s).
const ShutdownTimeout = 8 * time.Second

// cleanups is a LIFO stack of shutdown steps.
type cleanups []func() error

func (c *cleanups) push(fn func() error) { *c = append(*c, fn) }

func (c cleanups) run() error {
	var errs []error
	for i := len(c) - 1; i >= 0; i-- {
		if err := c[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run runs the daemon until ctx ends (Daemon mode) or the mode's end condition holds. It returns nil
// on a clean stop.
func Run(ctx context.Context, opt Options) (err error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	cfg := opt.Config
	log := opt.Logger
	if err := cfg.ResolveSecrets(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var stack cleanups
	defer func() {
		if cerr := stack.run(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	tracker := status.New(opt.Version, opt.Now)
	m := metrics.New(opt.Version)
	m.WatchStatus(tracker)
	deps := &shared{opt: opt, tracker: tracker, metrics: m, pageSlots: wiz.NewPageSlots(maxPagesInMemory), mcpLimiters: mcp.NewUserLimiters(),
		transports: wiz.NewTransports()}
	// The store lock comes first: nothing (not even a sink file repair) happens while another daemon
	// owns this state. With etcd, the election decides instead (runReplica).
	st, rep, err := deps.openStore(ctx, cfg, &stack)
	if err != nil {
		return err
	}
	deps.store, deps.replicated = st, rep != nil

	var srv *server.Server
	if !opt.NoServer {
		srv, err = server.New(server.Options{
			Listen: cfg.Server.Listen, AuthToken: cfg.Server.AuthToken.Reveal(),
			Store: st, Tracker: tracker, Metrics: m, Logger: log,
			Webhook: deps.pushHandler(), Actions: deps.actionsHandler(),
			MCP: deps.mcpHandler(), IssueContext: contextSource{deps},
		})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if err := srv.Start(); err != nil {
			return fmt.Errorf("start HTTP server: %w", err)
		}
		stack.push(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return srv.Shutdown(ctx)
		})
		if opt.OnListen != nil {
			opt.OnListen(srv.URL())
		}
		log.Info("HTTP server listening", "url", srv.URL())
	}

	if rep != nil {
		return deps.runReplica(ctx, cfg, srv, rep)
	}
	eng, err := deps.startEngine(ctx, cfg)
	if err != nil {
		return err
	}
	if srv != nil {
		srv.SetReady(true)
	}
	log.Info("wizfetch started", "version", opt.Version, "instances", len(cfg.Instances), "sinks", len(cfg.Sinks), "store", cfg.Store.Path)

	for {
		select {
		case <-eng.done:
			if srv != nil {
				srv.SetReady(false)
			}
			err := eng.wait()
			log.Info("wizfetch stopped")
			return err
		case <-opt.Reload:
			next, err := deps.reload(cfg)
			if err != nil {
				log.Error("reload rejected; keeping the running config", "err", err)
				continue
			}
			log.Info("reloading: stopping the engine")
			eng.stop()
			if err := eng.wait(); err != nil {
				log.Warn("engine stopped with an error during reload", "err", err)
			}
			newEng, err := deps.startEngine(ctx, next)
			if err != nil {
				log.Error("reloaded config failed to start; restarting the previous one", "err", err)
				if newEng, err = deps.startEngine(ctx, cfg); err != nil {
					return fmt.Errorf("restart after a failed reload: %w", err)
				}
			} else {
				cfg = next
				if srv != nil {
					srv.SetAuthToken(cfg.Server.AuthToken.Reveal())
				}
				log.Info("config reloaded", "instances", len(cfg.Instances), "sinks", len(cfg.Sinks))
			}
			eng = newEng
		}
	}
}

// shared is what outlives engines: options, store, status and metrics (and the push pipeline's view of
// the current engine).
type shared struct {
	opt     Options
	store   *store.Store
	tracker *status.Tracker
	metrics *metrics.Metrics
	current engineRef
	// pageSlots bounds the pages of issues all feeds hold in memory at once (maxPagesInMemory).
	pageSlots *wiz.PageSlots
	// transports are the connection pools the instances' Wiz clients share (one per proxy and CA
	// bundle): a thousand tenants keep a few connections, not two each.
	transports *wiz.Transports
	// replicated is true on the etcd backend: a replica that does not lead serves through a
	// standby engine (runReplica).
	replicated bool
	// mcpLimiters keeps the MCP users' rate limiters across reloads.
	mcpLimiters *mcp.UserLimiters
}

// maxPagesInMemory is how many fetched pages of issues (about 2 MiB each at 200 issues) the feeds
// of every instance hold at once, from Wiz's answer until the page is committed: a thousand
// instances whose first pages arrive together queue for a slot instead of decoding a thousand
// pages side by side (issue 19: memory per tenant). Requests are not bounded, so Wiz's latency is
// still hidden; commits are serialised by the store, so eight pages waiting keep them busy.
const maxPagesInMemory = 8

// reload loads, validates and resolves the config file again. Changes that need a restart are refused.
func (d *shared) reload(old *config.Config) (*config.Config, error) {
	if d.opt.ConfigPath == "" {
		return nil, errors.New("no config file to reload")
	}
	next, warnings, err := config.Load(d.opt.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("invalid config %s:\n%w", d.opt.ConfigPath, err)
	}
	for _, w := range warnings {
		d.opt.Logger.Warn("config warning", "warning", w)
	}
	if err := next.ResolveSecrets(); err != nil {
		return nil, err
	}
	if next.Store.Backend != old.Store.Backend || !reflect.DeepEqual(next.Store.Etcd, old.Store.Etcd) {
		return nil, errors.New("store.backend or store.etcd changed: needs a restart")
	}
	if next.Store.Path != old.Store.Path {
		return nil, fmt.Errorf("store.path changed from %s to %s: needs a restart", old.Store.Path, next.Store.Path)
	}
	if next.Server.Listen != old.Server.Listen {
		return nil, fmt.Errorf("server.listen changed from %s to %s: needs a restart", old.Server.Listen, next.Server.Listen)
	}
	return next, nil
}
