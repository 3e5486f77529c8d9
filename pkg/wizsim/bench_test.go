package wizsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkIssuesPage200 measures serving the standard query at page size 200 through the handler
// (no network), walking a 20,000-issue data set in CREATED_AT order; it reports issues/s.
func BenchmarkIssuesPage200(b *testing.B) {
	benchPages(b, StandardQuery, 200)
}

// BenchmarkIssuesPage200Projected is the same with a selection that needs the field-by-field projection.
func BenchmarkIssuesPage200Projected(b *testing.B) {
	q := `query($first: Int, $after: String, $orderBy: IssueOrder) { issuesV2(first: $first, after: $after, orderBy: $orderBy) {
		nodes { __typename id createdAt status severity sourceRule { __typename ... on Control { id name } } projects { id } }
		pageInfo { hasNextPage endCursor } } }`
	benchPages(b, q, 200)
}

func benchPages(b *testing.B, query string, size int) {
	clock := newClock()
	sim, err := New(Options{Issues: 20000, Seed: 1, Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	clock.Advance(maxLag)
	h := sim.Handler()
	aud := audiences["cognito"]
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", bytes.NewBufferString("grant_type=client_credentials&client_id=wizsim-client&client_secret=wizsim-secret&audience="+aud))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
		b.Fatal(err)
	}
	var after any
	served := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vars := map[string]any{"first": size, "orderBy": map[string]any{"field": "CREATED_AT", "direction": "ASC"}, "after": after}
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		// Only the page info is decoded: the benchmark measures the server, not a client.
		out := rec.Body.Bytes()
		i0 := bytes.LastIndex(out, []byte(`"endCursor":`))
		if bytes.Contains(out[i0:], []byte(`"endCursor":null`)) {
			after = nil
		} else {
			cur := out[i0+len(`"endCursor":"`):]
			after = string(cur[:bytes.IndexByte(cur, '"')])
		}
		served += size
	}
	b.StopTimer()
	b.ReportMetric(float64(served)/b.Elapsed().Seconds(), "issues/s")
}
