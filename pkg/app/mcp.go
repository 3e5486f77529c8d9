package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/mcp"
	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"golang.org/x/time/rate"
)

// mcpHandler is /mcp. It lives as long as the server and delegates to the engine of the moment, so
// a reload that changes users, profiles or tokens takes effect at once; without MCP users it
// answers 404.
func (d *shared) mcpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eng := d.current.p.Load()
		switch {
		case eng == nil:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		case eng.mcp == nil:
			http.Error(w, "MCP is not configured (add users under mcp: in the config)", http.StatusNotFound)
		default:
			eng.mcp.ServeHTTP(w, r)
		}
	})
}

// newMCPHandler builds the MCP server of one engine: its tools use the engine's Wiz clients (each
// tenant's token and rate limiter, shared with the feeds), the store and the status tracker. Nil
// when no MCP user is configured.
func (d *shared) newMCPHandler(cfg *config.Config, eng *engine) (http.Handler, error) {
	if !cfg.MCP.Enabled() {
		return nil, nil
	}
	clients := make(map[string]mcp.Client, len(eng.instances))
	for name, rt := range eng.instances {
		clients[name] = rt.client
	}
	h, err := mcp.NewHandler(mcp.Options{
		Config: cfg.MCP, Clients: clients, DefaultInstance: cfg.Instances[0].Name,
		Store: d.store, Tracker: d.tracker, Version: d.opt.Version, Logger: d.opt.Logger,
		Calls: d.metrics.MCPCalls(), Now: d.opt.Now, Limiters: d.mcpLimiters,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return h, nil
}

// contextSource serves GET /v1/issues/{id}/context with the Wiz client of the engine of the moment.
type contextSource struct{ d *shared }

var _ server.ContextSource = contextSource{}

// IssueContext implements server.ContextSource.
func (c contextSource) IssueContext(ctx context.Context, instance, issueID string) (*wiz.IssueContext, error) {
	eng := c.d.current.p.Load()
	if eng == nil {
		return nil, fmt.Errorf("%w: the daemon is starting", wiz.ErrTransient)
	}
	if instance == "" && len(eng.cfg.Instances) > 0 {
		instance = eng.cfg.Instances[0].Name
	}
	rt, ok := eng.instances[instance]
	if !ok {
		return nil, fmt.Errorf("%w %q", server.ErrUnknownInstance, instance)
	}
	if rt.contextLimit != nil {
		now := time.Now()
		r := rt.contextLimit.ReserveN(now, contextCost)
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			return nil, &server.RateLimitedError{RetryAfter: max(d, time.Second)}
		}
	}
	return rt.client.IssueContext(ctx, issueID)
}

// The budget of GET /v1/issues/{id}/context per instance, in Wiz requests: one lookup may make
// contextCost of them, and the tenant's ~3 requests/s are the feeds' first. Three lookups at once,
// then one every 12 s.
const (
	contextCost  = 3 + wiz.MaxContextProjects // the issue, its resource, its evidence, its projects' teams
	contextRate  = rate.Limit(0.5)
	contextBurst = 3 * contextCost
)
