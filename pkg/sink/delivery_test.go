package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/xsoarsim"
)

// Shared helpers of the remote sink tests.

// testEvent builds one event line as the feed commits it. n varies the timestamps (and so the id).
func testEvent(t testing.TB, kind, issueID, status string, n int) []byte {
	t.Helper()
	sca := time.Date(2025, 1, 2, 3, 4, 5, n*1000, time.UTC)
	inc, err := json.Marshal(incident.Incident{
		Name:         "Rule <A> & B - " + issueID,
		Type:         "Wiz Issue",
		Severity:     0.5,
		Occurred:     "2025-01-01T00:00:00.123456Z",
		Details:      "a description",
		Labels:       []incident.Label{{Type: "status", Value: status}},
		CustomFields: map[string]any{"wizissueid": issueID, "wizcloudplatform": "AWS"},
		RawJSON:      `{"id":"` + issueID + `","status":"` + status + `","severity":"INFORMATIONAL"}`,
		DbotMirrorID: issueID,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := incident.Event{
		EventID:     incident.EventID("default", issueID, kind, &sca),
		Kind:        kind,
		Instance:    "default",
		IssueID:     issueID,
		IssueStatus: status,
		EmittedAt:   time.Date(2025, 1, 2, 3, 4, 5+n, 0, time.UTC).Format(time.RFC3339),
		Incident:    inc,
	}
	b, err := ev.Line()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// outboxItems enqueues lines into sink's outbox and returns them as the dispatcher reads them.
func outboxItems(t testing.TB, st *store.Store, sink string, lines ...[]byte) []store.OutboxItem {
	t.Helper()
	err := st.Update(func(tx *store.Tx) error {
		for _, l := range lines {
			if _, err := tx.Enqueue(sink, "default", l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	items, err := st.Outbox(sink, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return items[len(items)-len(lines):]
}

// itemsOf wraps lines as outbox items without a store.
func itemsOf(lines ...[]byte) []store.OutboxItem {
	out := make([]store.OutboxItem, len(lines))
	for i, l := range lines {
		out[i] = store.OutboxItem{Seq: uint64(i + 1), Data: l}
	}
	return out
}

func idOf(t testing.TB, line []byte) string {
	t.Helper()
	var ev struct {
		EventID string `json:"event_id"`
		IssueID string `json:"issue_id"`
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Errorf("not an event line: %q", line) // Errorf: also called from handler goroutines
	}
	return ev.EventID
}

func issueOf(t testing.TB, line []byte) string {
	t.Helper()
	var ev struct {
		IssueID string `json:"issue_id"`
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Errorf("not an event line: %q", line)
	}
	return ev.IssueID
}

// flaky answers 503 to the first down requests, then hands over to next. With attemptID set it
// records the event id each refused request carried.
type flaky struct {
	t         *testing.T
	down      int
	next      http.Handler
	attemptID func(h http.Header, body []byte) string

	mu      sync.Mutex
	calls   int
	refused []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := readAll(f.t, r)
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.calls++
	fail := f.calls <= f.down
	if fail && f.attemptID != nil {
		f.refused = append(f.refused, f.attemptID(r.Header, body))
	}
	f.mu.Unlock()
	if fail {
		http.Error(w, `{"text":"Server is busy","code":9}`, http.StatusServiceUnavailable)
		return
	}
	f.next.ServeHTTP(w, r)
}

// syncBuffer is a log sink safe for the dispatcher's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runUntilDrained runs a dispatcher over targets until every outbox is empty (or the deadline
// passes), then stops it.
func runUntilDrained(t *testing.T, st *store.Store, log *slog.Logger, targets ...Target) {
	t.Helper()
	d := NewDispatcher(st, targets, DispatcherOptions{
		Logger: log, BaseBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		PollEvery: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pending := 0
		for _, tg := range targets {
			n, err := st.OutboxDepth(tg.Sink.Name())
			if err != nil {
				t.Fatal(err)
			}
			pending += n
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("%d events still pending after the deadline", pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("dispatcher: %v", err)
	}
}

// workload is a run of events over several issues: each issue is created, then changes status a
// few times, interleaved with the other issues.
func workload(t testing.TB) [][]byte {
	var lines [][]byte
	statuses := []string{"IN_PROGRESS", "RESOLVED", "OPEN"}
	issues := []string{"i-a", "i-b", "i-c", "i-d"}
	for _, is := range issues {
		lines = append(lines, testEvent(t, "created", is, "OPEN", 0))
	}
	for round, s := range statuses {
		for _, is := range issues {
			lines = append(lines, testEvent(t, "updated", is, s, round+1))
		}
	}
	return lines
}

// TestDeliveryNothingLostWhileReceiverDown runs the real dispatcher over a real store for every
// remote sink against a receiver that is down (503) for a while: once it is back, every event has
// arrived exactly in order, with the ids it had in the outbox, and nothing went to the dead letter.
func TestDeliveryNothingLostWhileReceiverDown(t *testing.T) {
	const down = 7
	const apiKey = "xsoar-api-key-do-not-log"
	const hecToken = "hec-token-do-not-log"
	const whSecret = "whsec_c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdGluZw=="

	type received struct {
		mu       sync.Mutex
		accepted []string // event ids accepted, in order
	}
	tests := []struct {
		name      string
		attemptID func(t *testing.T) func(http.Header, []byte) string // the event id a request carries first
		build     func(t *testing.T, st *store.Store, rec *received) (config.Sink, http.Handler, func(t *testing.T))
	}{
		{"webhook", func(t *testing.T) func(http.Header, []byte) string {
			return func(h http.Header, _ []byte) string { return h.Get("webhook-id") }
		}, func(t *testing.T, st *store.Store, rec *received) (config.Sink, http.Handler, func(*testing.T)) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body := readAll(t, r)
				if err := verifyStandardWebhook(whSecret, r.Header, body, time.Now()); err != nil {
					http.Error(w, err.Error(), http.StatusUnauthorized)
					return
				}
				rec.mu.Lock()
				rec.accepted = append(rec.accepted, r.Header.Get("webhook-id"))
				rec.mu.Unlock()
			})
			cfg := config.DefaultSink(config.SinkWebhook)
			cfg.Secret = whSecret
			return cfg, h, nil
		}},
		{"splunk_hec", func(t *testing.T) func(http.Header, []byte) string {
			return func(_ http.Header, body []byte) string {
				if objs := decodeHEC(t, body); len(objs) > 0 {
					return idOf(t, objs[0].Event)
				}
				return ""
			}
		}, func(t *testing.T, st *store.Store, rec *received) (config.Sink, http.Handler, func(*testing.T)) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Splunk "+hecToken {
					http.Error(w, `{"text":"Invalid token","code":4}`, http.StatusUnauthorized)
					return
				}
				for _, obj := range decodeHEC(t, readAll(t, r)) {
					rec.mu.Lock()
					rec.accepted = append(rec.accepted, idOf(t, obj.Event))
					rec.mu.Unlock()
				}
				fmt.Fprint(w, `{"text":"Success","code":0}`)
			})
			cfg := config.DefaultSink(config.SinkSplunkHEC)
			cfg.Token = hecToken
			cfg.Batch = 3
			return cfg, h, nil
		}},
		{"xsoar", nil, func(t *testing.T, st *store.Store, rec *received) (config.Sink, http.Handler, func(*testing.T)) {
			sim := xsoarsim.New(xsoarsim.Options{Key: apiKey, OnAccept: func(inc map[string]any) {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				rec.accepted = append(rec.accepted, fmt.Sprint(inc["dbotMirrorId"], "/", labelValue(inc, "status")))
			}})
			cfg := config.DefaultSink(config.SinkXSOAR)
			cfg.APIKey = apiKey
			check := func(t *testing.T) {
				incs := sim.Incidents()
				if len(incs) != 4 {
					t.Errorf("XSOAR holds %d incidents, want 4 (one per issue)", len(incs))
				}
				for _, inc := range incs {
					if inc.Version != 4 { // created once, updated three times
						t.Errorf("incident %s has version %d, want 4", inc.ID, inc.Version)
					}
				}
			}
			return cfg, sim, check
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			rec := &received{}
			cfg, h, check := tc.build(t, st, rec)
			fl := &flaky{t: t, down: down, next: h}
			if tc.attemptID != nil {
				fl.attemptID = tc.attemptID(t)
			}
			srv := httptest.NewServer(fl)
			defer srv.Close()
			cfg.Name = "out"
			cfg.URL = srv.URL
			logs := &syncBuffer{}
			log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			target, err := NewTarget(cfg, st, log)
			if err != nil {
				t.Fatal(err)
			}
			defer target.Sink.Close()

			lines := workload(t)
			outboxItems(t, st, "out", lines...)
			runUntilDrained(t, st, log, target)

			var want []string
			for _, l := range lines {
				if tc.name == "xsoar" {
					var ev struct {
						IssueID     string `json:"issue_id"`
						IssueStatus string `json:"issue_status"`
					}
					_ = json.Unmarshal(l, &ev)
					want = append(want, ev.IssueID+"/"+ev.IssueStatus)
				} else {
					want = append(want, idOf(t, l))
				}
			}
			rec.mu.Lock()
			got := slices.Clone(rec.accepted)
			rec.mu.Unlock()
			if !slices.Equal(got, want) {
				t.Errorf("receiver accepted\n%v\nwant (the outbox order, nothing lost, nothing twice)\n%v", got, want)
			}
			dead, err := st.DeadLetters("out", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != 0 {
				t.Errorf("%d dead letters, want 0: %s", len(dead), dead[0].Reason)
			}
			if !strings.Contains(logs.String(), "retrying") {
				t.Errorf("the outage left no retry in the log")
			}
			for _, secret := range []string{apiKey, hecToken, whSecret, "c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdGluZw"} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("a secret is in the log")
				}
			}
			if check != nil {
				check(t)
			}
			if tc.attemptID != nil {
				// Nothing passes while the receiver is down, so every refused attempt is a retry of
				// the head event, which must carry the same id each time.
				fl.mu.Lock()
				refused := slices.Clone(fl.refused)
				fl.mu.Unlock()
				if len(refused) != down {
					t.Errorf("%d refused attempts, want %d", len(refused), down)
				}
				for i, id := range refused {
					if id != want[0] {
						t.Errorf("refused attempt %d carried event id %q, want the head's %q", i, id, want[0])
					}
				}
			}
		})
	}
}

// TestDeliveryDeadLetter checks that a permanent refusal sends exactly that event to the dead
// letter with the receiver's reason (and no secret), and that delivery goes on with the next ones.
func TestDeliveryDeadLetter(t *testing.T) {
	const token = "hec-token-secret-value"
	st := openStore(t)
	lines := [][]byte{
		testEvent(t, "created", "i-1", "OPEN", 0),
		testEvent(t, "created", "i-2", "OPEN", 0),
		testEvent(t, "created", "i-3", "OPEN", 0),
	}
	bad := idOf(t, lines[1])
	var mu sync.Mutex
	var accepted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		objs := decodeHEC(t, readAll(t, r))
		for i, o := range objs {
			if idOf(t, o.Event) == bad {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"text":"Invalid data format (token %s)","code":6,"invalid-event-number":%d}`, token, i)
				return
			}
		}
		mu.Lock()
		for _, o := range objs {
			accepted = append(accepted, idOf(t, o.Event))
		}
		mu.Unlock()
		fmt.Fprint(w, `{"text":"Success","code":0}`)
	}))
	defer srv.Close()
	cfg := config.DefaultSink(config.SinkSplunkHEC)
	cfg.Name, cfg.URL, cfg.Token = "hec", srv.URL, token
	target, err := NewTarget(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	outboxItems(t, st, "hec", lines...)
	runUntilDrained(t, st, nil, target)

	mu.Lock()
	defer mu.Unlock()
	if want := []string{idOf(t, lines[0]), idOf(t, lines[2])}; !slices.Equal(accepted, want) {
		t.Errorf("accepted %v, want %v", accepted, want)
	}
	dead, err := st.DeadLetters("hec", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || idOf(t, dead[0].Data) != bad {
		t.Fatalf("dead letters %+v, want only event %s", dead, bad)
	}
	if !strings.Contains(dead[0].Reason, "HTTP 400") || !strings.Contains(dead[0].Reason, "Invalid data format") {
		t.Errorf("dead letter reason %q lacks the status and the receiver's reason", dead[0].Reason)
	}
	if strings.Contains(dead[0].Reason, token) {
		t.Errorf("dead letter reason %q holds the token", dead[0].Reason)
	}
}

func readAll(t testing.TB, r *http.Request) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		t.Errorf("read request body: %v", err)
	}
	return buf.Bytes()
}
