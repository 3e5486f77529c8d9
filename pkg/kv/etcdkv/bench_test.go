package etcdkv_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdkv"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
)

// BenchmarkPageCommit commits what the pipeline commits for one page of 200 issues with two sinks,
// as the fenced leader of a real election, on an embedded etcd with fsync on: 200 dedup lookups of
// absent keys, then per issue a 4 KiB incident document, a ~60-byte index entry and a 4 KiB outbox
// event per sink, and the feed checkpoint, in one Update.
//
//	go test -run '^$' -bench PageCommit -benchtime 20x ./pkg/kv/etcdkv/
func BenchmarkPageCommit(b *testing.B) {
	const issues, sinks = 200, 2
	srv := etcdtest.Start(b)
	cli := srv.Client(b)
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sess.Close() })
	elec := concurrency.NewElection(sess, "/bench/leader/")
	if err := elec.Campaign(context.Background(), "bench"); err != nil {
		b.Fatal(err)
	}
	db := open(b, etcdkv.Options{
		Client: cli,
		Prefix: "/bench/",
		Fence:  func() (string, int64, bool) { return elec.Key(), elec.Rev(), true },
	})
	if err := db.Update(func(tx kv.Tx) error {
		for _, name := range []string{"incidents", "index", "dedup", "checkpoints", "outbox"} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		for s := range sinks {
			if _, err := tx.Bucket([]byte("outbox")).CreateBucketIfNotExists(fmt.Appendf(nil, "sink-%d", s)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	// The pipeline maps issues before it commits; the documents are made outside the timing.
	docs, events := make([][][]byte, 4), make([][][]byte, 4)
	for p := range docs {
		for i := range issues {
			doc := incidentDoc(p, i)
			docs[p] = append(docs[p], doc)
			events[p] = append(events[p], fmt.Appendf(nil, `{"event_id":"%s","kind":"created","incident":%s}`, issueID(p, -i), doc))
		}
	}
	b.ResetTimer()
	start := time.Now()
	var inFn time.Duration
	for page := 0; b.Loop(); page++ {
		err := db.Update(func(tx kv.Tx) error {
			fnStart := time.Now()
			defer func() { inFn += time.Since(fnStart) }()
			dedup, incidents, index := tx.Bucket([]byte("dedup")), tx.Bucket([]byte("incidents")), tx.Bucket([]byte("index"))
			outbox := tx.Bucket([]byte("outbox"))
			for i := range issues {
				if dedup.Get(issueID(page, i)) != nil {
					return fmt.Errorf("issue %d/%d seen before", page, i)
				}
			}
			for i := range issues {
				id := issueID(page, i)
				doc := docs[page%len(docs)][i]
				if err := incidents.Put(id, doc); err != nil {
					return err
				}
				if err := index.Put(fmt.Appendf(nil, "2026-05-01T10:%02d:%02d.%06dZ/%s", page%60, i%60, i, id), id); err != nil {
					return err
				}
				if err := dedup.Put(id, []byte("1")); err != nil {
					return err
				}
				for s := range sinks {
					sink := outbox.Bucket(fmt.Appendf(nil, "sink-%d", s))
					seq, err := sink.NextSequence()
					if err != nil {
						return err
					}
					if err := sink.Put(fmt.Appendf(nil, "%016x", seq), events[page%len(events)][i]); err != nil {
						return err
					}
				}
			}
			return tx.Bucket([]byte("checkpoints")).Put([]byte("default/created"), fmt.Appendf(nil, `{"watermark":"2026-05-01T10:00:%02dZ","page":%d}`, page%60, page))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N*issues)/elapsed.Seconds(), "issues/s")
	b.ReportMetric(float64(inFn.Milliseconds())/float64(b.N), "ms-in-tx/op")
	b.ReportMetric(float64((elapsed-inFn).Milliseconds())/float64(b.N), "ms-commit/op")
}

func issueID(page, i int) []byte {
	return fmt.Appendf(nil, "%08x-%04x-4%03x-a%03x-%012x", page*7919+i, i, page%4096, i%4096, page*1000003+i*7)
}

// incidentDoc is a ~4 KiB incident as JSON, as varied as real ones: field names and phrases repeat
// across incidents, ids, resource paths and timestamps do not.
func incidentDoc(page, i int) []byte {
	r := rand.New(rand.NewPCG(uint64(page), uint64(i)))
	hex := func(n int) string {
		b := make([]byte, n)
		for j := range b {
			b[j] = "0123456789abcdef"[r.IntN(16)]
		}
		return string(b)
	}
	var sb strings.Builder
	id := issueID(page, i)
	fmt.Fprintf(&sb, `{"name":"Publicly exposed VM with critical vulnerability - %s","type":"Wiz Issue","severity":%d,`, id, r.IntN(5))
	fmt.Fprintf(&sb, `"occurred":"2026-05-01T10:%02d:%02d.%06dZ","dbotMirrorId":"%s","labels":[`, page%60, i%60, r.IntN(1e6), id)
	for l := range 8 {
		fmt.Fprintf(&sb, `{"type":"label-%d","value":"%s"},`, l, hex(12))
	}
	sb.WriteString(`{"type":"end","value":"end"}],"customFields":{`)
	for f := 0; sb.Len() < 3800; f++ {
		fmt.Fprintf(&sb, `"wizfield%d":"/subscriptions/%s/resourceGroups/rg-%s/providers/Microsoft.Compute/virtualMachines/vm-%s",`,
			f, hex(32), hex(6), hex(8))
	}
	fmt.Fprintf(&sb, `"last":"x"},"rawJSON":"{\"id\":\"%s\"}"}`, id)
	return []byte(sb.String())
}
