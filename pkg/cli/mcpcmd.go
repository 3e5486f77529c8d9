package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/server"
)

// MCPTokenEnv is the environment variable `wizfetch mcp` reads the user's token from (unless
// --token-file is given).
const MCPTokenEnv = "WIZFETCH_MCP_TOKEN"

// newMCPCommand is `wizfetch mcp`: MCP over stdio for desktop AI clients, relayed to the running
// daemon's /mcp with the user's own token. It never opens the store or talks to Wiz itself: the
// daemon governs, audits and rate-limits every call exactly as for a client that connects to
// /mcp directly.
func newMCPCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "MCP over stdio for desktop AI clients, through the running daemon with your token",
		Long: `Serve the Model Context Protocol on stdin/stdout, relaying every message to the running daemon's
/mcp endpoint with your MCP user token (from --token-file, else $` + MCPTokenEnv + `). The daemon is
found at --url, else at server.listen of the config. Desktop AI clients start this command; what you
may list and call is what your profile in the daemon's mcp: block allows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMCP(cmd, env)
		},
	}
	cmd.Flags().String("url", "", "the daemon's MCP endpoint (default: http://<server.listen>/mcp from the config)")
	cmd.Flags().String("token-file", "", "a file holding your MCP token (default: $"+MCPTokenEnv+")")
	return cmd
}

func runMCP(cmd *cobra.Command, env *Env) error {
	endpoint, _ := cmd.Flags().GetString("url")
	given := endpoint != ""
	if !given {
		cfg, err := loadConfig(cmd, configPath(cmd, env))
		if err != nil {
			return err
		}
		host, port, err := net.SplitHostPort(cfg.Server.Listen)
		if err != nil {
			return usageError(fmt.Errorf("server.listen %q is not host:port; pass --url", cfg.Server.Listen))
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		endpoint = "http://" + net.JoinHostPort(host, port) + "/mcp"
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError(fmt.Errorf("--url %q is not an http(s) URL", endpoint))
	}
	// The endpoint derived from server.listen is this host's own address (the kernel keeps such
	// traffic on the host); one given with --url may cross the network.
	if given && u.Scheme == "http" && !server.IsLoopback(u.Host) {
		// The token is a bearer credential: over plain HTTP it would cross the network in clear.
		return usageError(fmt.Errorf("--url %s: plain http to another host would send your token in clear; use https, or run wizfetch mcp on the daemon's host", u.Redacted()))
	}
	token, err := mcpToken(cmd, env)
	if err != nil {
		return usageError(err)
	}

	var local sdk.Transport = &sdk.StdioTransport{}
	if in, out := cmd.InOrStdin(), cmd.OutOrStdout(); in != os.Stdin || out != os.Stdout {
		local = &sdk.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}}
	}
	remote := &sdk.StreamableClientTransport{
		Endpoint: endpoint,
		HTTPClient: &http.Client{Transport: bearerTransport{token: token, next: http.DefaultTransport},
			// The token goes to the daemon at --url only, never where a redirect points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}
	if err := relayMCP(cmd.Context(), local, remote); err != nil {
		return failure(fmt.Errorf("mcp relay to %s: %w", endpoint, err))
	}
	return nil
}

// mcpToken reads the user's token from --token-file or the environment; it is never printed.
func mcpToken(cmd *cobra.Command, env *Env) (string, error) {
	if f, _ := cmd.Flags().GetString("token-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("--token-file: %s is empty", f)
	}
	if tok := strings.TrimSpace(env.Getenv(MCPTokenEnv)); tok != "" {
		return tok, nil
	}
	return "", fmt.Errorf("no MCP token: pass --token-file or set %s", MCPTokenEnv)
}

// relayMCP copies JSON-RPC messages both ways between the local connection (the AI client) and the
// daemon until the AI client closes its end (a clean stop) or either side fails.
func relayMCP(ctx context.Context, local, remote sdk.Transport) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lc, err := local.Connect(ctx)
	if err != nil {
		return fmt.Errorf("open stdio: %w", err)
	}
	defer lc.Close()
	rc, err := remote.Connect(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer rc.Close()

	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	stop := func(err error) {
		once.Do(func() {
			firstErr = err
			cancel()
			_ = lc.Close()
			_ = rc.Close()
		})
	}
	wg.Add(2)
	go func() { // AI client -> daemon
		defer wg.Done()
		for {
			msg, err := lc.Read(ctx)
			if err != nil {
				if errors.Is(err, io.EOF) || ctx.Err() != nil {
					stop(nil) // the AI client closed stdin: a clean stop
				} else {
					stop(fmt.Errorf("read stdin: %w", err))
				}
				return
			}
			if err := rc.Write(ctx, msg); err != nil {
				stop(fmt.Errorf("send to the daemon: %w", err))
				return
			}
		}
	}()
	go func() { // daemon -> AI client
		defer wg.Done()
		for {
			msg, err := rc.Read(ctx)
			if err != nil {
				if ctx.Err() != nil {
					stop(nil)
				} else {
					stop(fmt.Errorf("receive from the daemon: %w", err))
				}
				return
			}
			if err := lc.Write(ctx, msg); err != nil {
				stop(fmt.Errorf("write stdout: %w", err))
				return
			}
		}
	}()
	wg.Wait()
	return firstErr
}

// bearerTransport adds the user's token to every request to the daemon.
type bearerTransport struct {
	token string
	next  http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.next.RoundTrip(r)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
