package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// TestToolsEqualConfigTools holds the served tool set to the names config validates.
func TestToolsEqualConfigTools(t *testing.T) {
	h := &Handler{}
	var names []string
	for name := range h.tools() {
		names = append(names, name)
	}
	slices.Sort(names)
	want := config.MCPTools()
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, config knows %v", names, want)
	}
}

// TestListToolsPerProfile initializes sessions over real HTTP with the SDK's client: each user
// lists exactly the tools of their profile; the reader sees no write tool.
func TestListToolsPerProfile(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tests := []struct {
		user, token string
		want        []string
	}{
		{"alice", aliceToken, config.MCPTools()},
		{"bob", bobToken, []string{config.ToolListIncidents, config.ToolGetIncident, config.ToolGetIssue,
			config.ToolIssueContext, config.ToolServiceStatus}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			cs := f.mustConnect(t, tt.token)
			if got := cs.InitializeResult().ServerInfo.Name; got != "wizfetch" {
				t.Fatalf("server %q", got)
			}
			res, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tool := range res.Tools {
				got = append(got, tool.Name)
				if tool.Description == "" || tool.InputSchema == nil {
					t.Errorf("tool %s has no description or schema", tool.Name)
				}
				write := slices.Contains(config.MCPWriteTools(), tool.Name)
				if write != strings.HasPrefix(tool.Description, "WRITES TO WIZ") {
					t.Errorf("tool %s: a write tool must say so first in its description: %q", tool.Name, tool.Description)
				}
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("tools %v, want %v", got, want)
			}
		})
	}
}

