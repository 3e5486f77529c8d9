package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// newStoreCommand is `wizfetch store check`: bbolt's consistency check over the whole store file,
// for an operator who suspects damage (after a disk fault, or when the daemon stopped with "store …
// is damaged"). It reads the file with the daemon stopped: bbolt's lock admits no reader beside a
// writer.
func newStoreCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Inspect the state store"}
	var max int
	check := &cobra.Command{
		Use:   "check",
		Short: "Check the store file's consistency (daemon stopped); exit 1 listing the problems",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			if cfg.Store.Backend == config.StoreEtcd {
				return failure(errors.New("store check reads a bbolt file; with store.backend: etcd, etcd checks its own data (etcdctl check perf, endpoint health; its boltdb pages are verified by etcd itself)"))
			}
			start := time.Now()
			st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true, Timeout: 2 * time.Second})
			if errors.Is(err, store.ErrLocked) {
				return failure(fmt.Errorf("%w: stop the daemon first (the check reads the whole file)", err))
			}
			if err != nil {
				return failure(err)
			}
			defer st.Close()
			problems, err := st.Check(max)
			if err != nil {
				return failure(err)
			}
			out := cmd.OutOrStdout()
			if len(problems) == 0 {
				fmt.Fprintf(out, "store %s: ok (checked in %s)\n", cfg.Store.Path, time.Since(start).Round(time.Millisecond))
				return nil
			}
			for _, p := range problems {
				fmt.Fprintf(out, "problem: %v\n", p)
			}
			return failure(fmt.Errorf("store %s has %d problem(s) (at most %d listed): %s",
				cfg.Store.Path, len(problems), max, store.CorruptAdvice))
		},
	}
	check.Flags().IntVar(&max, "max", 20, "list at most this many problems")
	cmd.AddCommand(check, newStoreCopyCommand(env))
	return cmd
}
