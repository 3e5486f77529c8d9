package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// rejectedNode is the node of the seeded rejected issue "rej-1": valid JSON with a null status.
const rejectedNode = `{"id":"rej-1","status":null,"severity":"HIGH"}`

// seedRejected records rejected issues through the store API: rej-1 of default twice (one record,
// count 2), rej-2 of default with a node over store.MaxRejectedRawBytes (kept clipped), and rej-3 of
// "pushonly", an instance without feeds.
func seedRejected(t *testing.T, st *store.Store) {
	t.Helper()
	first := time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC)
	big := `{"id":"rej-2","description":"` + strings.Repeat("x", store.MaxRejectedRawBytes) + `"}`
	recs := []struct {
		r   store.RejectedIssue
		raw string
	}{
		{store.RejectedIssue{Instance: "default", IssueID: "rej-1", Feed: feed.Created, Reason: feed.RejectIncomplete,
			Detail: "status is null", LastSeen: first}, rejectedNode},
		{store.RejectedIssue{Instance: "default", IssueID: "rej-1", Feed: feed.Updates, Reason: feed.RejectIncomplete,
			Detail: "status is null", LastSeen: first.Add(time.Minute)}, rejectedNode},
		{store.RejectedIssue{Instance: "default", IssueID: "rej-2", Feed: feed.Created, Reason: feed.RejectTooLarge,
			Detail: "incident of 2 MiB", LastSeen: first}, big},
		{store.RejectedIssue{Instance: "pushonly", IssueID: "rej-3", Feed: "push", Reason: feed.RejectMapping,
			Detail: "panic: boom", LastSeen: first}, `{"id":"rej-3"}`},
	}
	err := st.Update(func(tx *store.Tx) error {
		for _, rc := range recs {
			if ok, err := tx.PutRejected(rc.r, []byte(rc.raw)); err != nil || !ok {
				return errors.Join(err, errors.New("not recorded"))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed rejected issues: %v", err)
	}
}

func TestRejectedIssuesEndpoint(t *testing.T) {
	st := openStore(t)
	seedRejected(t, st)
	s := newServer(t, Options{AuthToken: token, Store: st})
	tests := []struct {
		name, target, auth string
		wantCode           int
		wantIDs            string // issue ids in order, space-separated
		wantParam          string // the parameter a 400 names
	}{
		{"every instance", "/v1/rejected-issues", "Bearer " + token, 200, "rej-1 rej-2 rej-3", ""},
		{"one instance", "/v1/rejected-issues?instance=pushonly", "Bearer " + token, 200, "rej-3", ""},
		{"unknown instance", "/v1/rejected-issues?instance=nope", "Bearer " + token, 200, "", ""},
		{"limit", "/v1/rejected-issues?instance=default&limit=1", "Bearer " + token, 200, "rej-1", ""},
		{"no token", "/v1/rejected-issues", "", 401, "", ""},
		{"wrong token", "/v1/rejected-issues", "Bearer nope", 401, "", ""},
		{"limit zero", "/v1/rejected-issues?limit=0", "Bearer " + token, 400, "", "limit"},
		{"limit too large", "/v1/rejected-issues?limit=1001", "Bearer " + token, 400, "", "limit"},
		{"limit not a number", "/v1/rejected-issues?limit=all", "Bearer " + token, 400, "", "limit"},
		{"NUL in instance", "/v1/rejected-issues?instance=a%00b", "Bearer " + token, 400, "", "instance"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, s.Handler(), "GET", tc.target, tc.auth)
			if rec.Code != tc.wantCode {
				t.Fatalf("= %d, want %d: %s", rec.Code, tc.wantCode, rec.Body)
			}
			switch rec.Code {
			case 200:
				docs := decode[[]RejectedIssueDoc](t, rec)
				ids := make([]string, 0, len(docs))
				for _, d := range docs {
					ids = append(ids, d.IssueID)
				}
				if got := strings.Join(ids, " "); got != tc.wantIDs {
					t.Fatalf("issue ids %q, want %q", got, tc.wantIDs)
				}
			case 400:
				if e := decode[errorDoc](t, rec); e.Parameter != tc.wantParam {
					t.Fatalf("error %+v, want one naming %q", e, tc.wantParam)
				}
			}
		})
	}

	// The records in full: reason, detail, times seen, first and last seen, and the node as JSON
	// when the store kept it whole.
	rec := get(t, s.Handler(), "GET", "/v1/rejected-issues?instance=default", "Bearer "+token)
	docs := decode[[]RejectedIssueDoc](t, rec)
	if len(docs) != 2 {
		t.Fatalf("%d records, want 2: %s", len(docs), rec.Body)
	}
	first := time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC)
	r1 := docs[0]
	if r1.Instance != "default" || r1.Feed != feed.Updates || r1.Reason != feed.RejectIncomplete || r1.Detail != "status is null" ||
		r1.Count != 2 || !r1.FirstSeen.Equal(first) || !r1.LastSeen.Equal(first.Add(time.Minute)) ||
		r1.NodeBytes != len(rejectedNode) || r1.NodeClipped {
		t.Errorf("rej-1 = %+v", r1)
	}
	var node map[string]any
	if err := json.Unmarshal(r1.Node, &node); err != nil || node["id"] != "rej-1" || node["severity"] != "HIGH" {
		t.Errorf("rej-1 node %s is not the node as sent (%v)", r1.Node, err)
	}
	r2 := docs[1]
	if r2.Reason != feed.RejectTooLarge || !r2.NodeClipped || r2.Node != nil || r2.NodeBytes <= store.MaxRejectedRawBytes {
		t.Errorf("rej-2 (clipped node) = reason %q clipped %v bytes %d node %.40s", r2.Reason, r2.NodeClipped, r2.NodeBytes, r2.Node)
	}
	if strings.Contains(rec.Body.String(), `"raw"`) {
		t.Errorf("the clipped node leaked as a string: %.200s", rec.Body)
	}

	// Without a store the endpoint says so.
	s = newServer(t, Options{})
	if rec := get(t, s.Handler(), "GET", "/v1/rejected-issues", ""); rec.Code != 503 {
		t.Errorf("no store: %d, want 503", rec.Code)
	}
}

