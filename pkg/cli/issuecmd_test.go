package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/cli"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// issueSim is a simulator plus one config file pointing at it (single instance) and one with two
// instances ("a" is unreachable, "b" is the simulator).
type issueSim struct {
	sim    *wizsim.Server
	single string
	multi  string
	open   map[string][]string // issue type -> open issue ids
}

func startIssueSim(t *testing.T) *issueSim {
	t.Helper()
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(base.UnixNano())
	sim, err := wizsim.New(wizsim.Options{Issues: 200, Seed: 11, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	now.Store(base.Add(10 * time.Minute).UnixNano()) // every generated issue is visible
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })

	dir := t.TempDir()
	wizSection := func(indent string) string {
		lines := []string{
			"api_url: " + sim.GraphQLURL(),
			"auth_url: " + sim.TokenURL(),
			"audience: wiz-api",
			"client_id: wizsim-client",
			"client_secret: wizsim-secret",
			"requests_per_second: 100",
			"timeout: 20s",
		}
		return indent + strings.Join(lines, "\n"+indent) + "\n"
	}
	s := &issueSim{sim: sim, single: filepath.Join(dir, "single.yaml"), multi: filepath.Join(dir, "multi.yaml"), open: map[string][]string{}}
	single := "wiz:\n" + wizSection("  ") + "store:\n  path: " + filepath.Join(dir, "wizfetch.db") + "\n"
	multi := "instances:\n  - name: a\n    wiz:\n" +
		"      api_url: http://127.0.0.1:1/graphql\n      auth_url: http://127.0.0.1:1/oauth/token\n      audience: wiz-api\n      client_id: x\n      client_secret: y\n" +
		"  - name: b\n    wiz:\n" + wizSection("      ")
	for path, body := range map[string]string{s.single: single, s.multi: multi} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, is := range sim.Snapshot() {
		if is.Status == "OPEN" {
			s.open[is.Type] = append(s.open[is.Type], is.ID)
		}
	}
	for _, typ := range wizdef.IssueTypes() {
		if len(s.open[typ]) < 3 {
			t.Fatalf("only %d open %s issues in the simulator", len(s.open[typ]), typ)
		}
	}
	return s
}

func (s *issueSim) status(t *testing.T, id string) string {
	t.Helper()
	for _, is := range s.sim.Snapshot() {
		if is.ID == id {
			return is.Status
		}
	}
	t.Fatalf("no issue %s", id)
	return ""
}

func (s *issueSim) requests() int {
	n := 0
	for _, byStatus := range s.sim.Stats().Requests {
		for _, c := range byStatus {
			n += c
		}
	}
	return n
}

type runResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, config string, args ...string) runResult {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := cli.Main(ctx, cli.Env{
		Args:   append([]string{"--config", config}, args...),
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "USER" {
				return "alice"
			}
			return ""
		},
		Version: "test",
	})
	r := runResult{code: code, stdout: out.String(), stderr: errOut.String()}
	if strings.Contains(r.stdout+r.stderr, "wizsim-secret") {
		t.Errorf("%v: the client secret appears in the output", args)
	}
	return r
}

// auditLine returns the audit record on stderr, failing when there is none.
func auditLine(t *testing.T, stderr string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "audit" {
			return m
		}
	}
	t.Fatalf("no audit line in stderr:\n%s", stderr)
	return nil
}

