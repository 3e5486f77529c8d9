package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/ha"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// openEtcdStore opens the store of store.backend: etcd for an operator command. A view reads it
// as it stands, whoever leads (it never recovers or writes). A repair holds the replicas' election
// while it runs (holdStore: it refuses while any replica runs, and no replica can lead until it
// is done), fences its writes with it, and first finishes a commit the last leader left
// half-applied, as a new leader would.
func openEtcdStore(ctx context.Context, cfg *config.Config, readOnly bool) (*store.Store, error) {
	e := cfg.Store.Etcd
	if err := resolveEtcdPassword(&e); err != nil {
		return nil, err
	}
	client, err := ha.Connect(ctx, e)
	if err != nil {
		return nil, err
	}
	closers := []func() error{client.Close}
	opts := etcdkv.Options{Client: client, Prefix: e.Prefix, SkipRecover: readOnly}
	if !readOnly {
		fence, release, err := holdStore(ctx, client, e.Prefix)
		if err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("%w (this command changes the store)", err)
		}
		opts.Fence = fence
		closers = append([]func() error{release}, closers...)
	}
	db, err := etcdkv.Open(ctx, opts)
	if err != nil {
		closeAll(closers)
		return nil, err
	}
	st, err := store.OpenKV(closingEngine{db, closers}, store.Options{ReadOnly: readOnly})
	if err != nil {
		_ = db.Close()
		closeAll(closers)
		return nil, err
	}
	return st, nil
}

// closingEngine is the etcd engine of an operator command: closing it also resigns what the
// command held and closes its client, in that order.
type closingEngine struct {
	*etcdkv.DB
	closers []func() error
}

func (c closingEngine) Close() error {
	err := c.DB.Close()
	if cerr := closeAll(c.closers); err == nil {
		err = cerr
	}
	return err
}

func closeAll(closers []func() error) error {
	var first error
	for _, c := range closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// holdStore takes the replicas' election under prefix for an operator command that writes the
// store: it refuses at once when a replica leads or campaigns, and while the command holds it no
// replica started meanwhile can lead (it queues behind the command). fence fences the command's
// own writes (they fail if its lease ends); release resigns and ends the lease.
func holdStore(ctx context.Context, client *clientv3.Client, prefix string) (fence func() (string, int64, bool), release func() error, err error) {
	if err := refuseLiveReplicas(ctx, client, prefix); err != nil {
		return nil, nil, err
	}
	session, err := concurrency.NewSession(client, concurrency.WithTTL(30))
	if err != nil {
		return nil, nil, fmt.Errorf("take the election: %w", err)
	}
	election := concurrency.NewElection(session, prefix+"election/")
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := election.Campaign(cctx, "wizfetch-operator-"+strconv.Itoa(os.Getpid())); err != nil {
		_ = session.Close()
		return nil, nil, fmt.Errorf("a replica started meanwhile and leads under %s: stop every daemon first (%w)", prefix, err)
	}
	key, rev := election.Key(), election.Rev()
	fence = func() (string, int64, bool) {
		select {
		case <-session.Done():
			return "", 0, false
		default:
			return key, rev, true
		}
	}
	release = func() error {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = election.Resign(rctx)
		return session.Close()
	}
	return fence, release, nil
}
