package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wizfetch/wizfetch/pkg/app"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// startMCPDaemon runs the real daemon against a simulator with two MCP users and returns its URL
// and a simulated issue id.
func startMCPDaemon(t *testing.T) (url, issueID string) {
	t.Helper()
	frozen := time.Now().Add(10 * time.Minute) // every generated issue is visible
	sim, err := wizsim.New(wizsim.Options{Issues: 50, Seed: 5, Now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	dir := t.TempDir()
	for name, tok := range map[string]string{"alice": "alice-secret-token", "bob": "bob-secret-token"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	body := "wiz:\n  api_url: " + sim.GraphQLURL() + "\n  auth_url: " + sim.TokenURL() +
		"\n  audience: wiz-api\n  client_id: wizsim-client\n  client_secret: wizsim-secret\n  requests_per_second: 50\n" +
		"fetch:\n  updates: false\n" +
		"store:\n  path: " + filepath.Join(dir, "state.db") + "\n" +
		"sinks:\n  - {name: file, type: jsonl, path: " + filepath.Join(dir, "incidents.jsonl") + "}\n" +
		"server:\n  listen: 127.0.0.1:0\n" +
		"mcp:\n  profiles:\n    reader: {tools: [list_incidents, get_issue, service_status]}\n" +
		"    responder: {tools: [list_incidents, get_issue, service_status, add_note]}\n" +
		"  users:\n    - {name: alice, profile: responder, token_file: " + filepath.Join(dir, "alice") + "}\n" +
		"    - {name: bob, profile: reader, token_file: " + filepath.Join(dir, "bob") + "}\n"
	path := filepath.Join(dir, "wizfetch.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Version: "test", OnListen: func(u string) { listening <- u }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	select {
	case url = <-listening:
	case err := <-done:
		t.Fatalf("daemon stopped: %v", err)
	}
	// The server listens before the engine (and so /mcp) is up: wait until the daemon is ready.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not become ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return url, sim.Snapshot()[0].ID
}

// TestMCPStdioThroughTheDaemon runs `wizfetch mcp` with an AI client (the SDK's own) on its stdin
// and stdout: the user's tools come from the running daemon, calls reach the simulator through
// it, and closing stdin ends the command with exit 0.
func TestMCPStdioThroughTheDaemon(t *testing.T) {
	url, issueID := startMCPDaemon(t)
	tests := []struct {
		name, token string
		tools       []string
	}{
		{"alice", "alice-secret-token", []string{"add_note", "get_issue", "list_incidents", "service_status"}},
		{"bob", "bob-secret-token", []string{"get_issue", "list_incidents", "service_status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			var stderr bytes.Buffer
			env := &Env{Stdout: outW, Stderr: &stderr, Version: "test", Getenv: func(k string) string {
				if k == MCPTokenEnv {
					return tt.token
				}
				return ""
			}}
			root := newRootCommand(env)
			root.SetArgs([]string{"mcp", "--url", url + "/mcp"})
			root.SetIn(inR)
			root.SetOut(outW)
			root.SetErr(&stderr)
			exited := make(chan error, 1)
			go func() {
				err := root.ExecuteContext(context.Background())
				_ = outW.Close()
				exited <- err
			}()

			client := sdk.NewClient(&sdk.Implementation{Name: "desktop", Version: "1"}, nil)
			cs, err := client.Connect(context.Background(), &sdk.IOTransport{Reader: outR, Writer: inW}, nil)
			if err != nil {
				t.Fatalf("connect over stdio: %v (stderr %s)", err, stderr.String())
			}
			res, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.tools) {
				t.Fatalf("tools %v, want %v", names, tt.tools)
			}
			got, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "get_issue", Arguments: map[string]any{"issue_id": issueID}})
			if err != nil || got.IsError {
				t.Fatalf("get_issue: %v %+v", err, got)
			}
			var issue struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(got.Content[0].(*sdk.TextContent).Text), &issue); err != nil || issue.ID != issueID {
				t.Fatalf("get_issue answered %v (%v)", got.Content, err)
			}
			if err := cs.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("wizfetch mcp: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("wizfetch mcp did not stop after stdin closed")
			}
			if strings.Contains(stderr.String(), tt.token) {
				t.Fatal("the token reached stderr")
			}
		})
	}
}

// TestMCPStdioWrongToken: a token the daemon does not know fails the first request with a clear
// error and exit 1.
func TestMCPStdioWrongToken(t *testing.T) {
	url, _ := startMCPDaemon(t)
	_, err := runMCPInitialize(url+"/mcp", "nobody-token")
	var exit *ExitError
	if err == nil || !errorsAs(err, &exit) || exit.Code != ExitFailure || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("err %v, want exit 1 naming Unauthorized", err)
	}
}

func errorsAs(err error, target **ExitError) bool {
	for err != nil {
		if e, ok := err.(*ExitError); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// The relay sends the token to the daemon at --url only: not over plain http to another host, and
// not where a redirect points.
func TestMCPStdioKeepsTheTokenToTheDaemon(t *testing.T) {
	run := func(url string) (string, error) { return runMCPInitialize(url, "secret-user-token") }
	_, err := run("http://192.0.2.10:8080/mcp")
	var exit *ExitError
	if err == nil || !errorsAs(err, &exit) || exit.Code != ExitUsage || !strings.Contains(err.Error(), "in clear") {
		t.Fatalf("plain http to another host: %v, want a usage error", err)
	}

	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Authorization"), "secret-user-token") {
			leaked.Store(true)
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer elsewhere.Close()
	redirecting := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/mcp", http.StatusTemporaryRedirect))
	defer redirecting.Close()
	if _, err := run(redirecting.URL + "/mcp"); err == nil {
		t.Error("a redirecting daemon: the relay succeeded")
	}
	if leaked.Load() {
		t.Fatal("the token followed a redirect to another server")
	}
}

// runMCPInitialize runs `wizfetch mcp --url url` with token, sending one initialize request, and
// returns its stdout and error.
func runMCPInitialize(url, token string) (string, error) {
	var stdout, stderr bytes.Buffer
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}` + "\n")
	env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		if k == MCPTokenEnv {
			return token
		}
		return ""
	}}
	root := newRootCommand(env)
	root.SetArgs([]string{"mcp", "--url", url})
	root.SetIn(in)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err := root.ExecuteContext(context.Background())
	return stdout.String(), err
}
