package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/ha"
	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// newStoreCopyCommand is `wizfetch store copy --from bbolt:PATH --to etcd` (and back): it moves the
// whole state between backends with every daemon stopped, and verifies the copy by counting the
// keys of every bucket on both sides.
func newStoreCopyCommand(env *Env) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "copy --from bbolt:PATH|etcd --to etcd|bbolt:PATH",
		Short: "Copy the whole store between backends (every daemon stopped), verified by counts",
		Long: `Copy the whole state (checkpoints, incidents, outboxes, dead letters, queues) from one backend
to the other, then count the keys of every bucket on both sides and fail if they differ.

"etcd" is the cluster and prefix of store.etcd in the config; "bbolt:PATH" a bbolt file. The
destination must be empty: a bbolt file that does not exist yet, or an etcd prefix that holds
nothing. Stop the daemon (every replica) first: the copy refuses a bbolt file another process holds
and an etcd prefix where a replica campaigns or leads. A bbolt file of an older wizfetch is
migrated first. An interrupted copy leaves a partial destination: delete it and copy again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOpsConfig(cmd, env)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			start := time.Now()
			src, closeSrc, err := openCopyEnd(ctx, cfg, from, false)
			if err != nil {
				return failure(fmt.Errorf("--from %s: %w", from, err))
			}
			defer closeSrc()
			dst, closeDst, err := openCopyEnd(ctx, cfg, to, true)
			if err != nil {
				return failure(fmt.Errorf("--to %s: %w", to, err))
			}
			defer closeDst()
			var skip []string
			if strings.HasPrefix(to, "bbolt:") {
				// Standbys' pushes were queued before the copy (openCopyEnd); bbolt has no inbox.
				skip = append(skip, store.InboxBucket)
			}
			want, err := kv.Copy(dst, src, skip...)
			if err != nil {
				return failure(err)
			}
			got, err := kv.Count(dst)
			if err != nil {
				return failure(err)
			}
			if diff := want.Diff(got); diff != "" {
				return failure(fmt.Errorf("the copy differs from the source:\n%s", diff))
			}
			if to == "etcd" {
				// A store on etcd also has the inbox of standbys' pushes, which a bbolt store
				// lacks: open the copy once read-write, as the first replica would.
				if err := openOnce(dst.(*etcdkv.DB)); err != nil {
					return failure(fmt.Errorf("open the copy on etcd: %w", err))
				}
			}
			keys := 0
			for _, n := range want.Keys {
				keys += n
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d keys in %d buckets from %s to %s in %s; counts verified\n",
				keys, len(want.Keys), from, to, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source: bbolt:PATH or etcd (store.etcd of the config)")
	cmd.Flags().StringVar(&to, "to", "", "destination: etcd or bbolt:PATH (must be empty)")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// openCopyEnd opens one side of a copy. A bbolt source is opened (and migrated) through the store
// first, so that what is copied is the current schema; a bbolt destination must not exist yet.
func openCopyEnd(ctx context.Context, cfg *config.Config, spec string, dest bool) (kv.DB, func(), error) {
	switch {
	case strings.HasPrefix(spec, "bbolt:"):
		path := strings.TrimPrefix(spec, "bbolt:")
		if path == "" {
			return nil, nil, errors.New("bbolt: needs a file path (bbolt:/var/lib/wizfetch/wizfetch.db)")
		}
		if dest {
			if _, err := os.Stat(path); err == nil {
				return nil, nil, fmt.Errorf("%s exists: copy into a new file", path)
			}
		} else {
			st, err := store.Open(path, store.Options{Timeout: 2 * time.Second})
			if errors.Is(err, store.ErrLocked) {
				return nil, nil, fmt.Errorf("%w: stop the daemon first", err)
			}
			if err != nil {
				return nil, nil, err
			}
			if err := st.Close(); err != nil {
				return nil, nil, err
			}
		}
		// A new file gets the page size store.Open gives one (16 KiB, store/store.go).
		db, err := boltkv.Open(path, &boltkv.Options{Timeout: 2 * time.Second, PageSize: 16 << 10})
		if err != nil {
			return nil, nil, err
		}
		return db, func() { _ = db.Close() }, nil
	case spec == "etcd":
		if cfg.Store.Backend != config.StoreEtcd && len(cfg.Store.Etcd.Endpoints) == 0 {
			return nil, nil, errors.New("the config has no store.etcd endpoints")
		}
		e := cfg.Store.Etcd
		if err := resolveEtcdPassword(&e); err != nil {
			return nil, nil, err
		}
		client, err := ha.Connect(ctx, e)
		if err != nil {
			return nil, nil, err
		}
		// The copy holds the replicas' election (no replica runs, and none can lead until it is
		// done) and fences its writes with it.
		fence, release, err := holdStore(ctx, client, e.Prefix)
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		done := func() { _ = release(); _ = client.Close() }
		// No replica runs, so no commit is in flight: a write-ahead record left by a crash is
		// finished here, before the copy reads (or refuses) the prefix.
		db, err := etcdkv.Open(ctx, etcdkv.Options{Client: client, Prefix: e.Prefix, Fence: fence})
		if err != nil {
			done()
			return nil, nil, err
		}
		if !dest {
			// Pushes posted by standbys wait in the inbox, which a bbolt store does not read:
			// queue them first.
			if err := flushInbox(db); err != nil {
				_ = db.Close()
				done()
				return nil, nil, err
			}
		}
		return db, func() { _ = db.Close(); done() }, nil
	default:
		return nil, nil, fmt.Errorf("%q is neither bbolt:PATH nor etcd", spec)
	}
}

// resolveEtcdPassword reads store.etcd.password_file, as the daemon does.
func resolveEtcdPassword(e *config.Etcd) error {
	if e.PasswordFile == "" {
		return nil
	}
	b, err := os.ReadFile(e.PasswordFile)
	if err != nil {
		return fmt.Errorf("store.etcd.password_file: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return fmt.Errorf("store.etcd.password_file: %s is empty", e.PasswordFile)
	}
	e.Password = config.Secret(pw)
	return nil
}

// refuseLiveReplicas fails when a replica campaigns or leads under prefix: the copy needs every
// daemon stopped.
func refuseLiveReplicas(ctx context.Context, client *clientv3.Client, prefix string) error {
	resp, err := client.Get(ctx, prefix+"election/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("read the election: %w", err)
	}
	if resp.Count > 0 {
		return fmt.Errorf("%d replica(s) run under %s: stop every daemon first", resp.Count, prefix)
	}
	return nil
}

// openOnce opens the store on db read-write and closes it, leaving db open: what the first
// replica would add to a store copied from bbolt (the inbox bucket).
func openOnce(db *etcdkv.DB) error {
	st, err := store.OpenKV(keepOpen{db}, store.Options{})
	if err != nil {
		return err
	}
	return st.Close()
}

// flushInbox moves the pushes posted to the store of db into its refetch queue, leaving db open.
func flushInbox(db *etcdkv.DB) error {
	st, err := store.OpenKV(keepOpen{db}, store.Options{})
	if err != nil {
		return err
	}
	if err := st.FlushInbox(); err != nil {
		_ = st.Close()
		return err
	}
	return st.Close()
}

// keepOpen lends the etcd engine (with its Post) to a store whose Close must not close it.
type keepOpen struct{ *etcdkv.DB }

func (keepOpen) Close() error { return nil }
