package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// Bounds of GET /v1/dead-letters.
const (
	DefaultDeadLetterLimit = 100
	MaxDeadLetterLimit     = 1000
)

// DeadLetterDoc is one dead-lettered event as the API (and `wizfetch incidents dead-letter`) shows it.
type DeadLetterDoc struct {
	Seq      uint64          `json:"seq"`
	Reason   string          `json:"reason"`
	FailedAt time.Time       `json:"failed_at"`
	Attempts int             `json:"attempts"`
	Event    json.RawMessage `json:"event,omitempty"`
}

// handleDeadLetters serves GET /v1/dead-letters?sink=NAME[&limit=N]: the events a sink rejected for
// good, oldest first, so that the CLI can list them while the daemon holds the store.
func (s *Server) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	sink := r.URL.Query().Get("sink")
	if sink == "" {
		writeError(w, http.StatusBadRequest, "sink is required", "sink")
		return
	}
	limit, ok := queryLimit(w, r, DefaultDeadLetterLimit, MaxDeadLetterLimit)
	if !ok || !s.storeOpen(w) {
		return
	}
	dls, err := s.opt.Store.DeadLetters(sink, limit)
	if err != nil {
		s.log.Error("read dead letters", "sink", sink, "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the dead letters", "")
		return
	}
	out := make([]DeadLetterDoc, 0, len(dls))
	for _, d := range dls {
		out = append(out, DeadLetterDocOf(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// DeadLetterDocOf renders a stored dead letter as the API shows it (the event only when it is JSON).
func DeadLetterDocOf(d store.DeadLetter) DeadLetterDoc {
	doc := DeadLetterDoc{Seq: d.Seq, Reason: d.Reason, FailedAt: d.FailedAt, Attempts: d.Attempts}
	if json.Valid(d.Data) {
		doc.Event = d.Data
	}
	return doc
}

// queryLimit reads the optional ?limit= of a listing (def when absent). A bad value is answered 400
// naming the parameter, and ok is false.
func queryLimit(w http.ResponseWriter, r *http.Request, def, max int) (limit int, ok bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		writeError(w, http.StatusBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(max), "limit")
		return 0, false
	}
	return n, true
}

// storeOpen answers 503 and reports false when the server has no store.
func (s *Server) storeOpen(w http.ResponseWriter) bool {
	if s.opt.Store == nil {
		writeError(w, http.StatusServiceUnavailable, "the store is not open", "")
		return false
	}
	return true
}
