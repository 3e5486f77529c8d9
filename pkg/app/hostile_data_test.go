package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// hostileWiz is a GraphQL endpoint that serves crafted nodes (issue 17): it answers the issues query
// as Wiz does (exclusive `after`, order by the requested timestamp, cursors), but the nodes are raw
// JSON the test writes — future timestamps, nulls, huge fields — and a null node leads every page.
// A node whose status is null passes the status filter, as such nodes did.
type hostileWiz struct {
	mu    sync.Mutex
	nodes map[string]hostileNode
}

type hostileNode struct {
	createdAt, statusChangedAt time.Time
	status                     string // "" for null
	raw                        string
}

func (h *hostileWiz) put(id string, n hostileNode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodes[id] = n
}

// node renders an issue node; status, severity or typ "" are sent as null.
func node(id string, createdAt, statusChangedAt time.Time, status, severity, typ, description string) hostileNode {
	str := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	raw, err := json.Marshal(map[string]any{
		"id":              id,
		"type":            str(typ),
		"status":          str(status),
		"severity":        str(severity),
		"createdAt":       createdAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"statusChangedAt": statusChangedAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"sourceRule":      map[string]any{"__typename": "Control", "id": "wc-id-1", "name": "Rule", "description": description},
		"projects":        []any{},
		"notes":           nil,
	})
	if err != nil {
		panic(err)
	}
	return hostileNode{createdAt: createdAt, statusChangedAt: statusChangedAt, status: status, raw: string(raw)}
}

