package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file\ngot:  %s\nwant: %s", name, got, want)
	}
}

type fakeIncident struct {
	version int64
	body    map[string]any
}

type fakeRequest struct {
	path   string
	header http.Header
	body   []byte
}

// fakeXSOAR is an XSOAR REST API written from its documentation: it authenticates each request the
// way XSOAR 6, XSOAR 8 standard keys or XSOAR 8 advanced keys do (recomputing the advanced
// signature and refusing a reused nonce), assigns ids "1", "2", … with version 1 on create, requires
// the current version on update (409 "version conflict" otherwise) and bumps it, and answers
// /incidents/search. It echoes the Authorization it got in a 401, to prove the sink redacts it.
type fakeXSOAR struct {
	t        *testing.T
	key      string
	keyID    string
	advanced bool
	prefix   string

	mu        sync.Mutex
	nextID    int
	incidents map[string]*fakeIncident
	requests  []fakeRequest
	nonces    map[string]bool
	searches  int
	fail      []int // statuses to answer to the next requests, before anything else
	onAccept  func(body map[string]any)
}

func newFakeXSOAR(t *testing.T, key, keyID string, advanced bool) *fakeXSOAR {
	f := &fakeXSOAR{t: t, key: key, keyID: keyID, advanced: advanced, incidents: map[string]*fakeIncident{}, nonces: map[string]bool{}}
	if keyID != "" {
		f.prefix = "/xsoar/public/v1"
	}
	return f
}

var alnum64 = regexp.MustCompile(`^[A-Za-z0-9]{64}$`)

