package wiz

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

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

// BenchmarkIssuesPage measures one 500-issue page through the client (token cache, limiter,
// retry transport, GraphQL library, typed decode and raw copies).
func BenchmarkIssuesPage(b *testing.B) {
	sim := benchSim(b)
	c, err := New(context.Background(), simOptions(sim))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	order := &IssueOrder{Field: "CREATED_AT", Direction: "ASC"}
	b.ReportAllocs()
	for b.Loop() {
		page, err := c.Issues(ctx, IssueFilter{}, order, 500, "")
		if err != nil || len(page.Issues) != 500 {
			b.Fatalf("page: %d issues, %v", len(page.Issues), err)
		}
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
	body, _ := json.Marshal(map[string]any{"query": IssuesQuery, "operationName": "IssuesTable",
		"variables": issuesVariables(IssueFilter{}, &IssueOrder{Field: "CREATED_AT", Direction: "ASC"}, 500, "")})
	hc := &http.Client{}
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
}

// BenchmarkDecodePage measures decodeResponse alone on a captured 500-issue response.
func BenchmarkDecodePage(b *testing.B) {
	sim := benchSim(b)
	c, err := New(context.Background(), simOptions(sim))
	if err != nil {
		b.Fatal(err)
	}
	data, err := c.exec(context.Background(), "IssuesTable", IssuesQuery,
		issuesVariables(IssueFilter{}, &IssueOrder{Field: "CREATED_AT", Direction: "ASC"}, 500, ""))
	if err != nil {
		b.Fatal(err)
	}
	body := append(append([]byte(`{"data":`), data...), '}')
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if page, err := decodeResponse(body, 500); err != nil || len(page.Issues) != 500 {
			b.Fatal(err)
		}
	}
}
