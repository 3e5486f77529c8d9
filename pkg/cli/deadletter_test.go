package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// TestDeadLetterListThroughTheRunningDaemon: while a daemon holds the store, `incidents dead-letter`
// lists the dead letters through the daemon's API instead of failing with "did not answer".
func TestDeadLetterListThroughTheRunningDaemon(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "s.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close() // holds the lock, as the daemon does
	line := `{"event_id":"e-1","kind":"created","issue_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7"}`
	var seq uint64
	if err := st.Update(func(tx *store.Tx) error {
		var err error
		seq, err = tx.Enqueue("hook", "default", []byte(line))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.MoveToDeadLetter("hook", store.OutboxItem{Instance: "default", Seq: seq}, "HTTP 400: bad payload", 1); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Listen: "127.0.0.1:0", AuthToken: "tok-123", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	path := filepath.Join(dir, "c.yaml")
	cfg := "wiz:\n  api_url: https://api.us1.app.wiz.io/graphql\nstore:\n  path: " + filepath.Join(dir, "s.db") +
		"\nserver:\n  listen: " + srv.Addr() + "\n  auth_token: tok-123\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, path, "incidents", "dead-letter", "--sink", "hook")
	if r.code != 0 {
		t.Fatalf("dead-letter while the daemon runs: exit %d\n%s", r.code, r.stderr)
	}
	var got []struct {
		Reason string          `json:"reason"`
		Event  json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1 ||
		got[0].Reason != "HTTP 400: bad payload" || !strings.Contains(string(got[0].Event), `"e-1"`) {
		t.Fatalf("dead letters: %v\n%s", err, r.stdout)
	}
	// A daemon that refuses (a wrong token) is reported as such, not as silent.
	bad := strings.Replace(cfg, "auth_token: tok-123", "auth_token: wrong", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, path, "incidents", "dead-letter", "--sink", "hook")
	if r.code != 1 || !strings.Contains(r.stderr, "answered HTTP 401") || strings.Contains(r.stderr, "did not answer") {
		t.Fatalf("a refusing daemon: exit %d\n%s", r.code, r.stderr)
	}
}
