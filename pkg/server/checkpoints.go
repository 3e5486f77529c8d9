package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// CheckpointView is one feed checkpoint as GET /v1/checkpoints and `wizfetch checkpoint show` show
// it: the watermark, the open window's pinned start (and whether a cursor continues it), the
// first-run pin and the time of the last write. The cursor itself stays in the store: it is Wiz's
// opaque string, useful to nobody.
type CheckpointView struct {
	Instance    string    `json:"instance"`
	Feed        string    `json:"feed"`
	Watermark   time.Time `json:"watermark,omitzero"`
	WindowAfter time.Time `json:"window_after,omitzero"`
	Cursor      bool      `json:"mid_window"`
	FirstStart  time.Time `json:"first_start,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// Checkpoints returns the checkpoints of st, of instance and feed when they are not "", ordered by
// instance then feed.
func Checkpoints(st *store.Store, instance, feed string) ([]CheckpointView, error) {
	out := []CheckpointView{}
	err := st.View(func(tx *store.Tx) error {
		all, err := tx.Checkpoints()
		if err != nil {
			return err
		}
		for _, e := range all {
			if (instance != "" && e.Instance != instance) || (feed != "" && e.Feed != feed) {
				continue
			}
			cp := e.Checkpoint
			out = append(out, CheckpointView{
				Instance: e.Instance, Feed: e.Feed, Watermark: cp.Watermark, WindowAfter: cp.WindowAfter,
				Cursor: cp.Cursor != "", FirstStart: cp.FirstStart, UpdatedAt: cp.UpdatedAt,
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

// handleCheckpoints answers GET /v1/checkpoints[?instance=NAME][&feed=created|updates].
func (s *Server) handleCheckpoints(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	feed := q.Get("feed")
	if feed != "" && feed != "created" && feed != "updates" {
		writeError(w, http.StatusBadRequest, "feed must be created or updates", "feed")
		return
	}
	if !s.storeOpen(w) {
		return
	}
	cps, err := Checkpoints(s.opt.Store, q.Get("instance"), feed)
	if err != nil {
		s.log.Error("read checkpoints", "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the checkpoints", "")
		return
	}
	writeJSON(w, http.StatusOK, cps)
}
