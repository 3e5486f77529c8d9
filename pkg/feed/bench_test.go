package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// pageSource serves endless fresh pages of copies of one real-looking issue.
type pageSource struct {
	b    *testing.B // generation is not what is measured: the timer stops meanwhile
	raw  []byte
	base time.Time
	n    int
}

func (p *pageSource) Issues(_ context.Context, _ wiz.IssueFilter, _ *wiz.IssueOrder, first int, _ string) (*wiz.Page, error) {
	p.b.StopTimer()
	defer p.b.StartTimer()
	page := &wiz.Page{HasNextPage: true, EndCursor: "c"}
	var tmpl map[string]any
	if err := json.Unmarshal(p.raw, &tmpl); err != nil {
		return nil, err
	}
	for i := 0; i < first; i++ {
		p.n++
		tmpl["id"] = fmt.Sprintf("00000000-0000-4000-8000-%012d", p.n)
		tmpl["createdAt"] = p.base.Add(time.Duration(p.n) * time.Millisecond).Format("2006-01-02T15:04:05.000000Z")
		raw, _ := json.Marshal(tmpl)
		var is wiz.Issue
		if err := json.Unmarshal(raw, &is); err != nil {
			return nil, err
		}
		page.Issues = append(page.Issues, is)
		page.Raw = append(page.Raw, raw)
	}
	return page, nil
}

// BenchmarkFetchPage measures one feed page of 200 issues end to end inside wizfetch: classify, map,
// encode, decide and commit (with fsync, as in production), excluding the HTTP fetch and JSON decode.
func BenchmarkFetchPage(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("fsync=%v", sync), func(b *testing.B) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "issues", "control-toxic-combination.json"))
			if err != nil {
				b.Fatal(err)
			}
			st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			src := &pageSource{b: b, raw: raw, base: time.Now().Add(-time.Hour)}
			f, err := New(Options{
				Instance: "default", Name: Created, Sinks: []string{"file"}, Source: src, Store: st,
				Fetch:      config.Fetch{MaxPerFetch: 200, Lookback: config.Duration(24 * time.Hour), Overlap: config.Duration(5 * time.Minute)},
				Classifier: mustClassifier(b), Mapper: mustMapper(b),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := f.Fetch(context.Background())
				if err != nil || res.Created != 200 {
					b.Fatalf("fetch: %+v %v", res, err)
				}
			}
			b.ReportMetric(float64(b.N*200)/b.Elapsed().Seconds(), "issues/s")
		})
	}
}
