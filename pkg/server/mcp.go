package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// ContextSource gathers an issue's context (wiz.Client.IssueContext) in the named instance ("" is
// the default one). An unknown instance is ErrUnknownInstance.
type ContextSource interface {
	IssueContext(ctx context.Context, instance, issueID string) (*wiz.IssueContext, error)
}

// ErrUnknownInstance is a ContextSource's answer for an instance that is not configured.
var ErrUnknownInstance = errors.New("unknown instance")

// RateLimitedError is a ContextSource's answer when the instance's budget for context lookups is
// spent: the route answers 429 with Retry-After.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limit: issue context lookups share the tenant's Wiz budget with the feeds; try again in %s", e.RetryAfter.Round(time.Second))
}

// mcpRoutes mounts the AI-client endpoint and the issue-context API:
//
//   - /mcp (Options.MCP) authenticates its users itself, with their own tokens, never the server
//     token; 404 when MCP is not configured;
//   - GET /v1/issues/{issue_id}/context[?instance=I] is a read, behind the server token like every
//     other /v1 read: 200 with the wiz.IssueContext, 400 for an id that is not a UUID (before any
//     Wiz call), 404 for an unknown instance or issue, 429 (with Retry-After) when the instance's
//     budget for context lookups is spent, 502 for any other Wiz failure.
func (s *Server) mcpRoutes(mux *http.ServeMux) {
	mcp := s.opt.MCP
	if mcp == nil {
		mcp = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "MCP is not configured (add users under mcp: in the config)", "")
		})
	}
	mux.Handle("/mcp", mcp)
	mux.Handle("GET /v1/issues/{issue_id}/context", s.requireToken(http.HandlerFunc(s.handleIssueContext)))
}

func (s *Server) handleIssueContext(w http.ResponseWriter, r *http.Request) {
	if s.opt.IssueContext == nil {
		writeError(w, http.StatusNotFound, "issue context is not available", "")
		return
	}
	id := r.PathValue("issue_id")
	if err := writeback.ValidateIssueID(id); err != nil {
		writeError(w, http.StatusBadRequest, "issue_id: "+err.Error(), "issue_id")
		return
	}
	ic, err := s.opt.IssueContext.IssueContext(r.Context(), r.URL.Query().Get("instance"), id)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, ic)
	case errors.Is(err, ErrUnknownInstance):
		writeError(w, http.StatusNotFound, err.Error(), "instance")
	case errors.As(err, new(*RateLimitedError)):
		var rl *RateLimitedError
		errors.As(err, &rl)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(rl.RetryAfter.Seconds()))))
		writeError(w, http.StatusTooManyRequests, err.Error(), "")
	case errors.Is(err, wiz.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error(), "")
	case errors.Is(err, wiz.ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error(), "")
	default:
		s.log.Warn("issue context", "issue_id", id, "err", err)
		writeError(w, http.StatusBadGateway, err.Error(), "")
	}
}
