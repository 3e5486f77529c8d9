package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// Operator views go through the running daemon's API when it answers, else read the store directly
// (read-only). Repairs (checkpoint reset, replay) need the store itself, so they refuse while a daemon
// holds it (DESIGN.md §4).

// daemonClient talks to the running daemon at server.listen.
type daemonClient struct {
	base  string
	token string
	http  *http.Client
}

func newDaemonClient(cfg *config.Config) *daemonClient {
	host, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil {
		return nil
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return &daemonClient{
		base:  "http://" + net.JoinHostPort(host, port),
		token: cfg.Server.AuthToken.Reveal(),
		http:  &http.Client{Timeout: 5 * time.Second},
	}
}

// get fetches path from the daemon; ok is false when no daemon answers.
func (c *daemonClient) get(ctx context.Context, path string) (body []byte, status int, ok bool) {
	if c == nil {
		return nil, 0, false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, false
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, false
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, 0, false
	}
	return body, resp.StatusCode, true
}

// loadOpsConfig loads the config and reads its secret files (the server token) without requiring Wiz
// credentials: operator views must work on a box that only has the store.
func loadOpsConfig(cmd *cobra.Command, env *Env) (*config.Config, error) {
	cfg, err := loadConfig(cmd, configPath(cmd, env))
	if err != nil {
		return nil, err
	}
	if cfg.Server.AuthTokenFile != "" {
		_ = cfg.ResolveSecrets() // best effort: only the token matters here
	}
	return cfg, nil
}

func printJSON(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(body), "", "  "); err != nil {
		_, err = w.Write(body)
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// viewThroughDaemon prints what the running daemon answers at path, or, when no daemon answers,
// what fromStore reads from the store opened read-only. A daemon that answers with an error is
// reported as such, never as silent.
func viewThroughDaemon(cmd *cobra.Command, cfg *config.Config, path string, fromStore func(*store.Store) (any, error)) error {
	body, code, ok := newDaemonClient(cfg).get(cmd.Context(), path)
	switch {
	case ok && code == http.StatusOK:
		return printJSON(cmd.OutOrStdout(), body)
	case ok:
		return failure(fmt.Errorf("the daemon at %s answered HTTP %d: %s", cfg.Server.Listen, code, strings.TrimSpace(string(body))))
	}
	st, err := openStoreForView(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := fromStore(st)
	if err != nil {
		return failure(err)
	}
	return writeJSON(cmd.OutOrStdout(), v)
}

// openStoreForView opens the store read-only; a daemon holding it is reported plainly.
func openStoreForView(cfg *config.Config) (*store.Store, error) {
	if cfg.Store.Backend == config.StoreEtcd {
		st, err := openEtcdStore(context.Background(), cfg, true)
		if err != nil {
			return nil, failure(fmt.Errorf("the daemon's API did not answer at %s and the store could not be read: %w", cfg.Server.Listen, err))
		}
		return st, nil
	}
	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, failure(fmt.Errorf("the daemon's API did not answer at %s and the store could not be read: %w", cfg.Server.Listen, err))
	}
	return st, nil
}

// openStoreForRepair opens the store for writing; it refuses while a daemon runs.
func openStoreForRepair(cfg *config.Config) (*store.Store, error) {
	if cfg.Store.Backend == config.StoreEtcd {
		st, err := openEtcdStore(context.Background(), cfg, false)
		if err != nil {
			return nil, failure(err)
		}
		return st, nil
	}
	st, err := store.Open(cfg.Store.Path, store.Options{Timeout: 2 * time.Second})
	if errors.Is(err, store.ErrLocked) {
		return nil, failure(fmt.Errorf("%w: stop the daemon first (this command changes the store)", err))
	}
	if err != nil {
		return nil, failure(err)
	}
	return st, nil
}

func newHealthcheckCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the local daemon answers /healthz (for Docker HEALTHCHECK)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen := env.Getenv("WIZFETCH_SERVER_LISTEN")
			if listen == "" {
				cfg, _, err := config.Load(configPath(cmd, env))
				if err != nil {
					listen = config.Default().Server.Listen
				} else {
					listen = cfg.Server.Listen
				}
			}
			c := newDaemonClient(&config.Config{Server: config.Server{Listen: listen}})
			_, code, ok := c.get(cmd.Context(), "/healthz")
			if !ok {
				return failure(fmt.Errorf("no daemon answers at %s", listen))
			}
			if code != http.StatusOK {
				return failure(fmt.Errorf("daemon at %s is not healthy (HTTP %d)", listen, code))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
}

func newStatusCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show feeds (watermark, lag, backlog, errors) and sinks (pending, dead letters)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			if body, code, ok := newDaemonClient(cfg).get(cmd.Context(), "/v1/status"); ok {
				if code != http.StatusOK {
					return failure(fmt.Errorf("daemon answered %d: %s", code, bytes.TrimSpace(body)))
				}
				return printJSON(cmd.OutOrStdout(), body)
			}
			st, err := openStoreForView(cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			return writeJSON(cmd.OutOrStdout(), storeStatus(st, cfg))
		},
	}
}

