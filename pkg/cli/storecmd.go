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
	cmd.AddCommand(check, newStoreCopyCommand(env), newDropOutboxCommand(env))
	return cmd
}

// newDropOutboxCommand is `wizfetch store drop-outbox SINK`: it deletes the outbox of a sink the
// config no longer has, with the events it still held. On bbolt the daemon does this itself at start
// (DESIGN.md §2.6); on etcd it does not, because during a rolling change a replica whose config lacks
// a sink may lead while others still deliver to it, so the outbox stays until the operator drops it
// here, once no replica's config has the sink. Like every repair it needs the daemon (every replica)
// stopped, and on etcd holds the replicas' election while it runs.
func newDropOutboxCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "drop-outbox SINK",
		Short: "Delete the outbox of a sink the config no longer has (its undelivered events are lost)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			for _, s := range cfg.Sinks {
				if s.Name == name {
					return usageError(fmt.Errorf("sink %q is in the config: remove it there (and from every replica's config) first", name))
				}
			}
			st, err := openStoreForRepair(cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			found, n := false, 0
			err = st.Update(func(tx *store.Tx) error {
				have, err := tx.OutboxSinks()
				if err != nil {
					return err
				}
				for _, s := range have {
					found = found || s == name
				}
				if !found {
					return nil
				}
				n, err = tx.DropOutbox(name)
				return err
			})
			if err != nil {
				return failure(err)
			}
			if !found {
				return failure(fmt.Errorf("the store has no outbox of a sink %q", name))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dropped the outbox of sink %s: %d undelivered event(s)\n", name, n)
			return nil
		},
	}
}
