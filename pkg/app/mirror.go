package app

import (
	"context"
	"sync"

	"github.com/wizfetch/wizfetch/pkg/mirror"
	"github.com/wizfetch/wizfetch/pkg/sink"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// startMirrors wires the bi-directional mirroring of every xsoar sink with a mirror block (issue
// 20): its Wiz → XSOAR actions feed metrics and status, and with from_xsoar a poller (pkg/mirror)
// mirrors XSOAR closes and reopens to Wiz through each instance's client — the one whose rate
// limiter the feeds, pushes and write-back share — until ctx ends. It must run before the
// dispatcher delivers (the observer is set on the sink). The returned function waits for the
// pollers to stop.
func (d *shared) startMirrors(ctx context.Context, targets []sink.Target, eng *engine) func() {
	var wg sync.WaitGroup
	for _, t := range targets {
		x, ok := t.Sink.(*sink.XSOAR)
		if !ok || x.MirrorConfig() == nil {
			continue
		}
		name := x.Name()
		observe := func(direction, action, result string, err error) {
			d.metrics.MirrorAction(name, direction, action, result)
			d.tracker.MirrorAction(name, direction, action, result, err)
		}
		x.SetMirrorObserver(observe)
		d.tracker.EnableMirror(name)
		cfg := x.MirrorConfig()
		if !cfg.FromXSOAR {
			continue
		}
		clients := make(map[string]writeback.Client, len(eng.instances))
		for inst, rt := range eng.instances {
			clients[inst] = rt.client
		}
		p, err := mirror.New(mirror.Options{
			XSOAR: x, Store: d.store, Clients: clients, Mirror: *cfg,
			Logger: d.opt.Logger, Observe: observe, Now: d.opt.Now,
		})
		if err != nil {
			d.opt.Logger.Error("XSOAR mirror not started", "sink", name, "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Run(ctx)
		}()
	}
	return wg.Wait
}