// TestUnauthenticated: without a token or with a wrong one, /mcp answers 401 (the SDK client
// cannot even initialize), and a tools/call is audited as unauthorized without any secret.
func TestUnauthenticated(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tok := range []string{"", "not-a-user-token"} {
		if _, err := f.connect(t, tok); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
			t.Fatalf("token %q: connect err %v, want a 401", tok, err)
		}
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_note","arguments":{"issue_id":"x","text":"hi"}}}`
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer wrong-token-value")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	a := lastAudit(t, f)
	if a["tool"] != "add_note" || a["result"] != ResultUnauthorized || a["user"] != "" {
		t.Fatalf("audit %v", a)
	}
	if f.calls.get("add_note", ResultUnauthorized) != 1 {
		t.Fatal("the unauthorized call is not counted")
	}
	// A JSON-RPC batch of two calls: each is audited; a request that is not a call is audited too.
	post := func(body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer wrong-token-value")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	before := len(f.logs.audits(t))
	post(`[` + body + `,{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_issue","arguments":{}}}]`)
	post(`{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}}`)
	audits := f.logs.audits(t)[before:]
	if len(audits) != 3 || audits[0]["tool"] != "add_note" || audits[1]["tool"] != "get_issue" || audits[2]["tool"] != "(other)" {
		t.Fatalf("audits of a refused batch and a refused initialize: %v", audits)
	}
	if logs := f.logs.String(); strings.Contains(logs, "wrong-token-value") || strings.Contains(logs, aliceToken) {
		t.Fatal("a token reached the log")
	}
	// A refused batch of many calls is audited in a bounded number of lines.
	calls := make([]string, 500)
	for i := range calls {
		calls[i] = `{"jsonrpc":"2.0","id":` + strconv.Itoa(i) + `,"method":"tools/call","params":{"name":"get_issue","arguments":{}}}`
	}
	before = len(f.logs.audits(t))
	post("[" + strings.Join(calls, ",") + "]")
	audits = f.logs.audits(t)[before:]
	if len(audits) != maxRefusedAudits+1 || audits[maxRefusedAudits]["tool"] != "(batch)" ||
		!strings.Contains(fmt.Sprint(audits[maxRefusedAudits]["err"]), "492 more calls") {
		t.Fatalf("a refused batch of 500 calls made %d audit lines (last %v), want %d", len(audits), audits[len(audits)-1], maxRefusedAudits+1)
	}
}

func lastAudit(t *testing.T, f *fixture) map[string]any {
	t.Helper()
	a := f.logs.audits(t)
	if len(a) == 0 {
		t.Fatal("no audit line")
	}
	return a[len(a)-1]
}

// TestRefusedCallAudited: bob (reader) calling a write tool is refused before anything reaches
// Wiz, and the refusal is audited and counted.
func TestRefusedCallAudited(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	cs := f.mustConnect(t, bobToken)
	iss := f.stored[0]
	before := f.sim.Stats().Requests["/graphql"][200]
	_, isErr, err := call(t, cs, config.ToolAddNote, map[string]any{"issue_id": iss.ID, "text": "sneaky"})
	if err == nil && !isErr {
		t.Fatal("bob's add_note was not refused")
	}
	// Refused as the SDK refuses a tool it does not know: JSON-RPC invalid params, not code 0.
	if we, ok := errors.AsType[*jsonrpc.Error](err); !ok || we.Code != jsonrpc.CodeInvalidParams {
		t.Fatalf("refusal %#v, want a JSON-RPC error with code %d", err, jsonrpc.CodeInvalidParams)
	}
	if got := f.sim.Stats().Requests["/graphql"][200]; got != before {
		t.Fatalf("a refused call reached Wiz (%d requests, was %d)", got, before)
	}
	a := lastAudit(t, f)
	if a["user"] != "bob" || a["tool"] != config.ToolAddNote || a["result"] != ResultRefused || a["profile"] != "reader" {
		t.Fatalf("audit %v", a)
	}
	args, _ := a["args"].(map[string]any)
	if args["issue_id"] != iss.ID || args["text_chars"] != float64(6) || args["text"] != nil {
		t.Fatalf("audit args %v: want the issue id and the note's length, never its text", args)
	}
	if f.calls.get(config.ToolAddNote, ResultRefused) != 1 {
		t.Fatal("the refusal is not counted")
	}
	// A tool in no profile at all is refused the same way.
	if _, isErr, err := call(t, cs, "delete_everything", nil); err == nil && !isErr {
		t.Fatal("an unknown tool was served")
	}
	if a := lastAudit(t, f); a["result"] != ResultRefused || f.calls.get("delete_everything", ResultRefused) != 1 {
		t.Fatalf("audit %v", a)
	}
}

// TestReadTools calls every read tool against the simulator.
func TestReadTools(t *testing.T) {
	f := newFixture(t, fixtureOptions{userRate: 10, userBurst: 100})
	cs := f.mustConnect(t, bobToken)

	var page IncidentPage
	mustCall(t, cs, config.ToolListIncidents, map[string]any{"limit": 5}, &page)
	if len(page.Incidents) != 5 || page.Next == "" {
		t.Fatalf("first page: %d incidents, next %q", len(page.Incidents), page.Next)
	}
	seen := map[string]bool{}
	for _, in := range page.Incidents {
		seen[in.IssueID] = true
	}
	var rest IncidentPage
	mustCall(t, cs, config.ToolListIncidents, map[string]any{"limit": 100, "after": page.Next}, &rest)
	for _, in := range rest.Incidents {
		if seen[in.IssueID] {
			t.Fatalf("incident %s on two pages", in.IssueID)
		}
	}
	if n := len(page.Incidents) + len(rest.Incidents); n != len(f.stored) || rest.Next != "" {
		t.Fatalf("%d incidents over two pages (next %q), want %d", n, rest.Next, len(f.stored))
	}
	td := f.issueOfType(t, wizdef.TypeThreatDetection)
	var only IncidentPage
	mustCall(t, cs, config.ToolListIncidents, map[string]any{"type": []string{"threat_detection"}, "limit": 100}, &only)
	if len(only.Incidents) == 0 {
		t.Fatal("no threat detection listed")
	}
	for _, in := range only.Incidents {
		if in.IssueType != wizdef.TypeThreatDetection || in.Severity == "" {
			t.Fatalf("filter type: %+v", in)
		}
	}

	var detail IncidentDetail
	mustCall(t, cs, config.ToolGetIncident, map[string]any{"issue_id": td.ID}, &detail)
	if detail.IssueID != td.ID || strings.Contains(string(detail.Incident), "rawJSON") || !strings.Contains(string(detail.Incident), "Wiz Issue") {
		t.Fatalf("get_incident: %+v", detail)
	}

	var issue wiz.Issue
	mustCall(t, cs, config.ToolGetIssue, map[string]any{"issue_id": td.ID}, &issue)
	if issue.ID != td.ID || issue.Type != wizdef.TypeThreatDetection {
		t.Fatalf("get_issue: %s %s", issue.ID, issue.Type)
	}

	var ic wiz.IssueContext
	mustCall(t, cs, config.ToolIssueContext, map[string]any{"issue_id": td.ID}, &ic)
	if ic.IssueID != td.ID || ic.EvidenceKind != wiz.EvidenceThreatDetection || string(ic.Resource) == "null" {
		t.Fatalf("issue_context: %+v", ic)
	}

	var st ServiceStatus
	mustCall(t, cs, config.ToolServiceStatus, nil, &st)
	if len(st.Instances) != 1 || st.Instances[0].LastWizCall == nil || !st.Instances[0].LastWizCall.OK ||
		st.Instances[0].LastWizCall.Source != "mcp" || len(st.Sinks) != 1 || st.InstancesTotal != 1 {
		t.Fatalf("service_status: %+v", st)
	}
	// The filters narrow the instances, never the total: this one is healthy.
	var healthyOnly ServiceStatus
	mustCall(t, cs, config.ToolServiceStatus, map[string]any{"only_unhealthy": true}, &healthyOnly)
	if len(healthyOnly.Instances) != 0 || healthyOnly.InstancesTotal != 1 {
		t.Fatalf("service_status only_unhealthy: %+v", healthyOnly)
	}
	var one ServiceStatus
	mustCall(t, cs, config.ToolServiceStatus, map[string]any{"instance": st.Instances[0].Name}, &one)
	if len(one.Instances) != 1 || one.Instances[0].Name != st.Instances[0].Name {
		t.Fatalf("service_status instance: %+v", one)
	}
	for _, a := range f.logs.audits(t) {
		if a["user"] != "bob" || a["result"] != ResultOK {
			t.Fatalf("audit %v", a)
		}
	}
	if text, isErr, err := call(t, cs, config.ToolServiceStatus, map[string]any{"instance": "nope"}); err != nil || !isErr || !strings.Contains(text, "unknown instance") {
		t.Fatalf("service_status of an unknown instance: %v %v %q", err, isErr, text)
	}
}

// TestReadToolErrors: bad arguments are refused before any Wiz call with a message the model can
// act on, and an unknown issue is not_found.
func TestReadToolErrors(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	cs := f.mustConnect(t, bobToken)
	tests := []struct {
		tool   string
		args   map[string]any
		result string
		want   string
		wiz    bool
	}{
		{config.ToolListIncidents, map[string]any{"limit": 101}, ResultInvalid, "limit", false},
		{config.ToolListIncidents, map[string]any{"status": []string{"CLOSED"}}, ResultInvalid, "OPEN", false},
		{config.ToolListIncidents, map[string]any{"after": "garbage!"}, ResultInvalid, "cursor", false},
		{config.ToolGetIssue, map[string]any{"issue_id": "not-a-uuid"}, ResultInvalid, "UUID", false},
		{config.ToolGetIssue, map[string]any{"issue_id": f.stored[0].ID, "instance": "prod"}, ResultInvalid, "unknown instance", false},
		{config.ToolGetIncident, map[string]any{"issue_id": "00000000-0000-4000-8000-000000000000"}, ResultNotFound, "no incident", false},
		{config.ToolIssueContext, map[string]any{"issue_id": "00000000-0000-4000-8000-000000000000"}, ResultNotFound, "not found", true},
	}
	for _, tt := range tests {
		t.Run(tt.tool+"/"+tt.want, func(t *testing.T) {
			before := f.sim.Stats().Requests["/graphql"][200]
			text, isErr, err := call(t, cs, tt.tool, tt.args)
			if err != nil || !isErr || !strings.Contains(text, tt.want) {
				t.Fatalf("err %v, tool error %v %q; want a tool error naming %q", err, isErr, text, tt.want)
			}
			if reached := f.sim.Stats().Requests["/graphql"][200] != before; reached != tt.wiz {
				t.Fatalf("reached Wiz: %v, want %v", reached, tt.wiz)
			}
			if a := lastAudit(t, f); a["result"] != tt.result || a["tool"] != tt.tool {
				t.Fatalf("audit %v, want result %s", a, tt.result)
			}
		})
	}
}

// TestWriteToolsAttributed: each write tool changes the issue in the simulator, and every note
// it writes names the user ("— alice via wizfetch"), since Wiz sees one service account.
func TestWriteToolsAttributed(t *testing.T) {
	f := newFixture(t, fixtureOptions{userRate: rate.Inf, userBurst: 1})
	cs := f.mustConnect(t, aliceToken)
	ctx := context.Background()
	td := f.issueOfType(t, wizdef.TypeThreatDetection)
	other := f.issueOfType(t, "!"+wizdef.TypeThreatDetection)
	sig := "— alice via wizfetch"

	var res writeback.Result
	mustCall(t, cs, config.ToolAddNote, map[string]any{"issue_id": other.ID, "text": "ticket SOC-1"}, &res)
	assertNote(t, f, other.ID, "ticket SOC-1\n\n"+sig)

	before := f.sim.Stats().Mutations["updateIssue"]
	text, isErr, _ := call(t, cs, config.ToolRejectIssue, map[string]any{"issue_id": other.ID, "reason": "won't fix", "note": "accepted"})
	if !isErr || !strings.Contains(text, "FALSE_POSITIVE, EXCEPTION, WONT_FIX") {
		t.Fatalf("reject with a reason Wiz refuses: %q", text)
	}
	text, isErr, _ = call(t, cs, config.ToolRejectIssue, map[string]any{"issue_id": other.ID, "reason": "WONT_FIX"})
	if !isErr || !strings.Contains(text, "note") {
		t.Fatalf("reject without a note: %q", text)
	}
	if f.sim.Stats().Mutations["updateIssue"] != before {
		t.Fatal("an invalid reject reached Wiz")
	}
	mustCall(t, cs, config.ToolRejectIssue, map[string]any{"issue_id": other.ID, "reason": "WONT_FIX", "note": "accepted risk"}, &res)
	if res.Status != wizdef.StatusRejected {
		t.Fatalf("reject: %+v", res)
	}
	assertNote(t, f, other.ID, "accepted risk\n\n"+sig)

	text, isErr, _ = call(t, cs, config.ToolResolveIssue, map[string]any{"issue_id": other.ID, "reason": "ISSUE_FIXED"})
	if !isErr || !strings.Contains(text, "THREAT_DETECTION") {
		t.Fatalf("resolving a %s: %q", other.Type, text)
	}
	mustCall(t, cs, config.ToolResolveIssue, map[string]any{"issue_id": td.ID, "reason": "FALSE_POSITIVE"}, &res)
	if res.Status != wizdef.StatusResolved {
		t.Fatalf("resolve: %+v", res)
	}
	assertNote(t, f, td.ID, sig) // a status change without a note still names its author

	mustCall(t, cs, config.ToolReopenIssue, map[string]any{"issue_id": td.ID, "note": "came back"}, &res)
	if res.Status != wizdef.StatusOpen || res.NoteID == "" {
		t.Fatalf("reopen: %+v", res)
	}
	assertNote(t, f, td.ID, "came back\n\n"+sig)

	mustCall(t, cs, config.ToolSetDueDate, map[string]any{"issue_id": td.ID, "due_date": "2031-02-03"}, &res)
	iss, _, err := f.client.Issue(ctx, td.ID)
	if err != nil || iss.DueAt == nil || iss.DueAt.Format("2006-01-02") != "2031-02-03" {
		t.Fatalf("due date: %v %v", iss, err)
	}
	mustCall(t, cs, config.ToolSetDueDate, map[string]any{"issue_id": td.ID, "clear": true}, nil)
	if iss, _, _ = f.client.Issue(ctx, td.ID); iss.DueAt != nil {
		t.Fatalf("due date not cleared: %v", iss.DueAt)
	}
	for _, a := range f.logs.audits(t) {
		if a["user"] != "alice" {
			t.Fatalf("audit %v", a)
		}
	}
	if f.calls.get(config.ToolRejectIssue, ResultInvalid) != 2 || f.calls.get(config.ToolRejectIssue, ResultOK) != 1 {
		t.Fatalf("calls %v", f.calls.n)
	}
}

// assertNote checks that the issue's newest note is want.
func assertNote(t *testing.T, f *fixture, id, want string) {
	t.Helper()
	iss, _, err := f.client.Issue(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(iss.Notes) == 0 || iss.Notes[len(iss.Notes)-1].Text != want {
		t.Fatalf("notes of %s: %+v, want the last to be %q", id, iss.Notes, want)
	}
}

// TestUserRateLimit: a user's Wiz-calling tools stop at the burst while the clock stands still, and
// the refusal is audited; reads of the store go on.
func TestUserRateLimit(t *testing.T) {
	frozen := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newFixture(t, fixtureOptions{userRate: 0.1, userBurst: 2, now: func() time.Time { return frozen }})
	cs := f.mustConnect(t, bobToken)
	id := f.stored[0].ID
	mustCall(t, cs, config.ToolGetIssue, map[string]any{"issue_id": id}, nil)
	mustCall(t, cs, config.ToolGetIssue, map[string]any{"issue_id": id}, nil)
	before := f.sim.Stats().Requests["/graphql"][200]
	text, isErr, err := call(t, cs, config.ToolGetIssue, map[string]any{"issue_id": id})
	if err != nil || !isErr || !strings.Contains(text, "rate limit") || !strings.Contains(text, "10s") {
		t.Fatalf("third call: %v %v %q", err, isErr, text)
	}
	// issue_context may make more Wiz requests than this user's burst allows at all.
	text, isErr, err = call(t, cs, config.ToolIssueContext, map[string]any{"issue_id": id})
	if err != nil || !isErr || !strings.Contains(text, "needs up to 6 Wiz requests") {
		t.Fatalf("issue_context beyond the burst: %v %v %q", err, isErr, text)
	}
	if f.sim.Stats().Requests["/graphql"][200] != before {
		t.Fatal("a rate-limited call reached Wiz")
	}
	if a := lastAudit(t, f); a["result"] != ResultRateLimited {
		t.Fatalf("audit %v", a)
	}
	mustCall(t, cs, config.ToolListIncidents, nil, nil) // no Wiz call, no limit
	// alice has her own budget.
	mustCall(t, f.mustConnect(t, aliceToken), config.ToolGetIssue, map[string]any{"issue_id": id}, nil)
}

// TestAttributedFitsNoteLimit: a long note is cut so that note and signature fit Wiz's limit and
// the signature is whole.
func TestAttributedFitsNoteLimit(t *testing.T) {
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"short", "ok"},
		{"long", strings.Repeat("é", 3000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Attributed(tt.text, "alice")
			if n := len([]rune(got)); n > wiz.MaxNoteLen || !strings.HasSuffix(got, Signature("alice")) {
				t.Fatalf("%d characters, ends %q", n, got[max(0, len(got)-40):])
			}
			if tt.name == "long" && !strings.Contains(got, wiz.NoteTruncatedSuffix) {
				t.Fatal("no truncation marker")
			}
		})
	}
}

