package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// MCP tool names: the tools wizfetch can serve to AI clients over the Model Context Protocol
// (pkg/mcp). A profile lists some of them; a tool in no profile is not served at all.
const (
	ToolListIncidents = "list_incidents"
	ToolGetIncident   = "get_incident"
	ToolGetIssue      = "get_issue"
	ToolIssueContext  = "issue_context"
	ToolServiceStatus = "service_status"
	ToolAddNote       = "add_note"
	ToolResolveIssue  = "resolve_issue"
	ToolRejectIssue   = "reject_issue"
	ToolReopenIssue   = "reopen_issue"
	ToolSetDueDate    = "set_due_date"
)

// MCPTools returns every tool name a profile may list, read tools first, in a fresh slice.
func MCPTools() []string {
	return []string{ToolListIncidents, ToolGetIncident, ToolGetIssue, ToolIssueContext, ToolServiceStatus,
		ToolAddNote, ToolResolveIssue, ToolRejectIssue, ToolReopenIssue, ToolSetDueDate}
}

// MCPWriteTools returns the tools that change Wiz issues, in a fresh slice.
func MCPWriteTools() []string {
	return []string{ToolAddNote, ToolResolveIssue, ToolRejectIssue, ToolReopenIssue, ToolSetDueDate}
}

// MCP is the `mcp:` block: AI clients reach wizfetch's tools at /mcp (and through `wizfetch mcp`)
// as named users, each bound to one profile that lists the tools the user may see and call. It is
// off (/mcp answers 404) unless at least one user is configured.
type MCP struct {
	Profiles map[string]MCPProfile `mapstructure:"profiles" yaml:"profiles"`
	Users    []MCPUser             `mapstructure:"users" yaml:"users"`
}

// MCPProfile is an access profile: the tools its users may list and call.
type MCPProfile struct {
	Tools []string `mapstructure:"tools" yaml:"tools"`
}

// MCPUser is one AI-client user. The token comes from TokenFile or TokenEnv (never from the file
// itself); ResolveSecrets reads it into Token.
type MCPUser struct {
	Name      string `mapstructure:"name" yaml:"name"`
	Profile   string `mapstructure:"profile" yaml:"profile"`
	TokenFile string `mapstructure:"token_file" yaml:"token_file,omitempty"`
	TokenEnv  string `mapstructure:"token_env" yaml:"token_env,omitempty"`
	// Token is the resolved bearer token (ResolveSecrets); never read from or shown in YAML.
	Token Secret `mapstructure:"-" yaml:"-"`
}

// Enabled reports whether any user is configured (the /mcp endpoint is served only then).
func (m MCP) Enabled() bool { return len(m.Users) > 0 }

// ProfileTools returns the tools of user's profile, in MCPTools order.
func (m MCP) ProfileTools(profile string) []string {
	p, ok := m.Profiles[profile]
	if !ok {
		return nil
	}
	var out []string
	for _, t := range MCPTools() {
		if slices.Contains(p.Tools, t) {
			out = append(out, t)
		}
	}
	return out
}

// mcpUserName is what user names must match: they appear in audit lines and in the notes written
// to Wiz ("— alice via wizfetch").
func mcpUserName() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`) }

// validateMCP checks the mcp block's values (not its token files: ResolveSecrets reads those).
func validateMCP(v *validator, m MCP) {
	names := make([]string, 0, len(m.Profiles))
	for name := range m.Profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	known := MCPTools()
	for _, name := range names {
		p := "mcp.profiles." + name
		if !namePattern().MatchString(name) {
			v.add(p, "profile name %q must match [a-z0-9][a-z0-9_-]*", name)
		}
		tools := m.Profiles[name].Tools
		if len(tools) == 0 {
			v.add(p+".tools", "required: list the tools of the profile (%s)", strings.Join(known, ", "))
		}
		seen := map[string]bool{}
		for i, t := range tools {
			key := fmt.Sprintf("%s.tools[%d]", p, i)
			switch {
			case !slices.Contains(known, t):
				v.add(key, "unknown tool %q (one of %s)", clipName(t), strings.Join(known, ", "))
			case seen[t]:
				v.add(key, "tool %q is listed twice", t)
			}
			seen[t] = true
		}
	}
	users := map[string]int{}
	for i, u := range m.Users {
		p := fmt.Sprintf("mcp.users[%d]", i)
		switch first, dup := users[u.Name]; {
		case u.Name == "":
			v.add(p+".name", "required")
		case !mcpUserName().MatchString(u.Name):
			v.add(p+".name", "%q must be 1 to 64 letters, digits or ._@- and start with a letter or digit", clipName(u.Name))
		case dup:
			v.add(p+".name", "%q is already the name of mcp.users[%d]", u.Name, first)
		default:
			users[u.Name] = i
		}
		if u.Profile == "" {
			v.add(p+".profile", "required (one of the profiles under mcp.profiles)")
		} else if _, ok := m.Profiles[u.Profile]; !ok {
			v.add(p+".profile", "unknown profile %q (configured: %s)", clipName(u.Profile), listOrNone(names))
		}
		switch {
		case u.TokenFile == "" && u.TokenEnv == "":
			v.add(p+".token_file", "required: set token_file or token_env (tokens never go in the file)")
		case u.TokenFile != "" && u.TokenEnv != "":
			v.add(p+".token_env", "set only one of token_file and token_env")
		case u.TokenEnv != "" && !envVarPattern().MatchString(u.TokenEnv):
			v.add(p+".token_env", "%q is not an environment variable name", clipName(u.TokenEnv))
		}
	}
}

// resolveMCP reads every user's token from its file or variable and refuses two users sharing a
// token (a call could not be attributed), and a user's token that is the server's auth_token
// (which opens the write-back API whatever the user's profile allows). Messages name keys and
// paths, never a token.
func resolveMCP(v *validator, m *MCP, serverToken Secret) {
	var server [sha256.Size]byte
	if serverToken != "" {
		server = sha256.Sum256([]byte(serverToken.Reveal()))
	}
	digests := map[[sha256.Size]byte]int{}
	for i := range m.Users {
		u := &m.Users[i]
		p := fmt.Sprintf("mcp.users[%d]", i)
		resolve(v, p, "token", &u.Token, u.TokenFile, u.TokenEnv)
		if u.Token == "" {
			continue
		}
		d := sha256.Sum256([]byte(u.Token.Reveal()))
		if serverToken != "" && subtle.ConstantTimeCompare(server[:], d[:]) == 1 {
			v.add(p+".token", "is the same as server.auth_token: an MCP user's token must not open the write-back API")
		}
		for prev, j := range digests {
			if subtle.ConstantTimeCompare(prev[:], d[:]) == 1 {
				v.add(p+".token", "is the same as the token of mcp.users[%d]: every user needs a token of their own", j)
			}
		}
		digests[d] = i
	}
}

// decodeMCP decodes the mcp block from the raw file (profile names keep their case, which viper's
// settings would lower).
func decodeMCP(cfg *Config, raw any) error {
	if raw == nil {
		return nil
	}
	if err := decodeInto(stripNulls(raw), &cfg.MCP); err != nil {
		return fmt.Errorf("mcp: %w", err)
	}
	// An empty block is the default (nil), so a shown config loads back equal.
	if len(cfg.MCP.Profiles) == 0 {
		cfg.MCP.Profiles = nil
	}
	if len(cfg.MCP.Users) == 0 {
		cfg.MCP.Users = nil
	}
	return nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func clipName(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}
