package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/app"
)

func newDemoCommand(env *Env) *cobra.Command {
	var o app.DemoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the real daemon against a built-in simulated Wiz tenant",
		Long: `Run the real daemon against an in-process Wiz simulator that keeps creating and changing
issues. Incidents go to DIR/incidents.jsonl; progress is printed as it goes. Stops on Ctrl-C or after
--duration, with exit 0. Each run simulates a new tenant and starts from a fresh store and file in
DIR, replacing what the last demo run wrote there (and refusing a DIR with files it did not write).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Issues < 1 {
				return usageError(fmt.Errorf("--issues: %d, want at least 1", o.Issues))
			}
			if o.Duration < 0 {
				return usageError(fmt.Errorf("--duration: %s is negative", o.Duration))
			}
			o.Out = cmd.OutOrStdout()
			o.Logger = newLogger(env)
			o.Version = env.Version
			err := app.Demo(cmd.Context(), o)
			if _, ok := errors.AsType[*app.DemoDirError](err); ok {
				return usageError(err)
			}
			return appError(err)
		},
	}
	cmd.Flags().IntVar(&o.Issues, "issues", 2000, "issues in the simulated tenant")
	cmd.Flags().DurationVar(&o.Duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	cmd.Flags().StringVar(&o.Dir, "dir", "./wizfetch-demo", "directory for the store and incidents.jsonl")
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:0", "address of the daemon's HTTP server")
	return cmd
}
