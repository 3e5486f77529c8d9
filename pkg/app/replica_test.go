package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/kv/etcdtest"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// hookReceiver records the issue ids of the created events a webhook sink delivers.
type hookReceiver struct {
	mu      sync.Mutex
	created map[string]int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev jsonlEvent
	if json.Unmarshal(body, &ev) == nil && ev.Kind == "created" {
		h.mu.Lock()
		h.created[ev.IssueID]++
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.created[id]
}

// haRole reads the ha part of a replica's /v1/status.
func haRole(t *testing.T, d *daemon) (role, replica, leader string) {
	t.Helper()
	code, body := d.get("/v1/status", "")
	if code != http.StatusOK {
		t.Fatalf("/v1/status: %d %s", code, body)
	}
	var doc struct {
		HA *struct {
			Role, Replica, Leader string
		} `json:"ha"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.HA == nil {
		t.Fatalf("/v1/status has no ha part: %v\n%s", err, body)
	}
	return doc.HA.Role, doc.HA.Replica, doc.HA.Leader
}

// Two replicas on one etcd: one leads, the other stands by and says who leads; the standby is
// ready, takes a Wiz push into the shared queue, which the leader turns into an incident, and
// serves the API that calls Wiz; when the leader stops, the standby takes over and its own pushes
// flow.
func TestStandbyTakesPushesAndTheLeadershipPasses(t *testing.T) {
	etcd := etcdtest.Start(t)
	clock := &simClock{}
	clock.set(time.Now())
	sim := startSim(t, wizsim.Options{Issues: 20, Seed: 22, Now: clock.now})
	hook := &hookReceiver{created: map[string]int{}}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)

	cfg := testConfig(sim, t.TempDir(), 200)
	cfg.Instances[0].Fetch.Enabled = false // push-only: every incident comes from a push
	cfg.Server.Webhook.BearerToken = "wiz-push-token"
	cfg.Store.Backend = config.StoreEtcd
	cfg.Store.Etcd = config.Etcd{Endpoints: etcd.Endpoints(), Prefix: "/wizfetch/replicas/", LeaseTTL: config.Duration(5 * time.Second)}
	sink := config.DefaultSink(config.SinkWebhook)
	sink.Name, sink.URL, sink.Secret = "soc", hookSrv.URL, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg.Sinks = []config.Sink{sink}

	a := startDaemon(t, cfg, "")
	waitFor(t, "a to lead", 20*time.Second, func() bool { role, _, _ := haRole(t, a); return role == "leader" })
	_, aID, _ := haRole(t, a)
	cfgB := *cfg
	b := startDaemon(t, &cfgB, "") // startDaemon waits for /readyz: a standby is ready
	waitFor(t, "b to see a lead", 20*time.Second, func() bool {
		role, _, leader := haRole(t, b)
		return role == "standby" && leader == aID
	})

	id, err := sim.AddIssue(wizsim.NewIssue{Type: "THREAT_DETECTION", Severity: "CRITICAL"})
	if err != nil {
		t.Fatal(err)
	}
	if code := pushTo(t, b.url, "wiz-push-token", id); code >= 300 {
		t.Fatalf("push to the standby: %d", code)
	}
	waitFor(t, "the standby's push delivered by the leader", 30*time.Second, func() bool { return hook.count(id) == 1 })

	// The standby serves the API that calls Wiz (here the issue's context) with its own clients.
	if code, body := b.get("/v1/issues/"+id+"/context", ""); code != http.StatusOK || !strings.Contains(string(body), id) {
		t.Fatalf("issue context on the standby: %d %s", code, body)
	}

	// A clean stop resigns: b leads at once, not after the lease.
	if _, err := a.stop(); err != nil {
		t.Fatalf("leader stopped with %v", err)
	}
	waitFor(t, "b to lead", 10*time.Second, func() bool { role, _, _ := haRole(t, b); return role == "leader" })
	id2, err := sim.AddIssue(wizsim.NewIssue{Type: "CLOUD_CONFIGURATION", Severity: "HIGH"})
	if err != nil {
		t.Fatal(err)
	}
	if code := pushTo(t, b.url, "wiz-push-token", id2); code >= 300 {
		t.Fatalf("push to the new leader: %d", code)
	}
	waitFor(t, "the new leader's push delivered", 30*time.Second, func() bool { return hook.count(id2) == 1 })
	if n := hook.count(id); n != 1 {
		t.Fatalf("the first push was delivered %d times after the hand-over", n)
	}
}
