package app

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/sink"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// openSinks opens every configured sink and its dispatcher target.
func openSinks(cfgs []config.Sink, st *store.Store, log *slog.Logger) ([]sink.Target, error) {
	var targets []sink.Target
	for i, sc := range cfgs {
		var s sink.Sink
		var err error
		switch sc.Type {
		case config.SinkJSONL:
			s, err = sink.OpenJSONL(sc.Name, sc.Path, log)
		default:
			err = fmt.Errorf("%w: sinks[%d].type: %s is not supported by this build yet", ErrConfig, i, sc.Type)
		}
		if err != nil {
			for _, t := range targets {
				t.Sink.Close()
			}
			return nil, err
		}
		targets = append(targets, sink.Target{Sink: s, RetryFor: sc.RetryFor.D()})
	}
	return targets, nil
}

// pushHandler is the Wiz push receiver (issue 8); nil until it exists.
func (d *shared) pushHandler() http.Handler { return nil }

// actionsHandler is the write-back API (issue 8); nil until it exists.
func (d *shared) actionsHandler() http.Handler { return nil }
