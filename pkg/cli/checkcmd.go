package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// checkRetryFor bounds the retries of each check step, and checkTimeout each request.
const (
	checkRetryFor = 10 * time.Second
	checkTimeout  = 30 * time.Second
)

func newCheckCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Test the configuration and credentials with real calls (like XSOAR's Test button)",
		Long: `Test the configuration and credentials with real calls, step by step, for every instance:
config valid -> token obtained -> the issues query with first: 1 answered. Exit 0 only if every step passed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			path := configPath(cmd, env)
			cfg, err := loadConfig(cmd, path)
			if err != nil {
				fmt.Fprintf(out, "FAIL config valid: %s\n", path)
				return err
			}
			if err := cfg.ResolveSecrets(); err != nil {
				fmt.Fprintf(out, "FAIL config valid: %v\n", err)
				return usageError(err)
			}
			fmt.Fprintf(out, "ok   config valid: %s\n", path)
			failed := 0
			for _, inst := range cfg.Instances {
				opts := wiz.OptionsFromConfig(inst.Wiz, env.Version)
				// A check answers in seconds: retry a blip, but report an unreachable endpoint
				// instead of retrying it for the daemon's two minutes.
				opts.RetryFor = checkRetryFor
				// and each request: an endpoint that takes the connection and never answers would
				// otherwise hold the check for wiz.timeout (115 s).
				if opts.Timeout <= 0 || opts.Timeout > checkTimeout {
					opts.Timeout = checkTimeout
				}
				for _, step := range wiz.Check(cmd.Context(), opts) {
					mark := "ok  "
					if !step.OK {
						mark = "FAIL"
						failed++
					}
					fmt.Fprintf(out, "%s [%s] %s (%s)", mark, inst.Name, step.Name, step.Duration.Round(1e6))
					if step.Detail != "" {
						fmt.Fprintf(out, ": %s", step.Detail)
					}
					fmt.Fprintln(out)
				}
			}
			if failed > 0 {
				return failure(errors.New("check failed"))
			}
			fmt.Fprintln(out, "all checks passed")
			return nil
		},
	}
}
