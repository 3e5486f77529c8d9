package wizsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

const smallQuery = `{ issuesV2(first: 2, orderBy: {field: CREATED_AT}) { nodes { id } pageInfo { hasNextPage endCursor } } }`

func statuses(h *harness, n int) []int {
	h.t.Helper()
	out := make([]int, n)
	for k := range out {
		out[k], _, _ = h.raw(h.token, smallQuery, nil)
	}
	return out
}

func TestFaultKinds(t *testing.T) {
	tests := []struct {
		spec  string
		check func(t *testing.T, status int, hdr http.Header, body []byte)
	}{
		{"429:count=1,retry_after=2s", func(t *testing.T, status int, hdr http.Header, body []byte) {
			if status != 429 || hdr.Get("Retry-After") != "2" || !strings.Contains(string(body), CodeRateLimited) {
				t.Fatalf("status %d Retry-After %q body %s", status, hdr.Get("Retry-After"), body)
			}
		}},
		{"429:count=1", func(t *testing.T, status int, hdr http.Header, body []byte) {
			if status != 429 || hdr.Get("Retry-After") != "" {
				t.Fatalf("status %d Retry-After %q", status, hdr.Get("Retry-After"))
			}
		}},
		{"5xx:count=1,code=502", func(t *testing.T, status int, _ http.Header, body []byte) {
			if status != 502 || !strings.Contains(string(body), CodeInternal) {
				t.Fatalf("status %d body %s", status, body)
			}
		}},
		{"5xx:count=1", func(t *testing.T, status int, _ http.Header, _ []byte) {
			if status != 503 {
				t.Fatalf("status %d, want the default 503", status)
			}
		}},
		{"partial:count=1", func(t *testing.T, status int, _ http.Header, body []byte) {
			var r gqlResp
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			if status != 200 || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != CodeInternal || len(r.Data["issuesV2"]) < 10 {
				t.Fatalf("status %d body %s", status, body)
			}
		}},
		{"malformed:count=1", func(t *testing.T, status int, _ http.Header, body []byte) {
			if status != 200 || json.Valid(body) || len(body) == 0 {
				t.Fatalf("status %d, valid JSON %v: %s", status, json.Valid(body), body)
			}
		}},
		{"graphql_ratelimit:count=1", func(t *testing.T, status int, _ http.Header, body []byte) {
			// Throttling inside an HTTP 200 (Wiz's Backstage plugin types/index.ts: RATE_LIMIT_EXCEEDED).
			var r gqlResp
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			if status != 200 || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != CodeRateLimited || r.Data != nil {
				t.Fatalf("status %d body %s", status, body)
			}
		}},
		{"expire200:count=1", func(t *testing.T, status int, _ http.Header, body []byte) {
			var r gqlResp
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			if status != 200 || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != CodeUnauthenticated || r.Data != nil {
				t.Fatalf("status %d body %s", status, body)
			}
		}},
		{"gateway:count=1", func(t *testing.T, status int, hdr http.Header, body []byte) {
			if status != 502 || json.Valid(body) || !strings.Contains(string(body), "502 Bad Gateway") || hdr.Get("Content-Type") != "text/html" {
				t.Fatalf("status %d %s body %s", status, hdr.Get("Content-Type"), body)
			}
		}},
		{"gateway:count=1,code=504", func(t *testing.T, status int, _ http.Header, body []byte) {
			if status != 504 || !strings.Contains(string(body), "504 Gateway Timeout") {
				t.Fatalf("status %d body %s", status, body)
			}
		}},
		{"expire:count=1", func(t *testing.T, status int, _ http.Header, body []byte) {
			if status != 401 || !strings.Contains(string(body), CodeUnauthenticated) {
				t.Fatalf("status %d body %s", status, body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			h := newHarness(t, Options{Issues: 20, Faults: tt.spec})
			status, hdr, body := h.raw(h.token, smallQuery, nil)
			tt.check(t, status, hdr, body)
			if tt.spec == "expire:count=1" || tt.spec == "expire200:count=1" {
				if s, _, _ := h.raw(h.token, smallQuery, nil); s != 401 {
					t.Fatalf("old token after expire fault: %d, want 401", s)
				}
				h.token = h.newToken()
			}
			if s, _, body := h.raw(h.token, smallQuery, nil); s != 200 || !json.Valid(body) {
				t.Fatalf("after the spent fault: status %d body %s", s, body)
			}
			kind, _, _ := strings.Cut(tt.spec, ":")
			if got := h.sim.Stats().Faults[kind]; got != 1 {
				t.Fatalf("Stats.Faults[%s] = %d, want 1", kind, got)
			}
		})
	}
}

func TestFaultSlow(t *testing.T) {
	h := newHarness(t, Options{Issues: 20, Faults: "slow:count=1,delay=50ms"})
	start := time.Now()
	status, _, _ := h.raw(h.token, smallQuery, nil)
	if el := time.Since(start); status != 200 || el < 50*time.Millisecond {
		t.Fatalf("status %d after %s, want 200 after at least 50ms", status, el)
	}
}

func TestFaultCursor(t *testing.T) {
	h := newHarness(t, Options{Issues: 50})
	h.revealAll()
	p := h.page(map[string]any{"first": 5, "orderBy": map[string]any{"field": "CREATED_AT"}})
	if err := h.sim.SetFaults("cursor:count=1"); err != nil {
		t.Fatal(err)
	}
	status, r := h.do(StandardQuery, map[string]any{"first": 5, "orderBy": map[string]any{"field": "CREATED_AT"}, "after": *p.PageInfo.EndCursor})
	if status != 200 || len(r.Errors) != 1 || !isBadAfter(r.Errors[0].Message, r.Errors[0].Extensions.Code) {
		t.Fatalf("status %d response %+v", status, r)
	}
	// The old cursor stays invalid; a fresh walk works.
	if got := h.walk(5, nil, map[string]any{"field": "CREATED_AT"}); len(got) != 50 {
		t.Fatalf("fresh walk after invalidation: %d issues", len(got))
	}
}

func TestFaultTriggers(t *testing.T) {
	tests := []struct {
		spec string
		want []int
	}{
		{"429:every=3", []int{200, 200, 429, 200, 200, 429, 200}},
		{"429:every=3,burst=2", []int{200, 200, 429, 429, 200, 429, 429}},
		{"5xx:count=2", []int{503, 503, 200, 200}},
		{"5xx:code=500,every=2,count=1;429:count=1", []int{429, 500, 200, 200}},
		{"", []int{200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			h := newHarness(t, Options{Issues: 10, Faults: tt.spec})
			if got := statuses(h, len(tt.want)); !slices.Equal(got, tt.want) {
				t.Fatalf("statuses %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	run := func(seed int64) []int {
		h := newHarness(t, Options{Issues: 10, Seed: seed, Faults: "5xx:p=0.3"})
		return statuses(h, 40)
	}
	a, b := run(1), run(1)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different fault sequences:\n%v\n%v", a, b)
	}
	n := 0
	for _, s := range a {
		if s == 503 {
			n++
		}
	}
	if n == 0 || n == len(a) {
		t.Fatalf("p=0.3 fired %d of %d times", n, len(a))
	}
}

func TestFaultSpecErrors(t *testing.T) {
	for _, spec := range []string{"bogus", "graphql_ratelimit:retry_after=1s", "429:p=2", "429:every=0", "slow:code=500", "5xx:code=404", "429:retry_after=soon", "429:every", "gateway:code=503", "expire200:code=500"} {
		t.Run(spec, func(t *testing.T) {
			if _, err := New(Options{Issues: 1, Faults: spec}); err == nil {
				t.Fatalf("spec %q accepted", spec)
			}
		})
	}
}