// TestToolsAreChargedTheirWizRequests: the rate limit counts Wiz requests, not tool calls:
// issue_context takes the whole burst of 6, so a get_issue right after it waits.
func TestToolsAreChargedTheirWizRequests(t *testing.T) {
	frozen := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newFixture(t, fixtureOptions{userRate: 0.2, userBurst: 6, now: func() time.Time { return frozen }})
	cs := f.mustConnect(t, bobToken)
	id := f.stored[0].ID
	mustCall(t, cs, config.ToolIssueContext, map[string]any{"issue_id": id}, nil)
	text, isErr, err := call(t, cs, config.ToolGetIssue, map[string]any{"issue_id": id})
	if err != nil || !isErr || !strings.Contains(text, "rate limit") {
		t.Fatalf("get_issue after issue_context: %v %v %q; want it rate limited", err, isErr, text)
	}
}

// A tool call that waits on Wiz past the HTTP server's write timeout (the daemon's is 60 s, below
// wiz.timeout) still gets its answer: the connection used to be cut while the call, a write
// perhaps, went through in Wiz, and an assistant seeing no answer repeats it.
func TestSlowCallOutlivesTheServerWriteTimeout(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	srv := httptest.NewUnstartedServer(f.handler)
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	f.url = srv.URL
	cs := f.mustConnect(t, aliceToken)
	if err := f.sim.SetFaults("slow:count=1,delay=1s"); err != nil {
		t.Fatal(err)
	}
	text, isErr, err := call(t, cs, "get_issue", map[string]any{"issue_id": f.stored[0].ID})
	if err != nil || isErr || !strings.Contains(text, f.stored[0].ID) {
		t.Fatalf("get_issue past the write timeout: %v, tool error %v, %.200s", err, isErr, text)
	}
}

