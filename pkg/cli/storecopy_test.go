package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// countBolt counts every bucket of a bbolt store file.
func countBolt(t *testing.T, path string) kv.Counts {
	t.Helper()
	db, err := boltkv.Open(path, &boltkv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := kv.Count(db)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A store moves from bbolt to etcd and back with every bucket, key and sequence; the etcd copy
// serves the operator views; a second copy into the same prefix, and a copy while a replica
// campaigns, are refused.
func TestStoreCopyRoundTripsThroughEtcd(t *testing.T) {
	path, dir := opsConfig(t)
	srv := etcdtest.Start(t)
	etcdSection := "  etcd:\n    endpoints: [" + srv.Endpoints()[0] + "]\n    prefix: /wizfetch/copy/\n"
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	withEtcd := strings.Replace(string(body), "store:\n", "store:\n"+etcdSection, 1)
	if err := os.WriteFile(path, []byte(withEtcd), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "state.db")

	r := runCLI(t, path, "store", "copy", "--from", "bbolt:"+src, "--to", "etcd")
	if r.code != 0 || !strings.Contains(r.stdout, "counts verified") {
		t.Fatalf("copy to etcd: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, path, "store", "copy", "--from", "bbolt:"+src, "--to", "etcd")
	if r.code != 1 || !strings.Contains(r.stderr, "copy only into an empty one") {
		t.Fatalf("a second copy into the same prefix: exit %d\n%s", r.code, r.stderr)
	}

	// The etcd copy is a store the operator views read (a replica's config: etcd, a network sink).
	etcdCfg := filepath.Join(dir, "etcd.yaml")
	replica := strings.Replace(withEtcd, "store:\n", "store:\n  backend: etcd\n", 1)
	replica = strings.Replace(replica, "type: jsonl, path: "+filepath.Join(dir, "incidents.jsonl"), "type: webhook, url: http://127.0.0.1:1/hook, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1)
	if err := os.WriteFile(etcdCfg, []byte(replica), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, etcdCfg, "checkpoint", "show", "--feed", "created")
	var cps []struct {
		Watermark string `json:"watermark"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &cps); err != nil || r.code != 0 || len(cps) != 1 || cps[0].Watermark == "" {
		t.Fatalf("checkpoint show on etcd: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	bboltView := runCLI(t, path, "checkpoint", "show", "--feed", "created")
	if bboltView.stdout != r.stdout {
		t.Fatalf("checkpoints differ between the bbolt store and its etcd copy:\n%s\n%s", bboltView.stdout, r.stdout)
	}
	if r := runCLI(t, etcdCfg, "store", "check"); r.code != 1 || !strings.Contains(r.stderr, "etcd") {
		t.Fatalf("store check on etcd: exit %d\n%s", r.code, r.stderr)
	}

	back := filepath.Join(dir, "back.db")
	r = runCLI(t, path, "store", "copy", "--from", "etcd", "--to", "bbolt:"+back)
	if r.code != 0 || !strings.Contains(r.stdout, "counts verified") {
		t.Fatalf("copy back to bbolt: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	want, got := countBolt(t, src), countBolt(t, back)
	if diff := want.Diff(got); diff != "" {
		t.Fatalf("the round trip changed the store:\n%s", diff)
	}
	if want.Keys["incidents"] == 0 {
		t.Fatalf("the source store has no incidents: %+v", want.Keys)
	}
	// The copy is a store the daemon opens.
	if r := runCLI(t, path, "store", "copy", "--from", "bbolt:"+back, "--to", "bbolt:"+filepath.Join(dir, "third.db")); r.code != 0 {
		t.Fatalf("copy of the copy: exit %d\n%s", r.code, r.stderr)
	}

	// A push a standby posted (it waits in the etcd store's inbox) is queued before a copy to
	// bbolt, which has no inbox: it is in the copy's refetch queue.
	cli := srv.Client(t)
	db, err := etcdkv.Open(context.Background(), etcdkv.Options{Client: cli, Prefix: "/wizfetch/copy/", SkipRecover: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenKV(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnqueueRefetch(store.RefetchItem{Instance: "default", IssueID: "pushed-to-a-standby", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	withPush := filepath.Join(dir, "with-push.db")
	if r := runCLI(t, path, "store", "copy", "--from", "etcd", "--to", "bbolt:"+withPush); r.code != 0 {
		t.Fatalf("copy with a posted push: exit %d\n%s", r.code, r.stderr)
	}
	copied, err := store.Open(withPush, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	depth, err := copied.RefetchDepth()
	copied.Close()
	if err != nil || depth != want.Keys["refetch"]+1 {
		t.Fatalf("refetch queue of the copy: %d (%v), want the posted push queued (%d)", depth, err, want.Keys["refetch"]+1)
	}

	// A replica campaigning under the prefix blocks copies from and to it.
	if _, err := cli.Put(context.Background(), "/wizfetch/copy/election/694d0a2b", "replica-1"); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, path, "store", "copy", "--from", "etcd", "--to", "bbolt:"+filepath.Join(dir, "fourth.db"))
	if r.code != 1 || !strings.Contains(r.stderr, "stop every daemon") {
		t.Fatalf("copy while a replica runs: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "fourth.db")); err == nil {
		t.Fatal("a refused copy created its destination")
	}
}