func TestIssueCommands(t *testing.T) {
	s := startIssueSim(t)
	threat := s.open["THREAT_DETECTION"]
	cloud := s.open["CLOUD_CONFIGURATION"]
	toxic := s.open["TOXIC_COMBINATION"]

	t.Run("get", func(t *testing.T) {
		r := runCLI(t, s.single, "issue", "get", strings.ToUpper(threat[0]))
		if r.code != 0 || !strings.Contains(r.stdout, threat[0]) || !strings.Contains(r.stdout, "THREAT_DETECTION") || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		r = runCLI(t, s.single, "issue", "get", threat[0], "--json")
		var iss wiz.Issue
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &iss) != nil || iss.ID != threat[0] || iss.Type != "THREAT_DETECTION" {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
	})

	t.Run("resolve a threat detection", func(t *testing.T) {
		r := runCLI(t, s.single, "issue", "resolve", threat[0], "--reason", "false_positive", "--note", "benign scanner")
		if r.code != 0 || !strings.Contains(r.stdout, "resolved issue "+threat[0]) {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if got := s.status(t, threat[0]); got != "RESOLVED" {
			t.Errorf("status %s", got)
		}
		a := auditLine(t, r.stderr)
		for k, want := range map[string]any{"via": "cli", "actor": "alice", "instance": "default", "action": "resolve",
			"issue_id": threat[0], "reason": "FALSE_POSITIVE", "result": "ok"} {
			if a[k] != want {
				t.Errorf("audit %s = %v, want %v", k, a[k], want)
			}
		}
		if strings.Contains(r.stderr, "benign scanner") {
			t.Error("the audit line contains the note text")
		}
	})

	for _, id := range []string{cloud[0], toxic[0]} {
		t.Run("resolve refused for "+id, func(t *testing.T) {
			r := runCLI(t, s.single, "issue", "resolve", id, "--reason", "WONT_FIX")
			if r.code == 0 || !strings.Contains(r.stderr, "only THREAT_DETECTION issues can be resolved") || !strings.Contains(r.stderr, "reject") {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if got := s.status(t, id); got != "OPEN" {
				t.Errorf("status changed to %s", got)
			}
			if a := auditLine(t, r.stderr); a["result"] != "error" {
				t.Errorf("audit result %v", a["result"])
			}
		})
	}

	t.Run("reject --json, reopen, in-progress", func(t *testing.T) {
		id := cloud[1]
		r := runCLI(t, s.single, "issue", "reject", id, "--reason", "WONT_FIX", "--note", "accepted risk", "--json")
		var res struct {
			IssueID string `json:"issue_id"`
			Action  string `json:"action"`
			Status  string `json:"status"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res.Status != "REJECTED" || res.Action != "reject" || res.IssueID != id {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if got := s.status(t, id); got != "REJECTED" {
			t.Fatalf("status %s", got)
		}
		r = runCLI(t, s.single, "issue", "reopen", id, "--note", "not accepted after all")
		if r.code != 0 || !strings.Contains(r.stdout, "reopened issue") || !strings.Contains(r.stdout, "added note") || s.status(t, id) != "OPEN" {
			t.Fatalf("reopen: exit %d, stdout %q, stderr %q, status %s", r.code, r.stdout, r.stderr, s.status(t, id))
		}
		r = runCLI(t, s.single, "issue", "in-progress", id, "--note", "owner contacted")
		if r.code != 0 || !strings.Contains(r.stdout, "in progress") || !strings.Contains(r.stdout, "added note") || s.status(t, id) != "IN_PROGRESS" {
			t.Fatalf("in-progress: exit %d, stdout %q, stderr %q, status %s", r.code, r.stdout, r.stderr, s.status(t, id))
		}
		r = runCLI(t, s.single, "issue", "get", id, "--json")
		var iss wiz.Issue
		if err := json.Unmarshal([]byte(r.stdout), &iss); err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, n := range iss.Notes {
			texts = append(texts, n.Text)
		}
		for _, want := range []string{"accepted risk", "not accepted after all", "owner contacted"} {
			if !slices.Contains(texts, want) {
				t.Errorf("note %q not on the issue (notes %q)", want, texts)
			}
		}
	})

	t.Run("note is truncated", func(t *testing.T) {
		id := toxic[1]
		long := strings.Repeat("y", 2000)
		r := runCLI(t, s.single, "issue", "note", id, long, "--json")
		var res struct {
			NoteID        string `json:"note_id"`
			NoteTruncated bool   `json:"note_truncated"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res.NoteID == "" || !res.NoteTruncated {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		r = runCLI(t, s.single, "issue", "get", id, "--json")
		var iss wiz.Issue
		if err := json.Unmarshal([]byte(r.stdout), &iss); err != nil {
			t.Fatal(err)
		}
		want := strings.Repeat("y", wiz.MaxNoteLen-len(wiz.NoteTruncatedSuffix)) + wiz.NoteTruncatedSuffix
		found := false
		for _, n := range iss.Notes {
			if n.ID == res.NoteID {
				found = n.Text == want
			}
		}
		if !found {
			t.Errorf("note %s of 1400 characters, marker included, not found on the issue", res.NoteID)
		}
		r = runCLI(t, s.single, "issue", "note", id, "short", "words", "joined")
		if r.code != 0 || !strings.Contains(r.stdout, "added note") || strings.Contains(r.stdout, "cut to") {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})

	t.Run("due date set and cleared", func(t *testing.T) {
		id := threat[1]
		r := runCLI(t, s.single, "issue", "due-date", id, "2030-01-31")
		if r.code != 0 || !strings.Contains(r.stdout, "due 2030-01-31T00:00:00Z") {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if r = runCLI(t, s.single, "issue", "get", id); !strings.Contains(r.stdout, "due 2030-01-31") {
			t.Errorf("get after due-date: %q", r.stdout)
		}
		r = runCLI(t, s.single, "issue", "clear-due-date", id)
		if r.code != 0 || !strings.Contains(r.stdout, "cleared the due date") {
			t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
		}
		if r = runCLI(t, s.single, "issue", "get", id); r.code != 0 || strings.Contains(r.stdout, " due ") {
			t.Errorf("get after clear-due-date: %q", r.stdout)
		}
	})

	t.Run("usage errors exit 2 without calling Wiz", func(t *testing.T) {
		before := s.requests()
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"get", "123"}, "is not a UUID"},
			{[]string{"resolve", "nope", "--reason", "WONT_FIX"}, "is not a UUID"},
			{[]string{"reject", threat[2] + "x", "--reason", "WONT_FIX", "--note", "n"}, "is not a UUID"},
			{[]string{"reopen", "{" + threat[2] + "}"}, "is not a UUID"},
			{[]string{"in-progress", "1"}, "is not a UUID"},
			{[]string{"note", "1", "text"}, "is not a UUID"},
			{[]string{"due-date", "1", "2030-01-01"}, "is not a UUID"},
			{[]string{"clear-due-date", "1"}, "is not a UUID"},
			{[]string{"resolve", threat[2]}, "needs a reason"},
			{[]string{"resolve", threat[2], "--reason", "BECAUSE"}, "use one of OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
			{[]string{"reject", threat[2], "--reason", "ISSUE_FIXED"}, `reason "ISSUE_FIXED" is not accepted by Wiz for reject: use one of FALSE_POSITIVE, EXCEPTION, WONT_FIX`},
			{[]string{"reject", threat[2], "--reason", "object_deleted", "--note", "n"}, "use one of FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
			{[]string{"resolve", threat[2], "--reason", "DETECTION_EXPIRED"}, "use one of OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX"},
			{[]string{"resolve", threat[2], "--reason", "CONTROL_CHANGED", "--note", "n"}, "is not accepted by Wiz for resolve"},
			{[]string{"reject", threat[2], "--reason", "WONT_FIX"}, "reject needs a note"},
			{[]string{"due-date", threat[2], "2030-13-01"}, "YYYY-MM-DD"},
			{[]string{"in-progress", threat[2], "--reason", "WONT_FIX"}, "unknown flag"},
			{[]string{"reopen"}, "accepts 1 arg"},
		}
		for _, tt := range tests {
			r := runCLI(t, s.single, append([]string{"issue"}, tt.args...)...)
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.want)
			}
		}
		if n := s.requests() - before; n != 0 {
			t.Errorf("%d requests to Wiz for invalid commands", n)
		}
	})

	t.Run("unknown issue is a failure", func(t *testing.T) {
		r := runCLI(t, s.single, "issue", "reopen", "7c9e6679-7425-40de-944b-e07fc1f90ae7")
		if r.code != cli.ExitFailure || !strings.Contains(r.stderr, "not found") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("instances", func(t *testing.T) {
		r := runCLI(t, s.multi, "issue", "in-progress", toxic[2])
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--instance (a, b)") {
			t.Errorf("no --instance: exit %d, stderr %q", r.code, r.stderr)
		}
		r = runCLI(t, s.multi, "issue", "in-progress", toxic[2], "--instance", "c")
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, `unknown instance "c"`) {
			t.Errorf("unknown instance: exit %d, stderr %q", r.code, r.stderr)
		}
		r = runCLI(t, s.multi, "issue", "in-progress", toxic[2], "--instance", "b")
		if r.code != 0 || s.status(t, toxic[2]) != "IN_PROGRESS" {
			t.Fatalf("--instance b: exit %d, stderr %q", r.code, r.stderr)
		}
		if a := auditLine(t, r.stderr); a["instance"] != "b" {
			t.Errorf("audit instance %v", a["instance"])
		}
	})

	t.Run("reason flags name the accepted reasons", func(t *testing.T) {
		for _, tt := range []struct {
			cmd, want, not string
		}{
			{"reject", "resolution reason: FALSE_POSITIVE, EXCEPTION, WONT_FIX", "ISSUE_FIXED"},
			{"resolve", "resolution reason: OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX", "DETECTION_EXPIRED"},
		} {
			r := runCLI(t, s.single, "issue", tt.cmd, "--help")
			if !strings.Contains(r.stdout, tt.want) || strings.Contains(r.stdout, tt.not) {
				t.Errorf("%s --help: want %q and no %s:\n%s", tt.cmd, tt.want, tt.not, r.stdout)
			}
		}
	})

	t.Run("help lists every command", func(t *testing.T) {
		r := runCLI(t, s.single, "issue", "--help")
		for _, c := range []string{"get", "resolve", "reject", "reopen", "in-progress", "note", "due-date", "clear-due-date"} {
			if !strings.Contains(r.stdout, fmt.Sprintf("  %s ", c)) {
				t.Errorf("help lacks %s:\n%s", c, r.stdout)
			}
		}
	})
}
