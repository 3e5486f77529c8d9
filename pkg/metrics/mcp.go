package metrics

import (
	"errors"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wizfetch/wizfetch/pkg/config"
)

// MCP call results, the values the result label of wizfetch_mcp_calls_total may take (pkg/mcp's
// Result constants); anything else is counted as "other".
var mcpResults = []string{"ok", "error", "invalid", "not_found", "refused", "rate_limited", "unauthorized"}

// MCPCalls counts the tools/call requests of AI clients: wizfetch_mcp_calls_total{tool,result}.
type MCPCalls struct {
	vec *prometheus.CounterVec
}

// MCPCalls returns the counter of MCP tool calls, registering it on first use; later calls (a
// reloaded config builds a new MCP handler) return the same counter.
func (m *Metrics) MCPCalls() *MCPCalls {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wizfetch_mcp_calls_total",
		Help: "MCP tools/call requests of AI clients by tool and result (ok, error, invalid, not_found, refused, rate_limited, unauthorized).",
	}, []string{"tool", "result"})
	if err := m.reg.Register(vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				vec = existing
			}
		}
	}
	return &MCPCalls{vec: vec}
}

// Call counts one call. A tool name that is not one of config.MCPTools (a client can send any
// name) is counted as "other", so the label stays bounded.
func (c *MCPCalls) Call(tool, result string) {
	if !slices.Contains(config.MCPTools(), tool) {
		tool = "other"
	}
	if !slices.Contains(mcpResults, result) {
		result = "other"
	}
	c.vec.WithLabelValues(tool, result).Inc()
}
