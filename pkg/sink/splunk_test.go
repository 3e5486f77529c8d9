package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// hecObject is one event object of a HEC request, decoded by the test receiver.
type hecObject struct {
	Time       json.Number     `json:"time"`
	Host       string          `json:"host"`
	Source     string          `json:"source"`
	Sourcetype string          `json:"sourcetype"`
	Index      string          `json:"index"`
	Event      json.RawMessage `json:"event"`
}

// decodeHEC splits a HEC body into its concatenated objects, the way HEC reads it (an array is an
// error).
func decodeHEC(t testing.TB, body []byte) []hecObject {
	t.Helper()
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		t.Errorf("HEC body is an array: %.80s", body)
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []hecObject
	for {
		var o hecObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Errorf("HEC body does not decode: %v", err)
			return out
		}
		out = append(out, o)
	}
}

// fakeHEC accepts events with the right token, or refuses (400, invalid-event-number) any request
// holding an event whose issue id is in bad. Its answers are Splunk's, as Splunk documents them in
// "Troubleshoot HTTP Event Collector" (Splunk Enterprise docs, "Possible error codes"): status 0
// "Success" (200), 4 "Invalid token" (403), 6 "Invalid data format" (400, with
// "invalid-event-number", the index of the first bad event in the request); the endpoint is
// POST /services/collector/event with "Authorization: Splunk <token>" and concatenated event
// objects (WIZ_API.md §8). It also wants a Content-Length, as wizfetch always sends one.
type fakeHEC struct {
	t     *testing.T
	token string
	bad   map[string]bool

	mu       sync.Mutex
	bodies   [][]byte
	indexed  []string // event ids, in order
	requests int
}

func (f *fakeHEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := readAll(f.t, r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path != "/services/collector/event" || r.Method != http.MethodPost:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"text":"The requested URL was not found on this server.","code":404}`)
		return
	case r.Header.Get("Authorization") != "Splunk "+f.token:
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"text":"Invalid token","code":4}`)
		return
	case r.ContentLength != int64(len(body)) || len(r.TransferEncoding) > 0:
		w.WriteHeader(http.StatusLengthRequired)
		return
	}
	objs := decodeHEC(f.t, body)
	for i, o := range objs {
		if f.bad[issueOf(f.t, o.Event)] {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, i)
			return
		}
	}
	f.bodies = append(f.bodies, body)
	for _, o := range objs {
		f.indexed = append(f.indexed, idOf(f.t, o.Event))
	}
	fmt.Fprint(w, `{"text":"Success","code":0}`)
}

