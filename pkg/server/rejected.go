package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// Bounds of GET /v1/rejected-issues.
const (
	DefaultRejectedLimit = 100
	MaxRejectedLimit     = 1000
)

// RejectedIssueDoc is one rejected issue (an issue Wiz returned that could not be an incident) as the
// API and `wizfetch incidents rejected` show it.
type RejectedIssueDoc struct {
	Instance string `json:"instance"`
	// IssueID is the node's id as Wiz sent it ("" when it had none).
	IssueID string `json:"issue_id"`
	// Feed is the feed that met the node last ("created", "updates") or "push".
	Feed string `json:"feed"`
	// Reason is one of incomplete, too_large, mapping_failed; Detail says more.
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	// Count is how often the node was met, between FirstSeen and LastSeen.
	Count     int       `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// NodeBytes is the size of the node as sent; Node the node itself, when the store kept it whole
	// (NodeClipped: the store kept only its first store.MaxRejectedRawBytes, which are not shown;
	// `wizfetch issue get ID` reads the issue from Wiz).
	NodeBytes   int             `json:"node_bytes"`
	NodeClipped bool            `json:"node_clipped,omitempty"`
	Node        json.RawMessage `json:"node,omitempty"`
}

// RejectedIssueDocOf is the document of one stored record.
func RejectedIssueDocOf(r store.RejectedIssue) RejectedIssueDoc {
	d := RejectedIssueDoc{
		Instance: r.Instance, IssueID: r.IssueID, Feed: r.Feed, Reason: r.Reason, Detail: r.Detail,
		Count: r.Count, FirstSeen: r.FirstSeen, LastSeen: r.LastSeen,
		NodeBytes: r.RawBytes, NodeClipped: r.RawClipped,
	}
	if !r.RawClipped && r.Raw != "" && json.Valid([]byte(r.Raw)) {
		d.Node = json.RawMessage(r.Raw)
	}
	return d
}

// handleRejectedIssues serves GET /v1/rejected-issues[?instance=NAME][&limit=N]: the issues the
// pipeline recorded as rejected, by instance then issue id, so that the CLI can list them while the
// daemon holds the store.
func (s *Server) handleRejectedIssues(w http.ResponseWriter, r *http.Request) {
	instance := r.URL.Query().Get("instance")
	if strings.IndexByte(instance, 0) >= 0 {
		writeError(w, http.StatusBadRequest, "instance must not contain a NUL byte", "instance")
		return
	}
	limit, ok := queryLimit(w, r, DefaultRejectedLimit, MaxRejectedLimit)
	if !ok || !s.storeOpen(w) {
		return
	}
	recs, err := s.opt.Store.RejectedIssues(instance, limit)
	if err != nil {
		s.log.Error("read rejected issues", "instance", instance, "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the rejected issues", "")
		return
	}
	out := make([]RejectedIssueDoc, 0, len(recs))
	for _, rec := range recs {
		out = append(out, RejectedIssueDocOf(rec))
	}
	writeJSON(w, http.StatusOK, out)
}