func (h *hostileWiz) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth/token" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"t","token_type":"Bearer","expires_in":86400}`)
		return
	}
	var req struct {
		Variables struct {
			FilterBy struct {
				Status          []string `json:"status"`
				CreatedAt       *struct{ After time.Time }
				StatusChangedAt *struct{ After time.Time }
			} `json:"filterBy"`
			First int    `json:"first"`
			After string `json:"after"`
		} `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v := req.Variables
	byStatus := v.FilterBy.StatusChangedAt != nil
	key := func(n hostileNode) time.Time {
		if byStatus {
			return n.statusChangedAt
		}
		return n.createdAt
	}
	h.mu.Lock()
	var list []hostileNode
	for _, n := range h.nodes {
		switch {
		case byStatus && !n.statusChangedAt.After(v.FilterBy.StatusChangedAt.After):
		case !byStatus && (v.FilterBy.CreatedAt == nil || !n.createdAt.After(v.FilterBy.CreatedAt.After)):
		case !byStatus && n.status != "" && len(v.FilterBy.Status) > 0 && !slices.Contains(v.FilterBy.Status, n.status):
		default:
			list = append(list, n)
		}
	}
	h.mu.Unlock()
	slices.SortFunc(list, func(a, b hostileNode) int {
		if c := key(a).Compare(key(b)); c != 0 {
			return c
		}
		return strings.Compare(a.raw, b.raw)
	})
	start, _ := strconv.Atoi(v.After)
	end := min(start+v.First, len(list))
	var b strings.Builder
	b.WriteString(`{"data":{"issues":{"nodes":[null`)
	for _, n := range list[start:end] {
		b.WriteString(",")
		b.WriteString(n.raw)
	}
	fmt.Fprintf(&b, `],"pageInfo":{"hasNextPage":%v,"endCursor":"%d"}}}}`, end < len(list), end)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, b.String())
}

// readLines reads the JSONL file's events, with each line's size.
func readLines(t *testing.T, path string) (events []jsonlEvent, sizes []int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<20), 512<<20)
	for sc.Scan() {
		var ev jsonlEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is not a whole event: %v", len(events)+1, err)
		}
		events = append(events, ev)
		sizes = append(sizes, len(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events, sizes
}

// startHostile starts a hostileWiz and returns it with a daemon config against it (no rate limit,
// pages of 2 so that a window takes several) and the config's directory.
func startHostile(t *testing.T) (*hostileWiz, *config.Config, string) {
	t.Helper()
	wizAPI := &hostileWiz{nodes: map[string]hostileNode{}}
	srv := httptest.NewServer(wizAPI)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := DemoConfig(srv.URL+"/graphql", srv.URL+"/oauth/token", dir, "127.0.0.1:0")
	cfg.Wiz.RequestsPerSecond = 0
	cfg.Instances[0].Wiz.RequestsPerSecond = 0
	cfg.Instances[0].Fetch.MaxPerFetch = 2 // several pages per window
	return wizAPI, cfg, dir
}

// runHostile runs the daemon on cfg until idle, logging to logs and passing each fetch's result to
// onFetch; it fails the test if the run fails.
func runHostile(t *testing.T, cfg *config.Config, logs *syncBuffer, onFetch func(feed.Result)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, Options{
		Config: cfg, Mode: schedule.UntilIdle, NoServer: true,
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
		PollEvery: 10 * time.Millisecond, RetryBackoff: 5 * time.Millisecond, WizRetryFor: 5 * time.Second,
		OnFetch: func(_, _ string, res feed.Result, _ error) { onFetch(res) },
	})
	if err != nil {
		t.Fatalf("run --until-idle: %v\n%s", err, lastLines(logs.String(), 30))
	}
}

// A hostile sequence of pages through both feeds and the JSONL sink, in three daemon runs: a node
// created "in 2999" whose createdAt is later corrected, a node with null status, severity and type
// that later comes complete, a node with an 8 MB field, and null nodes. The file must hold each
// event_id once, every issue's created event once, no line above incident.MaxEventBytes, and the
// feeds must go on fetching new issues.
func TestHostileDataEndToEnd(t *testing.T) {
	wizAPI, cfg, dir := startHostile(t)

	now := time.Now().UTC().Truncate(time.Microsecond)
	const (
		idA = "00000000-0000-4000-8000-00000000000a"
		idF = "00000000-0000-4000-8000-00000000000f" // created "in 2999"
		idN = "00000000-0000-4000-8000-00000000000e" // null status, severity, type
		idH = "00000000-0000-4000-8000-00000000000b" // huge
		idE = "00000000-0000-4000-8000-00000000000d" // created after the first run
		idC = "00000000-0000-4000-8000-00000000000c" // created after the second
	)
	year2999 := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
	huge := strings.Repeat(`<"é\`, 2<<20) // 8 MiB, more escaped
	wizAPI.put(idA, node(idA, now.Add(-2*time.Hour), now.Add(-2*time.Hour), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "a"))
	wizAPI.put(idF, node(idF, year2999, now.Add(-90*time.Minute), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "f"))
	wizAPI.put(idN, node(idN, now.Add(-80*time.Minute), now.Add(-80*time.Minute), "", "", "", "n"))
	wizAPI.put(idH, node(idH, now.Add(-70*time.Minute), now.Add(-70*time.Minute), "OPEN", "LOW", "CLOUD_CONFIGURATION", huge))

	var mu sync.Mutex
	var results []feed.Result
	logs := &syncBuffer{}
	run := func() {
		t.Helper()
		runHostile(t, cfg, logs, func(res feed.Result) {
			mu.Lock()
			defer mu.Unlock()
			results = append(results, res)
		})
	}
	run()
	// A new issue between the runs (so that F's created line is not the file's last one: the
	// sink's start-up reconciliation would hide a second copy of the last line).
	wizAPI.put(idE, node(idE, now.Add(-10*time.Minute), now.Add(-2*time.Minute), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "e"))
	run()

	// Wiz corrects F's createdAt, and F changes status; N comes complete, and changes status too;
	// a new issue C appears.
	wizAPI.put(idF, node(idF, now.Add(-100*time.Minute), now.Add(-time.Minute), "IN_PROGRESS", "HIGH", "CLOUD_CONFIGURATION", "f"))
	wizAPI.put(idN, node(idN, now.Add(-80*time.Minute), now.Add(-30*time.Second), "OPEN", "MEDIUM", "THREAT_DETECTION", "n"))
	wizAPI.put(idC, node(idC, now.Add(-20*time.Second), now.Add(-20*time.Second), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "c"))
	run()

	events, sizes := readLines(t, filepath.Join(dir, "incidents.jsonl"))
	seen := map[string]bool{}
	kinds := map[string][]string{}
	for i, ev := range events {
		if seen[ev.EventID] {
			t.Fatalf("event_id %s (%s of %s) is in the file twice", ev.EventID, ev.Kind, ev.IssueID)
		}
		seen[ev.EventID] = true
		kinds[ev.IssueID] = append(kinds[ev.IssueID], ev.Kind)
		if sizes[i] > incident.MaxEventBytes {
			t.Fatalf("line %d (%s of %s) is %d bytes, above %d", i+1, ev.Kind, ev.IssueID, sizes[i], incident.MaxEventBytes)
		}
		if ev.IssueStatus == "" {
			t.Fatalf("event %s of %s has no status", ev.Kind, ev.IssueID)
		}
	}
	for id, want := range map[string]string{idA: "created", idF: "created,updated", idN: "created", idH: "created", idE: "created", idC: "created"} {
		if got := strings.Join(kinds[id], ","); got != want {
			t.Fatalf("issue %s: events %s, want %s (all: %v)", id, got, want, kinds)
		}
	}

	mu.Lock()
	var future, nullNodes, clipped, rejected int
	for _, r := range results {
		future += r.FutureTimestamps
		nullNodes += r.NullNodes
		clipped += r.Clipped
		rejected += r.Rejected[feed.RejectIncomplete]
	}
	mu.Unlock()
	if future == 0 || nullNodes == 0 || clipped == 0 || rejected == 0 {
		t.Fatalf("future timestamps %d, null nodes %d, clipped %d, rejected %d: want each counted", future, nullNodes, clipped, rejected)
	}
	for _, msg := range []string{"timestamp from the future", "Wiz returned null nodes", "incident clipped", "issue rejected"} {
		if !strings.Contains(logs.String(), `"level":"WARN","msg":"`+msg) {
			t.Fatalf("no WARN %q in the log", msg)
		}
	}

	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if left, err := st.RejectedIssues("", 0); err != nil || len(left) != 0 {
		t.Fatalf("rejected issues after the complete version: %+v %v", left, err)
	}
	err = st.View(func(tx *store.Tx) error {
		for _, name := range []string{feed.Created, feed.Updates} {
			cp, _, err := tx.Checkpoint("default", name)
			if err != nil {
				return err
			}
			if cp.Watermark.After(time.Now().Add(feed.MaxClockSkew)) {
				t.Fatalf("%s watermark %v is in the future", name, cp.Watermark)
			}
		}
		n, err := tx.IncidentCount("default")
		if n != 6 {
			t.Fatalf("%d incidents, want 6", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A node that is valid JSON but not an issue (a timestamp that does not parse, an id of the wrong
// type) failed its whole page, so the feed retried that page for good and nothing after it was
// ever fetched. Now each such node is rejected like an incomplete one (recorded with its raw JSON,
// counted, logged) and the feeds go on.
func TestUndecodableNodesDoNotStallTheFeeds(t *testing.T) {
	wizAPI, cfg, dir := startHostile(t)

	now := time.Now().UTC().Truncate(time.Microsecond)
	const (
		idA = "00000000-0000-4000-8000-0000000000a1"
		idT = "00000000-0000-4000-8000-0000000000a2" // createdAt "yesterday"
		idB = "00000000-0000-4000-8000-0000000000a3"
		idC = "00000000-0000-4000-8000-0000000000a4"
	)
	wizAPI.put(idA, node(idA, now.Add(-3*time.Hour), now.Add(-3*time.Hour), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "a"))
	badTime := node(idT, now.Add(-2*time.Hour), now.Add(-2*time.Hour), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "t")
	badTime.raw = strings.Replace(badTime.raw, `"createdAt":"`+now.Add(-2*time.Hour).Format("2006-01-02T15:04:05.000000Z")+`"`, `"createdAt":"yesterday"`, 1)
	wizAPI.put(idT, badTime)
	wrongID := node("", now.Add(-90*time.Minute), now.Add(-90*time.Minute), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "w")
	wrongID.raw = strings.Replace(wrongID.raw, `"id":""`, `"id":12345`, 1)
	wizAPI.put("wrong-id", wrongID)
	wizAPI.put(idB, node(idB, now.Add(-time.Hour), now.Add(-time.Hour), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "b"))
	wizAPI.put(idC, node(idC, now.Add(-30*time.Minute), now.Add(-30*time.Minute), "OPEN", "HIGH", "CLOUD_CONFIGURATION", "c"))
	if !strings.Contains(badTime.raw, `"createdAt":"yesterday"`) || !strings.Contains(wrongID.raw, `"id":12345`) {
		t.Fatalf("setup: the crafted nodes are not crafted: %s %s", badTime.raw, wrongID.raw)
	}

	var mu sync.Mutex
	rejected := 0
	runHostile(t, cfg, &syncBuffer{}, func(res feed.Result) {
		mu.Lock()
		defer mu.Unlock()
		rejected += res.Rejected[feed.RejectIncomplete]
	})
	events, _ := readLines(t, filepath.Join(dir, "incidents.jsonl"))
	got := map[string]int{}
	for _, ev := range events {
		got[ev.IssueID]++
	}
	if len(got) != 3 || got[idA] != 1 || got[idB] != 1 || got[idC] != 1 {
		t.Fatalf("events by issue %v: want one each for the three good issues, on both sides of the bad nodes", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if rejected < 2 {
		t.Errorf("%d nodes rejected as incomplete, want at least the 2 undecodable ones", rejected)
	}
	st, err := store.Open(cfg.Store.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.RejectedIssues("default", 0)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range recs {
		if r.IssueID == idT {
			found = strings.Contains(r.Detail, "the node does not decode") && strings.Contains(r.Raw, "yesterday")
		}
	}
	if !found {
		t.Errorf("rejected records %+v: want %s with its reason and raw node", recs, idT)
	}
}
