package wiz

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodePage feeds arbitrary response data (the value of "data") to the page decoder the client
// uses (decodeResponse): API data must never crash the daemon, whatever Wiz (or a proxy in between)
// sends. Every decoded issue must carry its raw bytes, and its timestamps as sent.
func FuzzDecodePage(f *testing.F) {
	for _, name := range []string{"page_mixed.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"issues":{"nodes":null,"pageInfo":{"hasNextPage":false}}}`))
	f.Add([]byte(`{"issues":{"nodes":[{"id":"x","createdAt":"2023-08-23T07:56:09.903743Z","sourceRule":null}],"pageInfo":{"hasNextPage":true,"endCursor":"c"}}}`))
	f.Add([]byte(`{"issues":{"nodes":[{"createdAt":12,"projects":{"a":1},"entitySnapshot":[]}]}}`))
	f.Add([]byte(`{"issues":{"nodes":[{"id":"y","sourceRule":null,"sourceRules":[{"__typename":"Control","id":"wc-id-1","name":"n"},null]}],"pageInfo":{"hasNextPage":false}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		page, err := decodeResponse(append(append([]byte(`{"data":`), data...), '}'))
		if err != nil {
			if _, ok := errors.AsType[*APIError](err); !ok {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(page.Issues) != len(page.Raw) {
			t.Fatalf("%d issues but %d raw nodes", len(page.Issues), len(page.Raw))
		}
		if page.HasNextPage && page.EndCursor == "" {
			t.Fatal("hasNextPage without a cursor was accepted")
		}
		if page.NullNodes < 0 || page.NodesNull && (page.NullNodes > 0 || len(page.Issues) > 0) {
			t.Fatalf("null nodes %d, nodes null %v, %d issues", page.NullNodes, page.NodesNull, len(page.Issues))
		}
		for i := range page.Issues {
			is := &page.Issues[i]
			// Defects never panics, and an issue it passes is one an incident can be keyed by.
			if is.Defects() == nil && (is.ID == "" || len(is.ID) > MaxIDBytes || is.CreatedAt.IsZero() || is.Status == "") {
				t.Fatalf("issue %q passes Defects", is.ID)
			}
			if s := is.SentCreatedAt(); s != "" {
				if at, err := time.Parse(time.RFC3339Nano, s); err != nil || !at.Equal(is.CreatedAt) {
					t.Fatalf("createdAt kept as sent %q does not give %v (%v)", s, is.CreatedAt, err)
				}
			}
		}
	})
}