func newTestHEC(t *testing.T, url string, mod func(*config.Sink)) *SplunkHEC {
	t.Helper()
	cfg := config.DefaultSink(config.SinkSplunkHEC)
	cfg.Name, cfg.URL, cfg.Token, cfg.Index = "hec", url, "hec-token", "security"
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSplunkHEC(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.host = "wizfetch-1"
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSplunkWireFormat(t *testing.T) {
	fh := &fakeHEC{t: t, token: "hec-token"}
	srv := httptest.NewServer(fh)
	defer srv.Close()
	s := newTestHEC(t, srv.URL+"/", func(c *config.Sink) { c.Batch = 2 })
	var lines [][]byte
	for i, is := range []string{"A", "B", "C", "D", "E"} {
		lines = append(lines, testEvent(t, "created", is, "OPEN", i))
	}
	if n, err := s.Deliver(context.Background(), itemsOf(lines...)); n != 5 || err != nil {
		t.Fatalf("Deliver = %d, %v; want 5, nil", n, err)
	}
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if len(fh.bodies) != 3 {
		t.Fatalf("%d requests, want 3 (batch 2)", len(fh.bodies))
	}
	golden(t, "splunk_batch.golden", fh.bodies[0])
	var objs []hecObject
	for _, b := range fh.bodies {
		objs = append(objs, decodeHEC(t, b)...)
	}
	for i, o := range objs {
		wantTime := fmt.Sprint(1735787045 + i) // 2025-01-02T03:04:05Z + i s
		if o.Time.String() != wantTime || o.Host != "wizfetch-1" || o.Source != "wiz" || o.Sourcetype != "wiz:issue" || o.Index != "security" {
			t.Errorf("object %d: time %s host %s source %s sourcetype %s index %s", i, o.Time, o.Host, o.Source, o.Sourcetype, o.Index)
		}
		if !bytes.Equal(o.Event, lines[i]) {
			t.Errorf("object %d: event is not the event line:\n%s\n%s", i, o.Event, lines[i])
		}
		var ev struct {
			Incident struct {
				Severity any `json:"severity"`
				RawJSON  any `json:"rawJSON"`
			} `json:"incident"`
		}
		_ = json.Unmarshal(o.Event, &ev)
		if _, ok := ev.Incident.RawJSON.(string); !ok || ev.Incident.Severity != 0.5 {
			t.Errorf("object %d: rawJSON %T severity %v, want a string and the number 0.5", i, ev.Incident.RawJSON, ev.Incident.Severity)
		}
	}
}

func TestSplunkOmitsEmptyFieldsAndKeepsMilliseconds(t *testing.T) {
	s := newTestHEC(t, "https://hec.example.com:8088", func(c *config.Sink) { c.Index, c.Source, c.Sourcetype = "", "", "" })
	s.host = ""
	line := []byte(`{"event_id":"e1","kind":"created","emitted_at":"2025-01-02T03:04:05.25Z","incident":{}}`)
	got, err := s.appendEvent(nil, store.OutboxItem{Data: line})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"time":1735787045.250,"event":` + string(line) + `}`; string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if s.endpoint != "https://hec.example.com:8088/services/collector/event" {
		t.Errorf("endpoint %s", s.endpoint)
	}
}

// TestSplunkRejectedBatch: a batch refused for one event is re-sent one event per request, so the
// good events are indexed and the permanent failure lands on the bad event.
func TestSplunkRejectedBatch(t *testing.T) {
	fh := &fakeHEC{t: t, token: "hec-token", bad: map[string]bool{"C": true}}
	srv := httptest.NewServer(fh)
	defer srv.Close()
	s := newTestHEC(t, srv.URL, func(c *config.Sink) { c.Batch = 10 })
	var lines [][]byte
	for i, is := range []string{"A", "B", "C", "D"} {
		lines = append(lines, testEvent(t, "created", is, "OPEN", i))
	}
	n, err := s.Deliver(context.Background(), itemsOf(lines...))
	if n != 2 || !errors.Is(err, ErrPermanent) {
		t.Fatalf("Deliver = %d, %v; want 2 and a permanent error", n, err)
	}
	if !strings.Contains(err.Error(), "Invalid data format") {
		t.Errorf("error %v lacks HEC's reason", err)
	}
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if want := []string{idOf(t, lines[0]), idOf(t, lines[1])}; !slices.Equal(fh.indexed, want) {
		t.Errorf("indexed %v, want %v", fh.indexed, want)
	}
}

func TestSplunkSizeCapSplitsBatch(t *testing.T) {
	fh := &fakeHEC{t: t, token: "hec-token"}
	srv := httptest.NewServer(fh)
	defer srv.Close()
	s := newTestHEC(t, srv.URL, func(c *config.Sink) { c.Batch = 100 })
	line := testEvent(t, "created", "A", "OPEN", 0)
	s.maxBody = 2*len(line) + 400 // two framed events fit, three do not
	var lines [][]byte
	for i := range 5 {
		lines = append(lines, testEvent(t, "created", fmt.Sprint("I", i), "OPEN", i))
	}
	if n, err := s.Deliver(context.Background(), itemsOf(lines...)); n != 5 || err != nil {
		t.Fatalf("Deliver = %d, %v; want 5, nil", n, err)
	}
	fh.mu.Lock()
	defer fh.mu.Unlock()
	if fh.requests != 3 || len(fh.indexed) != 5 {
		t.Errorf("%d requests indexing %d events, want 3 and 5", fh.requests, len(fh.indexed))
	}
}

func TestSplunkFailures(t *testing.T) {
	good := testEvent(t, "created", "A", "OPEN", 0)
	tests := []struct {
		name      string
		token     string
		items     []store.OutboxItem
		handler   http.HandlerFunc
		wantN     int
		permanent bool
	}{
		{name: "bad token", token: "wrong", items: itemsOf(good), permanent: true},
		{name: "busy", items: itemsOf(good), handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"text":"Server is busy","code":9}`, http.StatusServiceUnavailable)
		}},
		{name: "2xx with an error code", items: itemsOf(good), handler: func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"text":"Internal server error","code":8}`)
		}},
		{name: "unrenderable after good ones", items: itemsOf(good, []byte(`{"event_id":"x","emitted_at":"yesterday"}`), good), wantN: 1, permanent: true},
		{name: "not JSON", items: itemsOf([]byte(`not json`)), permanent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Handler = &fakeHEC{t: t, token: "hec-token"}
			if tc.handler != nil {
				h = tc.handler
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			s := newTestHEC(t, srv.URL, func(c *config.Sink) {
				if tc.token != "" {
					c.Token = config.Secret(tc.token)
				}
			})
			n, err := s.Deliver(context.Background(), tc.items)
			if n != tc.wantN || err == nil {
				t.Fatalf("Deliver = %d, %v; want %d and an error", n, err, tc.wantN)
			}
			if errors.Is(err, ErrPermanent) != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", !tc.permanent, tc.permanent, err)
			}
			if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "hec-token") {
				t.Errorf("error holds the token: %v", err)
			}
		})
	}
}
