package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/server"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// seedRejectedIssues records two rejected issues of "default" and one of "eu" through the store API.
func seedRejectedIssues(t *testing.T, st *store.Store) {
	t.Helper()
	seen := time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC)
	recs := []struct {
		inst, id, reason, raw string
	}{
		{"default", "rej-1", feed.RejectIncomplete, `{"id":"rej-1","status":null}`},
		{"default", "rej-2", feed.RejectMapping, `{"id":"rej-2"}`},
		{"eu", "rej-3", feed.RejectTooLarge, `{"id":"rej-3"}`},
	}
	err := st.Update(func(tx *store.Tx) error {
		for _, r := range recs {
			_, err := tx.PutRejected(store.RejectedIssue{Instance: r.inst, IssueID: r.id, Feed: feed.Created,
				Reason: r.reason, Detail: "detail of " + r.id, LastSeen: seen}, []byte(r.raw))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed rejected issues: %v", err)
	}
}

// rejectedConfig writes a config whose store is dir/s.db and whose daemon listens at listen.
func rejectedConfig(t *testing.T, dir, listen, token string) string {
	t.Helper()
	path := filepath.Join(dir, "c.yaml")
	cfg := "wiz:\n  api_url: https://api.us1.app.wiz.io/graphql\nstore:\n  path: " + filepath.Join(dir, "s.db") +
		"\nserver:\n  listen: " + listen + "\n  auth_token: " + token + "\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rejectedIDs decodes the command's output and returns "instance/issue_id reason" per record.
func rejectedIDs(t *testing.T, stdout string) []string {
	t.Helper()
	var docs []server.RejectedIssueDoc
	if err := json.Unmarshal([]byte(stdout), &docs); err != nil {
		t.Fatalf("output is not a list of rejected issues: %v\n%s", err, stdout)
	}
	out := []string{}
	for _, d := range docs {
		out = append(out, d.Instance+"/"+d.IssueID+" "+d.Reason)
	}
	return out
}

// `incidents rejected` lists through the running daemon's API while it holds the store, and from the
// store (read-only) when no daemon answers; both print the same records.
func TestIncidentsRejected(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "s.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	seedRejectedIssues(t, st)
	srv, err := server.New(server.Options{Listen: "127.0.0.1:0", AuthToken: "tok-123", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"all", nil, "default/rej-1 incomplete,default/rej-2 mapping_failed,eu/rej-3 too_large"},
		{"one instance", []string{"--instance", "eu"}, "eu/rej-3 too_large"},
		{"limit", []string{"--instance", "default", "--limit", "1"}, "default/rej-1 incomplete"},
		{"unknown instance", []string{"--instance", "nope"}, ""},
	}
	check := func(t *testing.T, path string) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := runCLI(t, path, append([]string{"incidents", "rejected"}, tc.args...)...)
				if r.code != 0 {
					t.Fatalf("exit %d\n%s", r.code, r.stderr)
				}
				if got := strings.Join(rejectedIDs(t, r.stdout), ","); got != tc.want {
					t.Fatalf("listed %q, want %q", got, tc.want)
				}
			})
		}
	}

	// Through the daemon: the store is locked by it, so only the API can answer.
	path := rejectedConfig(t, dir, srv.Addr(), "tok-123")
	t.Run("daemon", func(t *testing.T) { check(t, path) })
	r := runCLI(t, path, "incidents", "rejected", "--instance", "default")
	if !strings.Contains(r.stdout, `"node": {`) || !strings.Contains(r.stdout, `"detail": "detail of rej-1"`) ||
		!strings.Contains(r.stdout, `"count": 1`) || !strings.Contains(r.stdout, `"first_seen": "2025-06-01T11:00:00Z"`) {
		t.Fatalf("a record lacks its node, detail, count or times:\n%s", r.stdout)
	}
	viaDaemon := r.stdout

	// A daemon that refuses (a wrong token) is reported as such, not as silent.
	bad := rejectedConfig(t, dir, srv.Addr(), "wrong")
	if r := runCLI(t, bad, "incidents", "rejected"); r.code != 1 || !strings.Contains(r.stderr, "answered HTTP 401") {
		t.Fatalf("a refusing daemon: exit %d\n%s", r.code, r.stderr)
	}

	// From the store: stop the daemon; nothing listens at 127.0.0.1:1.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	path = rejectedConfig(t, dir, "127.0.0.1:1", "tok-123")
	t.Run("store", func(t *testing.T) { check(t, path) })
	r = runCLI(t, path, "incidents", "rejected", "--instance", "default")
	if r.code != 0 || strings.TrimSpace(r.stdout) != strings.TrimSpace(viaDaemon) {
		t.Fatalf("the store's listing differs from the daemon's: exit %d\n%s\nwant\n%s", r.code, r.stdout, viaDaemon)
	}

	if r := runCLI(t, path, "incidents", "rejected", "--limit", "0"); r.code != 2 {
		t.Fatalf("--limit 0: exit %d, want 2\n%s", r.code, r.stderr)
	}
}
