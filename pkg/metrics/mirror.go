package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Mirror label values that are accepted as they are; anything else is reported as "other".
var (
	mirrorDirections = []string{"to_xsoar", "to_wiz"}
	mirrorActions    = []string{"close", "reopen", "note", "poll"}
	mirrorResults    = []string{"ok", "refused", "error"}
)

func newMirrorActions() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_mirror_actions_total",
		Help: "Bi-directional XSOAR mirroring by direction (to_xsoar, to_wiz), action (close, reopen, note; poll for the XSOAR polls) and result (ok; refused: given up, not retried; error: retried).",
	}, []string{"sink", "direction", "action", "result"})
}

// MirrorAction counts one mirrored action (or poll) of an xsoar sink.
func (m *Metrics) MirrorAction(sink, direction, action, result string) {
	m.mirrorActions.WithLabelValues(sink, bounded(direction, mirrorDirections), bounded(action, mirrorActions),
		bounded(result, mirrorResults)).Inc()
}

// bounded returns v when it is one of allowed, else "other".
func bounded(v string, allowed []string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return "other"
}