// rejectingTracker is populatedTracker's shape with rejections: the default instance's feeds met
// rejected, future-timestamped and clipped issues.
func rejectingTracker() *status.Tracker {
	now := fixedNow.Add(-time.Minute)
	tr := status.New("1.2.3", func() time.Time { return now })
	tr.AddSink("file", "jsonl", 100)
	tr.FetchDone("default", feed.Created, feed.Result{
		Fetched: 10, Created: 6, Watermark: now.Add(-time.Minute),
		Rejected:         map[string]int{feed.RejectIncomplete: 2, feed.RejectTooLarge: 1},
		FutureTimestamps: 1, Clipped: 3, NullNodes: 1,
	}, nil)
	now = fixedNow
	tr.FetchDone("default", feed.Updates, feed.Result{
		Fetched: 4, Updated: 2, Watermark: now.Add(-time.Minute), Rejected: map[string]int{feed.RejectIncomplete: 1},
	}, nil)
	tr.FetchDone("eu", feed.Created, feed.Result{Fetched: 3, Created: 3, Watermark: now.Add(-time.Minute)}, nil)
	return tr
}

// /v1/status shows per instance the rejected issues the store holds (an instance without feeds
// included) and per feed the rejected, future-timestamp and clipped totals.
func TestStatusShowsRejections(t *testing.T) {
	st := openStore(t)
	seedRejected(t, st)
	s := newServer(t, Options{Store: st, Tracker: rejectingTracker()})
	rec := get(t, s.Handler(), "GET", "/v1/status", "")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	doc := decode[StatusDoc](t, rec)
	type feedCounts struct {
		rejected, future, clipped int64
	}
	want := map[string]struct {
		rejectedIssues int
		feeds          map[string]feedCounts
	}{
		"default":  {2, map[string]feedCounts{feed.Created: {3, 1, 3}, feed.Updates: {1, 0, 0}}},
		"eu":       {0, map[string]feedCounts{feed.Created: {0, 0, 0}}},
		"pushonly": {1, map[string]feedCounts{}},
	}
	if len(doc.Instances) != len(want) {
		t.Fatalf("instances %+v, want %d", doc.Instances, len(want))
	}
	for _, inst := range doc.Instances {
		w, ok := want[inst.Name]
		if !ok {
			t.Errorf("unexpected instance %q", inst.Name)
			continue
		}
		if inst.RejectedIssues != w.rejectedIssues {
			t.Errorf("%s: rejected_issues %d, want %d", inst.Name, inst.RejectedIssues, w.rejectedIssues)
		}
		if len(inst.Feeds) != len(w.feeds) {
			t.Errorf("%s: %d feeds, want %d", inst.Name, len(inst.Feeds), len(w.feeds))
		}
		for _, f := range inst.Feeds {
			got := feedCounts{f.Rejected, f.FutureTimestamps, f.Clipped}
			if got != w.feeds[f.Feed] {
				t.Errorf("%s/%s: rejected, future, clipped = %v, want %v", inst.Name, f.Feed, got, w.feeds[f.Feed])
			}
		}
	}

	var indented bytes.Buffer
	if err := json.Indent(&indented, rec.Body.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`"path": "[^"]*"`).ReplaceAll(indented.Bytes(), []byte(`"path": "STORE"`))
	got = regexp.MustCompile(`"file_size_bytes": \d+`).ReplaceAll(got, []byte(`"file_size_bytes": 0`))
	golden(t, "status_rejected.golden.json", got)
}

// The status page shows "rejected issues: N" per instance (in red when N > 0) and the per-feed
// totals in their columns.
func TestStatusPageShowsRejections(t *testing.T) {
	st := openStore(t)
	seedRejected(t, st)
	s := newServer(t, Options{Store: st, Tracker: rejectingTracker()})
	rec := get(t, s.Handler(), "GET", "/", "")
	if rec.Code != 200 {
		t.Fatalf("= %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	// Collapse whitespace so that row cells read as one string.
	flat := regexp.MustCompile(`\s+`).ReplaceAllString(body, " ")
	for _, want := range []string{
		`Instance default<span class="sub">0 incidents · <span class="err"`,
		">rejected issues: 2</span>",
		"Instance eu", "rejected issues: 0",
		"Instance pushonly", ">rejected issues: 1</span>",
		">Rejected</th>", ">Future ts</th>", ">Clipped</th>",
		// default/created: ignored 0, rejected 3 (red), future 1, clipped 3
		`<td class="num">0</td> <td class="num"><span class="err">3</span></td> <td class="num">1</td> <td class="num">3</td>`,
		// eu/created: nothing rejected
		`<td class="num">0</td> <td class="num">0</td> <td class="num">0</td> <td class="num">0</td>`,
		"<code>/v1/rejected-issues</code>",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<no value>") {
		t.Error("page has a missing value")
	}
}