// service_status's last_wiz_call, seen by every user, is Wiz's health: a user's own mistake (an
// unknown issue) is a Wiz that answered, and a failure shows its class, never its message (which
// named what another user asked for).
func TestLastWizCallIsWizsHealthNotAUsersQuery(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	alice, bob := f.mustConnect(t, aliceToken), f.mustConnect(t, bobToken)
	const unknown = "00000000-0000-4000-8000-00000000abcd"
	if _, isErr, err := call(t, alice, config.ToolGetIssue, map[string]any{"issue_id": unknown}); err != nil || !isErr {
		t.Fatalf("get_issue of an unknown issue: %v, tool error %v", err, isErr)
	}
	var st ServiceStatus
	mustCall(t, bob, config.ToolServiceStatus, nil, &st)
	if c := st.Instances[0].LastWizCall; c == nil || !c.OK || c.Error != "" {
		t.Fatalf("last_wiz_call after a user's unknown issue: %+v, want ok", c)
	}
	h := &wizHealth{last: map[string]wizCall{}}
	h.record("default", time.Now(), fmt.Errorf("get issue %s: %w", unknown, &wiz.APIError{Class: wiz.ErrPermission, Code: "FORBIDDEN", Message: "no access to " + unknown}))
	if c, _ := h.get("default"); c.err != "permission denied (FORBIDDEN)" {
		t.Fatalf("a permission failure recorded as %q, want its class and code alone", c.err)
	}
}

