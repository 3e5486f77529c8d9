package app

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// TestPushBurstAtWizPace measures issue 19's push target: 5,000 distinct pushes against a
// simulator enforcing 3 requests/s, timed from the first push until every issue is delivered, with
// the GraphQL requests counted. It takes about half a minute, so it runs only when asked:
//
//	WIZFETCH_PUSH_BURST=5000 go test -run TestPushBurstAtWizPace -v ./pkg/app/
func TestPushBurstAtWizPace(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv("WIZFETCH_PUSH_BURST"), &n); err != nil || n <= 0 {
		t.Skip("set WIZFETCH_PUSH_BURST=N to push N issues at 3 requests/s")
	}
	const rate = 3
	sim := startSim(t, wizsim.Options{Issues: 1, Seed: 20, Rate: rate}) // a real clock: the rate limit refills
	dir := t.TempDir()
	cfg := testConfig(sim, dir, 200)
	cfg.Instances[0].Fetch.Enabled = false
	cfg.Instances[0].Wiz.RequestsPerSecond = rate
	cfg.Sinks[0].MaxPending = 2 * n
	cfg.Server.Webhook.BearerToken = "wiz-push-token"
	ids := make([]string, n)
	for i := range ids {
		id, err := sim.AddIssue(wizsim.NewIssue{Type: "THREAT_DETECTION", Severity: "CRITICAL"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	d := startDaemon(t, cfg, "")
	jsonl := filepath.Join(dir, "incidents.jsonl")
	sim.ResetStats()

	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan string)
	var pushedIn time.Duration
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				if code := pushTo(t, d.url, "wiz-push-token", id); code != http.StatusAccepted {
					t.Errorf("push %s = %d", id, code)
				}
			}
		}()
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	pushedIn = time.Since(start)
	for countLines(jsonl) < n {
		if time.Since(start) > time.Duration(n)*time.Millisecond*20+20*time.Second {
			logs := d.logs.String()
			t.Fatalf("%d of %d events after 10 minutes; the daemon's last log lines:\n%s", countLines(jsonl), n, logs[max(0, len(logs)-4000):])
		}
		time.Sleep(20 * time.Millisecond)
	}
	wall := time.Since(start)
	time.Sleep(200 * time.Millisecond) // nothing more may come
	events := readJSONL(t, jsonl)
	seen := map[string]int{}
	for _, ev := range events {
		seen[ev.IssueID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("issue %s delivered %d times", id, seen[id])
		}
	}
	st := sim.Stats()
	ok := st.Requests[wizsim.EndpointGraphQL][http.StatusOK]
	budget := time.Duration(1.2*float64((n+99)/100)/rate*float64(time.Second)) + 10*time.Second
	t.Logf("%d pushes (sent in %s): all delivered once in %s (target %s); GraphQL requests %d answered, %v by status; throttled %d; push lines %d",
		n, pushedIn.Round(time.Millisecond), wall.Round(time.Millisecond), budget, ok, st.Requests[wizsim.EndpointGraphQL], st.Throttled,
		strings.Count(d.logs.String(), `"msg":"push processed"`))
	if ok > (n+99)/100+10 {
		t.Errorf("%d GraphQL requests, target at most %d", ok, (n+99)/100+10)
	}
	if wall > budget {
		t.Errorf("wall time %s over the target %s", wall, budget)
	}
}
