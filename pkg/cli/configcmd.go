package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/config"
)

func newConfigCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Validate or show the configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Check every config value; exit 2 naming each bad key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := configPath(cmd, env)
			if _, err := loadConfig(cmd, path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", path)
			return nil
		},
	}, &cobra.Command{
		Use:   "show",
		Short: "Print the effective config (defaults and WIZFETCH_* overrides applied, secrets as ***)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, configPath(cmd, env))
			if err != nil {
				return err
			}
			out, err := cfg.ShowYAML()
			if err != nil {
				return failure(fmt.Errorf("render config: %w", err))
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
	return cmd
}

// loadConfig loads and validates the config, printing warnings to stderr. Any problem is a usage error
// (exit 2) whose message lists every bad key, one per line.
func loadConfig(cmd *cobra.Command, path string) (*config.Config, error) {
	cfg, warnings, err := config.Load(path)
	for _, w := range warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
	}
	if err != nil {
		return nil, usageError(fmt.Errorf("invalid config %s:\n%w", path, err))
	}
	return cfg, nil
}