// unscopedClient is a Wiz client whose account lacks read:resources: issue_context's graph lookups
// fail with a permission error.
type unscopedClient struct{ *wiz.Client }

func (c unscopedClient) IssueContext(ctx context.Context, id string) (*wiz.IssueContext, error) {
	ic, err := c.Client.IssueContext(ctx, id)
	if err != nil {
		return nil, err
	}
	denied := &wiz.APIError{Class: wiz.ErrPermission, Code: "UNAUTHORIZED", Message: "missing scope read:resources", Op: "GraphSearch"}
	ic.Errors = append(ic.Errors, "resource: "+denied.Error())
	ic.Failures = append(ic.Failures, denied)
	return ic, nil
}

// A missing scope behind part of issue_context shows as permission denied in the audit line and
// in last_wiz_call, as the README says, while the partial context is still answered.
func TestIssueContextPermissionFailureIsReported(t *testing.T) {
	f := newFixture(t, fixtureOptions{client: func(c *wiz.Client) Client { return unscopedClient{c} }})
	cs := f.mustConnect(t, aliceToken)
	var ic wiz.IssueContext
	mustCall(t, cs, config.ToolIssueContext, map[string]any{"issue_id": f.stored[0].ID}, &ic)
	if len(ic.Errors) == 0 || ic.IssueID != f.stored[0].ID {
		t.Fatalf("issue_context: %+v, want the partial context with its errors", ic)
	}
	a := lastAudit(t, f)
	if a["tool"] != config.ToolIssueContext || a["result"] != ResultError || !strings.Contains(fmt.Sprint(a["err"]), "permission denied") {
		t.Fatalf("audit %v, want result error naming permission denied", a)
	}
	var st ServiceStatus
	mustCall(t, cs, config.ToolServiceStatus, nil, &st)
	if c := st.Instances[0].LastWizCall; c == nil || c.OK || c.Error != "permission denied (UNAUTHORIZED)" {
		t.Fatalf("last_wiz_call %+v, want permission denied", c)
	}
}

