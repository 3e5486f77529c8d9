package writeback

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// simEnv is an in-process simulator, a client for it, and one open issue id per issue type.
type simEnv struct {
	sim    *wizsim.Server
	client *wiz.Client
	byType map[string][]string // issue type -> ids, createdAt order
}

// newSimEnv starts a simulator whose clock is 10 minutes past generation, so that every
// generated issue is visible (late visibility is under 5 minutes).
func newSimEnv(t *testing.T) *simEnv {
	t.Helper()
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(base.UnixNano())
	sim, err := wizsim.New(wizsim.Options{Issues: 200, Seed: 8, Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }})
	if err != nil {
		t.Fatalf("wizsim.New: %v", err)
	}
	now.Store(base.Add(10 * time.Minute).UnixNano())
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("wizsim.Start: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := wiz.New(ctx, wiz.Options{
		APIURL: sim.GraphQLURL(), AuthURL: sim.TokenURL(), Audience: wiz.AudienceCognito,
		ClientID: "wizsim-client", ClientSecret: "wizsim-secret", Version: "test", RetryFor: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("wiz.New: %v", err)
	}
	env := &simEnv{sim: sim, client: c, byType: map[string][]string{}}
	for _, is := range sim.Snapshot() {
		if is.Status == "OPEN" {
			env.byType[is.Type] = append(env.byType[is.Type], is.ID)
		}
	}
	for _, typ := range wizdef.IssueTypes() {
		if len(env.byType[typ]) < 4 {
			t.Fatalf("the simulator has only %d open %s issues", len(env.byType[typ]), typ)
		}
	}
	return env
}

// status returns the simulator's status of id.
func (e *simEnv) status(t *testing.T, id string) string {
	t.Helper()
	for _, is := range e.sim.Snapshot() {
		if is.ID == id {
			return is.Status
		}
	}
	t.Fatalf("issue %s is not in the simulator", id)
	return ""
}
