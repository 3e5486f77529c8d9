// Package cli is wizfetch's command tree (cobra). It parses flags, resolves the config path, maps
// errors to exit codes and calls into pkg/app; it never touches process signals (cmd/wizfetch does).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes (DESIGN.md §4).
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// DefaultConfigPath is used when neither --config nor WIZFETCH_CONFIG is given.
const DefaultConfigPath = "/etc/wizfetch/wizfetch.yaml"

// Env is everything a command may touch of the process: arguments, streams, environment lookups,
// the SIGHUP reload channel and the build version.
type Env struct {
	Args    []string
	Stdout  io.Writer
	Stderr  io.Writer
	Getenv  func(string) string
	Reload  <-chan struct{}
	Version string
}

// ExitError carries the exit code a failure should produce.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks an error as invalid usage or config (exit 2).
func usageError(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// failure marks an error as a runtime failure (exit 1).
func failure(err error) error { return &ExitError{Code: ExitFailure, Err: err} }

// Main runs one wizfetch command and returns the process exit code.
func Main(ctx context.Context, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	root := newRootCommand(&env)
	root.SetArgs(env.Args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "wizfetch: %v\n", err)
	var exitErr *ExitError
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	// Anything cobra itself rejects (unknown command or flag, wrong arg count) is a usage error.
	return ExitUsage
}

func newRootCommand(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "wizfetch",
		Short:         "Turn Wiz security issues into XSOAR-style incidents",
		Long:          "wizfetch pulls Wiz issues over the GraphQL API, classifies and maps them into XSOAR-style incidents, and delivers them to XSOAR, webhooks, Splunk or a JSONL file, without losses or duplicates.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "config file (default: $WIZFETCH_CONFIG, else "+DefaultConfigPath+")")
	root.AddCommand(
		newVersionCommand(env),
		newConfigCommand(env),
		newRunCommand(env),
		newDemoCommand(env),
		newCheckCommand(env),
		newIssueCommand(env),
		newStatusCommand(env),
		newCheckpointCommand(env),
		newIncidentsCommand(env),
		newStoreCommand(env),
		newHealthcheckCommand(env),
		newBenchCommand(env),
		newBenchSimCommand(env),
		newMCPCommand(env),
	)
	root.InitDefaultCompletionCmd() // cobra adds it at Execute otherwise, after the walk below
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command below root that only groups subcommands (config,
// store, checkpoint, incidents, issue, completion) refuse an unknown subcommand as invalid usage (exit 2), as
// cobra does at the root only: below it cobra prints the group's help and exits 0, so a typo such
// as `wizfetch config valdate && deploy` passed. Run bare, a group prints its help (exit 0).
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if cmd.SuggestionsMinimumDistance <= 0 {
					cmd.SuggestionsMinimumDistance = 2 // cobra's default, set by its own root check only
				}
				if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
					msg += "; did you mean " + strings.Join(suggestions, " or ") + "?"
				}
				return usageError(errors.New(msg))
			}
		}
		refuseUnknownSubcommands(c)
	}
}

// configPath resolves the config file: --config, else WIZFETCH_CONFIG, else the default path.
func configPath(cmd *cobra.Command, env *Env) string {
	if p, _ := cmd.Flags().GetString("config"); p != "" {
		return p
	}
	if p := env.Getenv("WIZFETCH_CONFIG"); p != "" {
		return p
	}
	return DefaultConfigPath
}
