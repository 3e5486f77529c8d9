package app

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/metrics"
	"github.com/wizfetch/wizfetch/pkg/push"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/sink"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// openSinks opens every configured sink and its dispatcher target.
func openSinks(cfgs []config.Sink, st *store.Store, replicated bool, log *slog.Logger) ([]sink.Target, error) {
	var targets []sink.Target
	for i, sc := range cfgs {
		t, err := sink.NewTarget(sc, st, log)
		if err != nil {
			for _, t := range targets {
				t.Sink.Close()
			}
			return nil, fmt.Errorf("%w: sinks[%d] (%s): %w", ErrConfig, i, sc.Name, err)
		}
		if replicated && t.Batch < replicatedMinBatch {
			t.Batch = replicatedMinBatch
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// replicatedMinBatch is the smallest delivery batch on the etcd backend. Every batch costs the
// dispatcher two commits (its plan, then its acknowledgement), and on etcd each is a consensus
// round with an fsync on a majority of members: at the 50 events of a per-event sink's batch on
// bbolt, a webhook sink delivered about 1,100 events/s, at 200 about 2,000 (BENCHMARKS.md,
// BenchmarkPipelineOnEtcd), above the API's pace. The batch still delivers in order, one request
// per event for xsoar and webhook; a failover may send it again (at-least-once).
const replicatedMinBatch = 200

// pushHandler is the Wiz push receiver. It lives as long as the server and delegates to the engine of
// the moment, so a reload that changes webhook credentials or instances takes effect at once.
func (d *shared) pushHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eng := d.current.p.Load()
		if eng == nil || eng.push == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		eng.push.ServeHTTP(w, r)
	})
}

// actionsHandler is the write-back API, delegating to the engine of the moment (its clients share each
// tenant's rate limiter with the feeds).
func (d *shared) actionsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eng := d.current.p.Load()
		if eng == nil || eng.actions == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		eng.actions.ServeHTTP(w, r)
	})
}

// The push worker re-fetches queued pushes in batches (one Wiz request and one store commit per
// batch) only when the refetcher and the queue can: held at compile time here, where they are wired.
var (
	_ push.BatchRefetcher = (*feed.Refetcher)(nil)
	_ push.BatchWorkQueue = (*store.Store)(nil)
)

// newPushWorker builds the refetch worker of one engine (push.Worker): each instance's pushes are
// decided by its refetcher, and the dispatcher is woken when one committed an event.
func (d *shared) newPushWorker(eng *engine, notify func()) *push.Worker {
	refetchers := make(map[string]push.Refetcher, len(eng.instances))
	for name, rt := range eng.instances {
		refetchers[name] = rt.refetcher
	}
	return push.NewWorker(push.WorkerOptions{
		Queue:       d.store,
		Refetchers:  refetchers,
		Now:         d.opt.Now,
		Logger:      d.opt.Logger,
		BaseBackoff: d.opt.RetryBackoff,
		PollEvery:   d.opt.PollEvery,
		Observe: func(instance, outcome string) {
			d.metrics.PushProcessed(instance, pushResult(outcome))
		},
		Committed:  notify,
		LagRetries: d.opt.Mode == schedule.Daemon,
	})
}

// newPushHandler builds the receiver of one engine: pushes go to the worker's durable refetch queue
// (push.Worker.Queue), which wakes the worker at once.
func (d *shared) newPushHandler(cfg *config.Config, queue push.Queue) http.Handler {
	names := make([]string, 0, len(cfg.Instances))
	for _, inst := range cfg.Instances {
		names = append(names, inst.Name)
	}
	return push.NewHandler(push.Options{
		Auth:      push.AuthFromConfig(cfg.Server.Webhook),
		Instances: names,
		Queue:     queue,
		Now:       d.opt.Now,
		Logger:    d.opt.Logger,
		Observe: func(instance, result string) {
			if result == push.ResultAccepted {
				d.metrics.PushReceived(instance)
			} else {
				d.metrics.PushRejected(pushRejectReason(result))
			}
		},
	})
}

// newActionsHandler builds the write-back API of one engine.
func (d *shared) newActionsHandler(cfg *config.Config, eng *engine) http.Handler {
	clients := map[string]writeback.Client{}
	for name, rt := range eng.instances {
		clients[name] = rt.client
	}
	def := ""
	if len(cfg.Instances) > 0 {
		def = cfg.Instances[0].Name
	}
	return writeback.NewHandler(clients, def, d.opt.Logger)
}

// pushRejectReason maps the receiver's rejection results onto the metric's bounded label set.
func pushRejectReason(result string) string {
	switch result {
	case push.ResultUnauthorized:
		return metrics.PushRejectAuth
	case push.ResultTooLarge:
		return metrics.PushRejectTooLarge
	case push.ResultUnknownInstance:
		return metrics.PushRejectUnknownInstance
	case push.ResultMethodNotAllowed:
		return metrics.PushRejectMethod
	case push.ResultQueueError:
		return metrics.PushRejectQueue
	case push.ResultQueueFull:
		return metrics.PushRejectQueueFull
	default: // bad JSON, no or bad issue id, unreadable body
		return metrics.PushRejectBadRequest
	}
}

// pushResult maps a refetch outcome onto the metric's bounded label set.
func pushResult(outcome string) string {
	switch outcome {
	case feed.PushCreated, feed.PushUpdated:
		return metrics.PushResultOK
	case feed.PushNotFound:
		return metrics.PushResultNotFound
	case feed.PushRejected:
		return metrics.PushResultRejected
	case push.OutcomeError:
		return metrics.PushResultError
	default: // unchanged, not matching, unknown instance (push.OutcomeUnknownInstance)
		return metrics.PushResultIgnored
	}
}
