package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mcpBase = "wiz:\n  api_url: https://api.us1.app.wiz.io/graphql\n"

// TestMCPValidation pairs each bad mcp block with the line naming its key.
func TestMCPValidation(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown tool", "mcp:\n  profiles:\n    reader: {tools: [list_incidents, drop_tables]}\n",
			`mcp.profiles.reader.tools[1]: unknown tool "drop_tables" (one of list_incidents,`},
		{"unknown profile", "mcp:\n  profiles:\n    reader: {tools: [get_issue]}\n  users:\n    - {name: bob, profile: admin, token_env: MCP_BOB}\n",
			`mcp.users[0].profile: unknown profile "admin" (configured: reader)`},
		{"no profiles", "mcp:\n  users:\n    - {name: bob, profile: reader, token_env: MCP_BOB}\n",
			`mcp.users[0].profile: unknown profile "reader" (configured: none)`},
		{"empty profile", "mcp:\n  profiles:\n    reader: {tools: []}\n", "mcp.profiles.reader.tools: required"},
		{"tool twice", "mcp:\n  profiles:\n    reader: {tools: [get_issue, get_issue]}\n", `mcp.profiles.reader.tools[1]: tool "get_issue" is listed twice`},
		{"no token source", "mcp:\n  profiles:\n    reader: {tools: [get_issue]}\n  users:\n    - {name: bob, profile: reader}\n",
			"mcp.users[0].token_file: required"},
		{"literal token", "mcp:\n  profiles:\n    reader: {tools: [get_issue]}\n  users:\n    - {name: bob, profile: reader, token: abc}\n",
			"mcp.users[0].token: unknown key"},
		{"duplicate user", "mcp:\n  profiles:\n    reader: {tools: [get_issue]}\n  users:\n    - {name: bob, profile: reader, token_env: A}\n    - {name: bob, profile: reader, token_env: B}\n",
			`mcp.users[1].name: "bob" is already the name of mcp.users[0]`},
		{"bad user name", "mcp:\n  profiles:\n    reader: {tools: [get_issue]}\n  users:\n    - {name: \"bob smith\", profile: reader, token_env: A}\n",
			"mcp.users[0].name:"},
		{"unknown key", "mcp:\n  profile:\n    reader: {tools: [get_issue]}\n", "mcp.profile: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadBytes([]byte(mcpBase + tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want a line containing %q", err, tt.want)
			}
		})
	}
}

// TestMCPTokens: tokens come from their file or variable, two users may not share one, and no
// token is ever shown or echoed.
func TestMCPTokens(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "alice")
	if err := os.WriteFile(file, []byte("tok-alice-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCP_BOB", "tok-bob-456")
	yaml := mcpBase + "mcp:\n  profiles:\n    reader: {tools: [get_issue]}\n  users:\n" +
		"    - {name: alice, profile: reader, token_file: " + file + "}\n    - {name: bob, profile: reader, token_env: MCP_BOB}\n"
	cfg, _, err := LoadBytes([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ResolveSecrets(); err != nil && !strings.Contains(err.Error(), "client_id") {
		t.Fatal(err)
	}
	if cfg.MCP.Users[0].Token.Reveal() != "tok-alice-123" || cfg.MCP.Users[1].Token.Reveal() != "tok-bob-456" {
		t.Fatalf("tokens %q %q", cfg.MCP.Users[0].Token, cfg.MCP.Users[1].Token)
	}
	if got := cfg.MCP.ProfileTools("reader"); len(got) != 1 || got[0] != ToolGetIssue {
		t.Fatalf("profile tools: %v", got)
	}
	shown, err := cfg.ShowYAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(shown), "tok-") {
		t.Fatalf("config show leaks a token:\n%s", shown)
	}

	t.Setenv("MCP_BOB", "tok-alice-123")
	err = cfg.ResolveSecrets()
	if err == nil || !strings.Contains(err.Error(), "mcp.users[1].token: is the same as the token of mcp.users[0]") || strings.Contains(err.Error(), "tok-") {
		t.Fatalf("shared token: %v", err)
	}
	t.Setenv("MCP_BOB", "")
	if err := cfg.ResolveSecrets(); err == nil || !strings.Contains(err.Error(), "mcp.users[1].token_env: environment variable MCP_BOB is not set") {
		t.Fatalf("missing variable: %v", err)
	}
	// A user's token that is the server's auth_token would open the write-back API to that user,
	// whatever their profile.
	t.Setenv("MCP_BOB", "tok-bob-456")
	cfg.Server.AuthToken = "tok-alice-123"
	err = cfg.ResolveSecrets()
	if err == nil || !strings.Contains(err.Error(), "mcp.users[0].token: is the same as server.auth_token") || strings.Contains(err.Error(), "tok-") {
		t.Fatalf("a user token that is the server token: %v", err)
	}
}