func (f *fakeXSOAR) authenticate(h http.Header) string {
	if f.keyID == "" {
		if h.Get("x-xdr-auth-id") != "" {
			return "unexpected x-xdr-auth-id for XSOAR 6"
		}
		if h.Get("Authorization") != f.key {
			return "bad key " + h.Get("Authorization")
		}
		return ""
	}
	if h.Get("x-xdr-auth-id") != f.keyID {
		return "bad x-xdr-auth-id"
	}
	if !f.advanced {
		if h.Get("Authorization") != f.key {
			return "bad key " + h.Get("Authorization")
		}
		return ""
	}
	nonce, ts := h.Get("x-xdr-nonce"), h.Get("x-xdr-timestamp")
	if !alnum64.MatchString(nonce) {
		return "nonce is not 64 alphanumerics"
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil || len(ts) != 13 {
		return "timestamp is not unix milliseconds"
	}
	sum := sha256.Sum256([]byte(f.key + nonce + ts))
	if h.Get("Authorization") != hex.EncodeToString(sum[:]) {
		return "bad advanced signature " + h.Get("Authorization")
	}
	if f.nonces[nonce] {
		return "nonce reused"
	}
	f.nonces[nonce] = true
	return ""
}

func (f *fakeXSOAR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := readAll(f.t, r)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, fakeRequest{path: r.URL.Path, header: r.Header.Clone(), body: body})
	w.Header().Set("Content-Type", "application/json")
	if len(f.fail) > 0 {
		status := f.fail[0]
		f.fail = f.fail[1:]
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "3")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"id":"error","status":%d,"detail":"injected failure"}`, status)
		return
	}
	if reason := f.authenticate(r.Header); reason != "" {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"id": "unauthorized", "status": 401, "detail": reason})
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"detail":"want POST application/json"}`)
		return
	}
	if r.ContentLength != int64(len(body)) || len(r.TransferEncoding) != 0 {
		w.WriteHeader(http.StatusLengthRequired)
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"detail":"bad JSON"}`)
		return
	}
	switch r.URL.Path {
	case f.prefix + "/incident":
		var inc *fakeIncident
		id, _ := req["id"].(string)
		if id == "" {
			f.nextID++
			id = strconv.Itoa(f.nextID)
			inc = &fakeIncident{version: 1}
			f.incidents[id] = inc
		} else {
			inc = f.incidents[id]
			if inc == nil {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"detail":"Could not find incident"}`)
				return
			}
			v, _ := req["version"].(float64)
			if int64(v) != inc.version {
				w.WriteHeader(http.StatusConflict)
				fmt.Fprintf(w, `{"detail":"version conflict: got %d, incident is at %d"}`, int64(v), inc.version)
				return
			}
			inc.version++
		}
		inc.body = req
		if f.onAccept != nil {
			f.onAccept(req)
		}
		out := map[string]any{}
		for k, v := range req {
			out[k] = v
		}
		out["id"], out["version"] = id, inc.version
		json.NewEncoder(w).Encode(out)
	case f.prefix + "/incidents/search":
		f.searches++
		var data []map[string]any
		filter, _ := req["filter"].(map[string]any)
		ids, _ := filter["id"].([]any)
		for _, x := range ids {
			id, _ := x.(string)
			if inc := f.incidents[id]; inc != nil {
				data = append(data, map[string]any{"id": id, "version": inc.version, "name": inc.body["name"]})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"total": len(data), "data": data})
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"detail":"no such endpoint"}`)
	}
}

// labelValue returns the value of the first label of typ in an incident body.
func labelValue(inc map[string]any, typ string) string {
	labels, _ := inc["labels"].([]any)
	for _, l := range labels {
		m, _ := l.(map[string]any)
		if m["type"] == typ {
			s, _ := m["value"].(string)
			return s
		}
	}
	return ""
}

func newTestXSOAR(t *testing.T, url string, mod func(*config.Sink)) (*XSOAR, *store.Store) {
	t.Helper()
	st := openStore(t)
	cfg := config.DefaultSink(config.SinkXSOAR)
	cfg.Name, cfg.URL, cfg.APIKey = "soc", url, "the-api-key"
	if mod != nil {
		mod(&cfg)
	}
	x, err := NewXSOAR(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x, st
}

func mapping(t *testing.T, st *store.Store, issueID string) *xsoarRef {
	t.Helper()
	var raw []byte
	err := st.View(func(tx *store.Tx) error {
		var err error
		raw, err = tx.SinkState("soc", "xsoar:default:"+issueID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if raw == nil {
		return nil
	}
	var ref xsoarRef
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return &ref
}

func TestXSOARWireFormat(t *testing.T) {
	no := false
	tests := []struct {
		name      string
		keyID     string
		advanced  bool
		urlSuffix string
		override  string
		createInv *bool
		wantPath  string
		golden    string
	}{
		{name: "xsoar6", wantPath: "/incident", golden: "xsoar_create.golden.json"},
		{name: "xsoar6 trailing slash", urlSuffix: "/", wantPath: "/incident"},
		{name: "xsoar6 override and no investigation", override: "Cloud Misconfig", createInv: &no, wantPath: "/incident"},
		{name: "xsoar8 standard key", keyID: "7", wantPath: "/xsoar/public/v1/incident"},
		{name: "xsoar8 advanced key", keyID: "12", advanced: true, wantPath: "/xsoar/public/v1/incident"},
		{name: "xsoar8 url already has the prefix", keyID: "12", urlSuffix: "/xsoar/public/v1/", wantPath: "/xsoar/public/v1/incident"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFakeXSOAR(t, "the-api-key", tc.keyID, tc.advanced)
			srv := httptest.NewServer(fx)
			defer srv.Close()
			x, st := newTestXSOAR(t, srv.URL+tc.urlSuffix, func(c *config.Sink) {
				c.APIKeyID, c.AdvancedKey, c.IncidentTypeOverride = tc.keyID, tc.advanced, tc.override
				if tc.createInv != nil {
					c.CreateInvestigation = tc.createInv
				}
			})
			line := testEvent(t, "created", "issue-1", "OPEN", 0)
			n, err := x.Deliver(context.Background(), itemsOf(line))
			if n != 1 || err != nil {
				t.Fatalf("Deliver = %d, %v; want 1, nil", n, err)
			}
			fx.mu.Lock()
			defer fx.mu.Unlock()
			if len(fx.requests) != 1 {
				t.Fatalf("%d requests, want 1", len(fx.requests))
			}
			req := fx.requests[0]
			if req.path != tc.wantPath {
				t.Errorf("path %s, want %s", req.path, tc.wantPath)
			}
			var body map[string]any
			if err := json.Unmarshal(req.body, &body); err != nil {
				t.Fatal(err)
			}
			var ev struct {
				Incident map[string]any `json:"incident"`
			}
			_ = json.Unmarshal(line, &ev)
			wantType := "Wiz Issue"
			if tc.override != "" {
				wantType = tc.override
			}
			checks := []struct {
				field string
				want  any
			}{
				{"name", ev.Incident["name"]},
				{"type", wantType},
				{"severity", 0.5},
				{"occurred", "2025-01-01T00:00:00.123456Z"},
				{"details", "a description"},
				{"rawJSON", `{"id":"issue-1","status":"OPEN","severity":"INFORMATIONAL"}`},
				{"dbotMirrorId", "issue-1"},
				{"createInvestigation", tc.createInv == nil},
			}
			for _, c := range checks {
				if got := body[c.field]; got != c.want {
					t.Errorf("%s = %#v (%T), want %#v", c.field, got, got, c.want)
				}
			}
			if _, ok := body["id"]; ok {
				t.Errorf("a create carries an id")
			}
			if labelValue(body, "status") != "OPEN" {
				t.Errorf("labels %v lack status OPEN", body["labels"])
			}
			if cf, _ := body["customFields"].(map[string]any); cf["wizissueid"] != "issue-1" {
				t.Errorf("customFields %v lack wizissueid", body["customFields"])
			}
			if ref := mapping(t, st, "issue-1"); ref == nil || *ref != (xsoarRef{ID: "1", Version: 1}) {
				t.Errorf("stored mapping %+v, want {1 1}", ref)
			}
			if tc.golden != "" {
				golden(t, tc.golden, req.body)
			}
		})
	}
}

func TestXSOARCreateThenUpdate(t *testing.T) {
	fx := newFakeXSOAR(t, "the-api-key", "", false)
	srv := httptest.NewServer(fx)
	defer srv.Close()
	x, st := newTestXSOAR(t, srv.URL, nil)
	items := itemsOf(
		testEvent(t, "created", "A", "OPEN", 0),
		testEvent(t, "created", "B", "OPEN", 0),
		testEvent(t, "updated", "A", "IN_PROGRESS", 1),
		testEvent(t, "updated", "A", "RESOLVED", 2),
	)
	if n, err := x.Deliver(context.Background(), items); n != 4 || err != nil {
		t.Fatalf("Deliver = %d, %v; want 4, nil", n, err)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if len(fx.incidents) != 2 {
		t.Fatalf("XSOAR holds %d incidents, want 2", len(fx.incidents))
	}
	a := fx.incidents["1"]
	if a.version != 3 || labelValue(a.body, "status") != "RESOLVED" {
		t.Errorf("incident 1: version %d status %s, want 3 RESOLVED", a.version, labelValue(a.body, "status"))
	}
	for i, want := range []struct {
		id      string
		version float64
	}{{"", 0}, {"", 0}, {"1", 1}, {"1", 2}} {
		var body map[string]any
		_ = json.Unmarshal(fx.requests[i].body, &body)
		id, _ := body["id"].(string)
		v, _ := body["version"].(float64)
		if id != want.id || v != want.version {
			t.Errorf("request %d: id %q version %v, want %q %v", i, id, v, want.id, want.version)
		}
		if body["rawJSON"] == nil || body["name"] == nil || body["customFields"] == nil {
			t.Errorf("request %d is not the full incident body: %s", i, fx.requests[i].body)
		}
	}
	if ref := mapping(t, st, "A"); ref == nil || *ref != (xsoarRef{"1", 3}) {
		t.Errorf("mapping of A %+v, want {1 3}", ref)
	}
	if ref := mapping(t, st, "B"); ref == nil || *ref != (xsoarRef{"2", 1}) {
		t.Errorf("mapping of B %+v, want {2 1}", ref)
	}
}

func TestXSOARVersionConflictRefreshes(t *testing.T) {
	fx := newFakeXSOAR(t, "the-api-key", "", false)
	srv := httptest.NewServer(fx)
	defer srv.Close()
	x, st := newTestXSOAR(t, srv.URL, nil)
	ctx := context.Background()
	if _, err := x.Deliver(ctx, itemsOf(testEvent(t, "created", "A", "OPEN", 0))); err != nil {
		t.Fatal(err)
	}
	fx.mu.Lock()
	fx.incidents["1"].version = 5 // an analyst edited the incident
	fx.mu.Unlock()
	if n, err := x.Deliver(ctx, itemsOf(testEvent(t, "updated", "A", "RESOLVED", 1))); n != 1 || err != nil {
		t.Fatalf("Deliver = %d, %v; want 1, nil", n, err)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if fx.searches != 1 {
		t.Errorf("%d searches, want 1", fx.searches)
	}
	if v := fx.incidents["1"].version; v != 6 {
		t.Errorf("incident version %d, want 6", v)
	}
	if ref := mapping(t, st, "A"); ref == nil || *ref != (xsoarRef{"1", 6}) {
		t.Errorf("mapping %+v, want {1 6}", ref)
	}
	if len(fx.incidents) != 1 {
		t.Errorf("%d incidents, want 1", len(fx.incidents))
	}
}

func TestXSOARMissingOrExistingMapping(t *testing.T) {
	fx := newFakeXSOAR(t, "the-api-key", "", false)
	srv := httptest.NewServer(fx)
	defer srv.Close()
	x, st := newTestXSOAR(t, srv.URL, nil)
	ctx := context.Background()
	// An update whose create went to the dead letter creates the incident.
	if _, err := x.Deliver(ctx, itemsOf(testEvent(t, "updated", "A", "IN_PROGRESS", 1))); err != nil {
		t.Fatal(err)
	}
	if ref := mapping(t, st, "A"); ref == nil || *ref != (xsoarRef{"1", 1}) {
		t.Fatalf("mapping %+v, want {1 1}", ref)
	}
	// A replayed created updates instead of duplicating.
	if _, err := x.Deliver(ctx, itemsOf(testEvent(t, "created", "A", "OPEN", 0))); err != nil {
		t.Fatal(err)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if len(fx.incidents) != 1 || fx.incidents["1"].version != 2 {
		t.Errorf("%d incidents (version %d), want 1 at version 2", len(fx.incidents), fx.incidents["1"].version)
	}
}

func TestXSOARFailures(t *testing.T) {
	const key = "super-secret-api-key-1234"
	tests := []struct {
		name       string
		fail       []int
		key        string // the key the receiver expects
		permanent  bool
		retryAfter time.Duration
	}{
		{name: "401 bad key", key: "another-key", permanent: true},
		{name: "400", fail: []int{400}, permanent: true},
		{name: "403", fail: []int{403}, permanent: true},
		{name: "422", fail: []int{422}, permanent: true},
		{name: "429", fail: []int{429}, retryAfter: 3 * time.Second},
		{name: "500", fail: []int{500}},
		{name: "503", fail: []int{503}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := key
			if tc.key != "" {
				want = tc.key
			}
			fx := newFakeXSOAR(t, want, "", false)
			srv := httptest.NewServer(fx)
			defer srv.Close()
			x, _ := newTestXSOAR(t, srv.URL, func(c *config.Sink) { c.APIKey = key })
			ctx := context.Background()
			if _, err := x.Deliver(ctx, itemsOf(testEvent(t, "created", "A", "OPEN", 0))); err != nil && tc.key == "" {
				t.Fatal(err)
			}
			fx.mu.Lock()
			fx.fail = tc.fail
			fx.mu.Unlock()
			n, err := x.Deliver(ctx, itemsOf(testEvent(t, "created", "B", "OPEN", 0)))
			if n != 0 || err == nil {
				t.Fatalf("Deliver = %d, %v; want 0 and an error", n, err)
			}
			if got := errors.Is(err, ErrPermanent); got != tc.permanent {
				t.Errorf("permanent = %v, want %v (%v)", got, tc.permanent, err)
			}
			if ra, _ := RetryAfter(err); ra != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", ra, tc.retryAfter)
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error holds the api key: %v", err)
			}
			var he *HTTPError
			if !errors.As(err, &he) || he.Reason == "" {
				t.Errorf("error %v carries no receiver reason", err)
			}
		})
	}
	t.Run("network error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		x, _ := newTestXSOAR(t, srv.URL, func(c *config.Sink) { c.APIKey = key })
		n, err := x.Deliver(context.Background(), itemsOf(testEvent(t, "created", "A", "OPEN", 0)))
		if n != 0 || err == nil || errors.Is(err, ErrPermanent) {
			t.Fatalf("Deliver = %d, %v; want 0 and a retryable error", n, err)
		}
	})
	t.Run("unrenderable event", func(t *testing.T) {
		x, _ := newTestXSOAR(t, "http://127.0.0.1:1", nil)
		n, err := x.Deliver(context.Background(), itemsOf([]byte(`{"event_id":"e","kind":"created","issue_id":"A","incident":"nope"}`)))
		if n != 0 || !errors.Is(err, ErrPermanent) {
			t.Fatalf("Deliver = %d, %v; want 0 and a permanent error", n, err)
		}
	})
}

// TestXSOARAdvancedKeyFreshPerAttempt: a retry carries a new nonce, timestamp and signature (the
// receiver refuses a reused nonce).
func TestXSOARAdvancedKeyFreshPerAttempt(t *testing.T) {
	fx := newFakeXSOAR(t, "adv-key", "42", true)
	fx.fail = []int{503}
	srv := httptest.NewServer(fx)
	defer srv.Close()
	x, st := newTestXSOAR(t, srv.URL, func(c *config.Sink) { c.APIKey, c.APIKeyID, c.AdvancedKey = "adv-key", "42", true })
	clock := time.UnixMilli(1_700_000_000_000)
	x.now = func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	items := itemsOf(testEvent(t, "created", "A", "OPEN", 0))
	if n, err := x.Deliver(context.Background(), items); n != 0 || err == nil {
		t.Fatalf("first attempt: %d, %v; want the injected 503", n, err)
	}
	if n, err := x.Deliver(context.Background(), items); n != 1 || err != nil {
		t.Fatalf("retry: %d, %v; want 1, nil", n, err)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	r0, r1 := fx.requests[0].header, fx.requests[1].header
	for _, h := range []string{"x-xdr-nonce", "x-xdr-timestamp", "Authorization"} {
		if r0.Get(h) == "" || r0.Get(h) == r1.Get(h) {
			t.Errorf("%s not fresh per attempt: %q then %q", h, r0.Get(h), r1.Get(h))
		}
	}
	if r1.Get("x-xdr-timestamp") != strconv.FormatInt(clock.UnixMilli(), 10) {
		t.Errorf("timestamp %s, want the clock's %d", r1.Get("x-xdr-timestamp"), clock.UnixMilli())
	}
	if mapping(t, st, "A") == nil {
		t.Errorf("no mapping after the successful retry")
	}
}

func TestNewXSOARRejects(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		name string
		mod  func(*config.Sink)
	}{
		{"no key", func(c *config.Sink) { c.APIKey = "" }},
		{"advanced without key id", func(c *config.Sink) { c.AdvancedKey = true }},
		{"relative url", func(c *config.Sink) { c.URL = "xsoar.example.com" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.DefaultSink(config.SinkXSOAR)
			cfg.Name, cfg.URL, cfg.APIKey = "soc", "https://xsoar.example.com", "k-secret"
			tc.mod(&cfg)
			_, err := NewXSOAR(cfg, st, nil)
			if err == nil {
				t.Fatal("NewXSOAR accepted a bad config")
			}
			if strings.Contains(err.Error(), "k-secret") {
				t.Errorf("error holds the key: %v", err)
			}
		})
	}
}
