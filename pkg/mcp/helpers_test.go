package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/time/rate"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

const (
	aliceToken = "alice-token-0123456789abcdef"
	bobToken   = "bob-token-0123456789abcdef"
)

// testMCPConfig is the issue's example: alice is a responder, bob a reader.
func testMCPConfig() config.MCP {
	return config.MCP{
		Profiles: map[string]config.MCPProfile{
			"reader": {Tools: []string{config.ToolListIncidents, config.ToolGetIncident, config.ToolGetIssue,
				config.ToolIssueContext, config.ToolServiceStatus}},
			"responder": {Tools: config.MCPTools()},
		},
		Users: []config.MCPUser{
			{Name: "alice", Profile: "responder", TokenEnv: "A", Token: aliceToken},
			{Name: "bob", Profile: "reader", TokenEnv: "B", Token: bobToken},
		},
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// audits returns the audit lines logged so far, decoded.
func (b *syncBuffer) audits(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "audit" {
			out = append(out, m)
		}
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// callCounter records Calls.
type callCounter struct {
	mu sync.Mutex
	n  map[[2]string]int
}

func (c *callCounter) Call(tool, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[[2]string]int{}
	}
	c.n[[2]string{tool, result}]++
}

func (c *callCounter) get(tool, result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[[2]string{tool, result}]
}

// fixture is a running daemon's MCP side: the simulator, a Wiz client on it, a store holding
// incidents for some of its issues, and the real HTTP server with /mcp mounted.
type fixture struct {
	sim    *wizsim.Server
	client *wiz.Client
	store  *store.Store
	url    string
	logs   *syncBuffer
	calls  *callCounter
	stored []wiz.Issue // the issues with a stored incident
	// handler is the MCP handler the fixture's server serves.
	handler http.Handler
}

type fixtureOptions struct {
	userRate  rate.Limit
	userBurst int
	now       func() time.Time
	// client, when set, wraps the Wiz client the handler uses.
	client func(*wiz.Client) Client
}

func newFixture(t *testing.T, fo fixtureOptions) *fixture {
	t.Helper()
	var ahead atomic.Bool
	sim, err := wizsim.New(wizsim.Options{Issues: 200, Seed: 7, Now: func() time.Time {
		if ahead.Load() {
			return time.Now().Add(10 * time.Minute) // every generated issue visible
		}
		return time.Now()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ahead.Store(true)
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	client, err := wiz.New(context.Background(), wiz.Options{APIURL: sim.URL(), AuthURL: sim.TokenURL(), Audience: wiz.AudienceCognito,
		ClientID: "wizsim-client", ClientSecret: "wizsim-secret", Version: "test", RetryFor: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "wizfetch.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	page, err := client.Issues(context.Background(), wiz.IssueFilter{}, nil, 30, "")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sim: sim, client: client, store: st, logs: &syncBuffer{}, calls: &callCounter{}, stored: page.Issues}
	err = st.Update(func(tx *store.Tx) error {
		for i, iss := range page.Issues {
			doc, _ := json.Marshal(map[string]any{"name": "rule - " + iss.ID, "type": "Wiz Issue", "severity": 2,
				"rawJSON": string(page.Raw[i]), "dbotMirrorId": iss.ID})
			now := time.Now().UTC()
			if err := tx.PutIncident(&store.IncidentRecord{Instance: "default", IssueID: iss.ID, Status: iss.Status,
				CreatedAt: iss.CreatedAt, Incident: doc, Version: 1, FirstSeen: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tracker := status.New("test", nil)
	tracker.AddFeed("default", "created")
	tracker.AddSink("file", "jsonl", 10)
	var hc Client = client
	if fo.client != nil {
		hc = fo.client(client)
	}
	h, err := NewHandler(Options{Config: testMCPConfig(), Clients: map[string]Client{"default": hc},
		DefaultInstance: "default", Store: st, Tracker: tracker, Version: "test",
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), Calls: f.calls,
		UserRate: fo.userRate, UserBurst: fo.userBurst, Now: fo.now})
	if err != nil {
		t.Fatal(err)
	}
	f.handler = h
	srv, err := server.New(server.Options{Listen: "127.0.0.1:0", MCP: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	f.url = srv.URL() + "/mcp"
	return f
}

// tokenTransport adds a bearer token to every request.
type tokenTransport struct{ token string }

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if t.token != "" {
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// connect opens an SDK client session to the fixture's /mcp with token.
func (f *fixture) connect(t *testing.T, token string) (*sdk.ClientSession, error) {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "test-client", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: f.url,
		HTTPClient: &http.Client{Transport: tokenTransport{token}}, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

func (f *fixture) mustConnect(t *testing.T, token string) *sdk.ClientSession {
	t.Helper()
	cs, err := f.connect(t, token)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return cs
}

// call calls a tool and returns its text result and whether it is a tool error.
func call(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) (string, bool, error) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return "", false, err
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	return text.String(), res.IsError, nil
}

// mustCall calls a tool that must succeed and decodes its JSON result into out (when non-nil).
func mustCall(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any, out any) {
	t.Helper()
	text, isErr, err := call(t, cs, tool, args)
	if err != nil || isErr {
		t.Fatalf("%s: err %v, tool error %v: %s", tool, err, isErr, text)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			t.Fatalf("%s: decode %q: %v", tool, text, err)
		}
	}
}

// issueOfType returns a stored issue of the given type, and one of another type when typ is "!X".
func (f *fixture) issueOfType(t *testing.T, typ string) wiz.Issue {
	t.Helper()
	not := strings.HasPrefix(typ, "!")
	for _, iss := range f.stored {
		if (!not && iss.Type == typ) || (not && iss.Type != typ[1:]) {
			return iss
		}
	}
	t.Fatalf("no stored issue of type %s", typ)
	return wiz.Issue{}
}
