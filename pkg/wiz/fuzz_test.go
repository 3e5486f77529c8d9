package wiz

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodePage feeds arbitrary response data to the page decoder: API data must never crash the
// daemon, whatever Wiz (or a proxy in between) sends. Every decoded issue must carry its raw bytes.
func FuzzDecodePage(f *testing.F) {
	for _, name := range []string{"page_mixed.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"issues":{"nodes":null,"pageInfo":{"hasNextPage":false}}}`))
	f.Add([]byte(`{"issues":{"nodes":[{"id":"x","createdAt":"2023-08-23T07:56:09.903743Z","sourceRule":null}],"pageInfo":{"hasNextPage":true,"endCursor":"c"}}}`))
	f.Add([]byte(`{"issues":{"nodes":[{"createdAt":12,"projects":{"a":1},"entitySnapshot":[]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		page, err := decodePage(data, 1)
		if err != nil {
			return
		}
		if len(page.Issues) != len(page.Raw) {
			t.Fatalf("%d issues but %d raw nodes", len(page.Issues), len(page.Raw))
		}
		if page.HasNextPage && page.EndCursor == "" {
			t.Fatal("hasNextPage without a cursor was accepted")
		}
	})
}