// A reload builds a new handler; with the app's UserLimiters each user keeps what they spent (a
// SIGHUP used to hand every user a full burst again).
func TestUserLimitersSurviveAReload(t *testing.T) {
	set := NewUserLimiters()
	first := set.get("bob", 0.2, 6)
	now := time.Now()
	if !first.AllowN(now, 6) || first.AllowN(now, 1) {
		t.Fatal("setup: the burst of 6 is not what the limiter allows")
	}
	again := set.get("bob", 0.2, 6)
	if again != first || again.AllowN(now, 1) {
		t.Fatal("after a reload bob has a fresh burst")
	}
	if other := set.get("alice", 0.2, 6); other == first || !other.AllowN(now, 6) {
		t.Fatal("alice shares bob's limiter")
	}
	if changed := set.get("bob", 1, 10); changed.Limit() != 1 || changed.Burst() != 10 {
		t.Fatalf("a changed rate is not applied: %v %d", changed.Limit(), changed.Burst())
	}
	var none *UserLimiters
	if a, b := none.get("bob", 1, 1), none.get("bob", 1, 1); a == b {
		t.Fatal("without a set, two handlers share a limiter")
	}
}

// All users together are held to TotalRate: per-user limits alone let enough users take the whole
// Wiz budget the feeds need.
func TestMCPUsersTogetherAreLimited(t *testing.T) {
	frozen := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newFixture(t, fixtureOptions{userRate: 100, userBurst: 100, now: func() time.Time { return frozen }})
	alice, bob := f.mustConnect(t, aliceToken), f.mustConnect(t, bobToken)
	id := f.stored[0].ID
	for i := range TotalBurst {
		cs := alice
		if i%2 == 1 {
			cs = bob
		}
		mustCall(t, cs, config.ToolGetIssue, map[string]any{"issue_id": id}, nil)
	}
	text, isErr, err := call(t, bob, config.ToolGetIssue, map[string]any{"issue_id": id})
	if err != nil || !isErr || !strings.Contains(text, "MCP users together") {
		t.Fatalf("call %d of the users together: %v %v %q, want the total's rate limit", TotalBurst+1, err, isErr, text)
	}
}