type offlineStatus struct {
	Source      string                  `json:"source"`
	Checkpoints []server.CheckpointView `json:"checkpoints"`
	Sinks       []offlineSinkState      `json:"sinks"`
	Refetch     int                     `json:"refetch_queue"`
}

type offlineSinkState struct {
	Name        string `json:"name"`
	Pending     int    `json:"pending"`
	DeadLetters int    `json:"dead_letters"`
}

func storeStatus(st *store.Store, cfg *config.Config) offlineStatus {
	out := offlineStatus{Source: "store (daemon not running)"}
	out.Checkpoints, _ = server.Checkpoints(st, "", "")
	for _, s := range cfg.Sinks {
		p, _ := st.OutboxDepth(s.Name)
		d, _ := st.DeadLetterCount(s.Name)
		out.Sinks = append(out.Sinks, offlineSinkState{Name: s.Name, Pending: p, DeadLetters: d})
	}
	out.Refetch, _ = st.RefetchDepth()
	return out
}

func newCheckpointCommand(env *Env) *cobra.Command {
	var instance, feedName, to string
	cmd := &cobra.Command{Use: "checkpoint", Short: "Show or reset feed checkpoints"}
	cmd.PersistentFlags().StringVar(&instance, "instance", "", "only this instance")
	cmd.PersistentFlags().StringVar(&feedName, "feed", "", "only this feed (created or updates)")
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print checkpoints (watermark, open window, first-run start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			if feedName != "" && feedName != "created" && feedName != "updates" {
				return usageError(fmt.Errorf("--feed: %q is not created or updates", feedName))
			}
			// The running daemon answers first (DESIGN.md §4), in the same form as the store.
			path := "/v1/checkpoints?instance=" + queryEscape(instance) + "&feed=" + queryEscape(feedName)
			if body, code, ok := newDaemonClient(cfg).get(cmd.Context(), path); ok {
				switch code {
				case http.StatusOK:
					return printJSON(cmd.OutOrStdout(), body)
				case http.StatusNotFound: // a daemon older than /v1/checkpoints: the store may answer
				default:
					return failure(fmt.Errorf("daemon answered %d: %s", code, bytes.TrimSpace(body)))
				}
			}
			var st *store.Store
			if cfg.Store.Backend == config.StoreEtcd {
				st, err = openEtcdStore(cmd.Context(), cfg, true) // replicas never lock the reader out
			} else {
				st, err = store.Open(cfg.Store.Path, store.Options{ReadOnly: true, Timeout: time.Second})
			}
			if err != nil {
				return failure(fmt.Errorf("read checkpoints: %w", err))
			}
			defer st.Close()
			cps, err := server.Checkpoints(st, instance, feedName)
			if err != nil {
				return failure(err)
			}
			return writeJSON(cmd.OutOrStdout(), cps)
		},
	})
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Reset checkpoints: with --to TIME the feed backfills from TIME, else it starts over as on a first run",
		Long: `Reset checkpoints (the daemon must be stopped). With --to TIME (RFC 3339, or a duration ago
such as 3d) the feed's window starts again at TIME; without it the checkpoint is deleted and the next run
pins now - lookback. Incidents already emitted are not emitted again: dedup uses the stored incidents.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			var at time.Time
			if to != "" {
				if at, err = parseTimeArg(to, time.Now()); err != nil {
					return usageError(fmt.Errorf("--to: %w", err))
				}
			}
			if feedName != "" && feedName != "created" && feedName != "updates" {
				return usageError(fmt.Errorf("--feed: %q is not created or updates", feedName))
			}
			if instance != "" {
				if _, ok := cfg.Instance(instance); !ok {
					return usageError(fmt.Errorf("--instance: %q is not configured", instance))
				}
			}
			st, err := openStoreForRepair(cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			n := 0
			err = st.Update(func(tx *store.Tx) error {
				for _, inst := range cfg.Instances {
					if instance != "" && inst.Name != instance {
						continue
					}
					for _, f := range []string{"created", "updates"} {
						if feedName != "" && f != feedName {
							continue
						}
						if at.IsZero() {
							if err := tx.DeleteCheckpoint(inst.Name, f); err != nil {
								return err
							}
						} else if err := tx.PutCheckpoint(inst.Name, f, store.Checkpoint{FirstStart: at.UTC(), UpdatedAt: time.Now().UTC()}); err != nil {
							return err
						}
						n++
					}
				}
				return nil
			})
			if err != nil {
				return failure(fmt.Errorf("reset checkpoints: %w", err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reset %d checkpoint(s)\n", n)
			return nil
		},
	}
	reset.Flags().StringVar(&to, "to", "", "start the window at this time (RFC 3339 or a duration ago, e.g. 3d)")
	cmd.AddCommand(reset)
	return cmd
}

// parseTimeArg accepts RFC 3339 or a duration ago ("3d", "12h").
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration such as 3d", s)
	}
	return now.Add(-d), nil
}

func queryEscape(s string) string { return url.QueryEscape(s) }

// configSink shortens config.Sink in predicates.
type configSink = config.Sink
