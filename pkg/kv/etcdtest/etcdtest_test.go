package etcdtest_test

import (
	"context"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
)

func TestStartRestart(t *testing.T) {
	s := etcdtest.Start(t)
	cli := s.Client(t)
	ctx := context.Background()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart: got %v, want k=v (data kept)", resp.Kvs)
	}
}
