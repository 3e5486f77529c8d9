package etcdkv

import (
	"context"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
)

// A leader whose own large commit was cut off mid-record (a chunk written, then the head's
// transaction and the cleanup failed, as on an etcd timeout) is not wedged: its next commit is
// refused once, finishes the stray record (deletes it: it has no head, so it never committed) and
// the one after commits. (Opened as a replica opens its store: fenced, recovering nothing at Open.)
func TestLeaderRecoversItsOwnCutOffRecord(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	resp, err := cli.Put(context.Background(), "/w/election/k", "me")
	if err != nil {
		t.Fatal(err)
	}
	key, rev := "/w/election/k", resp.Header.Revision
	db, err := Open(context.Background(), Options{Client: cli, Prefix: "/w/",
		Fence: func() (string, int64, bool) { return key, rev, true }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx kv.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(context.Background(), chunkKey(db.recordPrefix(999), 0), "partial"); err != nil {
		t.Fatal(err)
	}
	put := func() error {
		return db.Update(func(tx kv.Tx) error { return tx.Bucket([]byte("b")).Put([]byte("k"), []byte("v")) })
	}
	if err := put(); err == nil {
		t.Fatal("a commit over a stray record succeeded without finishing it first")
	}
	if err := put(); err != nil {
		t.Fatalf("the commit after the stray record was finished: %v", err)
	}
	got, err := cli.Get(context.Background(), db.walPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 0 {
		t.Fatalf("write-ahead records left: %d (%v)", got.Count, err)
	}
}
