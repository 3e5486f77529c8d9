package cli

import (
	"context"
	"fmt"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/ha"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// openEtcdStore opens the store of store.backend: etcd for an operator command. A view reads it
// as it stands, whoever leads (it never recovers or writes); a repair refuses while any replica
// runs, and then first finishes a commit the last leader left half-applied, as a new leader would.
func openEtcdStore(ctx context.Context, cfg *config.Config, readOnly bool) (*store.Store, error) {
	e := cfg.Store.Etcd
	if err := resolveEtcdPassword(&e); err != nil {
		return nil, err
	}
	client, err := ha.Connect(ctx, e)
	if err != nil {
		return nil, err
	}
	if !readOnly {
		if err := refuseLiveReplicas(ctx, client, e.Prefix); err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("%w (this command changes the store)", err)
		}
	}
	db, err := etcdkv.Open(ctx, etcdkv.Options{Client: client, Prefix: e.Prefix, SkipRecover: readOnly})
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	st, err := store.OpenKV(closingClient{db, client}, store.Options{ReadOnly: readOnly})
	if err != nil {
		_ = db.Close()
		_ = client.Close()
		return nil, err
	}
	return st, nil
}

// closingClient is the etcd engine of an operator command: closing the store closes the client too.
type closingClient struct {
	*etcdkv.DB
	client interface{ Close() error }
}

func (c closingClient) Close() error {
	err := c.DB.Close()
	if cerr := c.client.Close(); err == nil {
		err = cerr
	}
	return err
}
