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
		t, err := sink.NewTarget(sc, st, log)
		if err != nil {
			for _, t := range targets {
				t.Sink.Close()
			}
			return nil, fmt.Errorf("%w: sinks[%d] (%s): %w", ErrConfig, i, sc.Name, err)
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// pushHandler is the Wiz push receiver (issue 8); nil until it exists.
func (d *shared) pushHandler() http.Handler { return nil }

// actionsHandler is the write-back API (issue 8); nil until it exists.
func (d *shared) actionsHandler() http.Handler { return nil }
