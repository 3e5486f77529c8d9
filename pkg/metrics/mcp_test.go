package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMCPCalls counts by tool and result, keeps labels bounded, and survives a second MCPCalls
// (a reload) on the same registry.
func TestMCPCalls(t *testing.T) {
	m := New("test")
	c := m.MCPCalls()
	c.Call("get_issue", "ok")
	c.Call("get_issue", "ok")
	c.Call("made-up-tool-"+strings.Repeat("x", 100), "refused")
	m.MCPCalls().Call("add_note", "whatever")
	want := `
# HELP wizfetch_mcp_calls_total MCP tools/call requests of AI clients by tool and result (ok, error, invalid, not_found, refused, rate_limited, unauthorized).
# TYPE wizfetch_mcp_calls_total counter
wizfetch_mcp_calls_total{result="ok",tool="get_issue"} 2
wizfetch_mcp_calls_total{result="other",tool="add_note"} 1
wizfetch_mcp_calls_total{result="refused",tool="other"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "wizfetch_mcp_calls_total"); err != nil {
		t.Fatal(err)
	}
}