// No note's words reach the audit line, whatever the argument's spelling or type (a refused call
// is audited with its arguments too).
func TestAuditArgsShowNoNoteText(t *testing.T) {
	got := auditArgs(json.RawMessage(`{"issue_id":"x-1","Text":"CONFIDENTIAL-1","TEXT":"CONFIDENTIAL-2","note":["CONFIDENTIAL-3"],"reason":"WONT_FIX"}`))
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "CONFIDENTIAL") || got["issue_id"] != "x-1" || got["reason"] != "WONT_FIX" || got["Text_chars"] != 14 || got["note_bytes"] == nil {
		t.Fatalf("audit args %s", b)
	}
}

// A request of a user that the MCP transport refuses before any tool sees it (not JSON-RPC, over
// the size limit) is audited too: every call is.
func TestTransportRefusalsAreAudited(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, body := range []string{`{not json`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue","arguments":{"x":"` + strings.Repeat("a", maxRequestBytes) + `"}}}`} {
		before := len(f.logs.audits(t))
		req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+aliceToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		audits := f.logs.audits(t)[before:]
		if resp.StatusCode < 400 || len(audits) != 1 || audits[0]["user"] != "alice" || audits[0]["result"] != ResultInvalid ||
			!strings.Contains(fmt.Sprint(audits[0]["err"]), fmt.Sprintf("HTTP %d", resp.StatusCode)) {
			t.Fatalf("body of %d bytes: HTTP %d, audits %v; want one audit line naming the refusal", len(body), resp.StatusCode, audits)
		}
	}
}
