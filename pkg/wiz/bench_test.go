package wiz

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// benchPageSizes are the page sizes measured: wizfetch's default and Wiz's largest.
var benchPageSizes = []int{200, MaxPageSize}

// benchSim starts a simulator with enough issues for full 500-issue pages.
func benchSim(b *testing.B) *wizsim.Server {
	b.Helper()
	sim, err := wizsim.New(wizsim.Options{Issues: 1000, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	return sim
}

// benchOrder is the order the benchmarks page in.
var benchOrder = &IssueOrder{Field: "CREATED_AT", Direction: "ASC"}

// BenchmarkIssuesPage measures one page through the client (token cache, limiter, retry
// transport, request payload, decode and raw copies).
func BenchmarkIssuesPage(b *testing.B) {
	sim := benchSim(b)
	c, err := New(context.Background(), simOptions(sim))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, size := range benchPageSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, err := c.Issues(ctx, IssueFilter{}, benchOrder, size, "")
				if err != nil || len(page.Issues) != size {
					b.Fatalf("page: %d issues, %v", len(page.Issues), err)
				}
			}
		})
	}
}

// BenchmarkBarePage is the baseline: the same request with net/http, body read, no decoding.
func BenchmarkBarePage(b *testing.B) {
	sim := benchSim(b)
	c, err := New(context.Background(), simOptions(sim))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := c.tokens.Token(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{}
	for _, size := range benchPageSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			body, _ := json.Marshal(map[string]any{"query": IssuesQuery, "operationName": issuesOp,
				"variables": issuesVariables(IssueFilter{}, benchOrder, size, "")})
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, sim.GraphQLURL(), bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != 200 || n < 1000 {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}

// BenchmarkDecodePage measures decodeResponse alone on a captured response.
func BenchmarkDecodePage(b *testing.B) {
	sim := benchSim(b)
	c, err := New(context.Background(), simOptions(sim))
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range benchPageSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			data, err := c.exec(context.Background(), issuesOp, IssuesQuery, issuesVariables(IssueFilter{}, benchOrder, size, ""))
			if err != nil {
				b.Fatal(err)
			}
			body := append(append([]byte(`{"data":`), data...), '}')
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if page, err := decodeResponse(body); err != nil || len(page.Issues) != size {
					b.Fatal(err)
				}
			}
		})
	}
}
