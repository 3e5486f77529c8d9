package wizsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestStartServeClose(t *testing.T) {
	sim, err := New(Options{Issues: 30, Seed: 30, Now: func() time.Time { return time.Now().Add(maxLag) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sim.URL(), "http://127.0.0.1:") || sim.TokenURL() != sim.URL()+"/oauth/token" || sim.GraphQLURL() != sim.URL()+"/graphql" {
		t.Fatalf("URLs %s %s %s", sim.URL(), sim.TokenURL(), sim.GraphQLURL())
	}
	resp, err := http.PostForm(sim.TokenURL(), goodForm("wiz-api"))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, sim.GraphQLURL(), strings.NewReader(`{"query":"{ issuesV2(first: 500) { nodes { id } } }"}`))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Data struct {
			IssuesV2 struct{ Nodes []struct{ ID string } } `json:"issuesV2"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || len(out.Data.IssuesV2.Nodes) != 30 {
		t.Fatalf("page: %v, %d nodes", err, len(out.Data.IssuesV2.Nodes))
	}
	resp, err = http.Get(sim.URL() + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.TokensIssued != 1 || st.Requests[EndpointGraphQL][200] != 1 || st.Requests[EndpointToken][200] != 1 || st.IssuesServed != 30 {
		t.Fatalf("stats endpoint: %v %+v", err, st)
	}
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.PostForm(sim.TokenURL(), goodForm("wiz-api")); err == nil {
		t.Fatal("still serving after Close")
	}
	if err := sim.Start("127.0.0.1:0"); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

func TestStatsCounters(t *testing.T) {
	h := newHarness(t, Options{Issues: 10, Faults: "429:count=1"})
	h.raw(h.token, smallQuery, nil) // 429 fault
	h.raw(h.token, smallQuery, nil) // 200
	h.raw("bad", smallQuery, nil)   // 401
	h.postToken(url.Values{})       // 400
	st := h.sim.Stats()
	if st.Requests[EndpointGraphQL][429] != 1 || st.Requests[EndpointGraphQL][200] != 1 || st.Requests[EndpointGraphQL][401] != 1 ||
		st.Requests[EndpointToken][200] != 1 || st.Requests[EndpointToken][400] != 1 || st.TokensIssued != 1 || st.Throttled != 1 || st.Pages != 1 {
		t.Fatalf("stats %+v", st)
	}
	st.Requests[EndpointGraphQL][200] = 99 // a copy
	if h.sim.Stats().Requests[EndpointGraphQL][200] != 1 {
		t.Fatal("Stats returned shared maps")
	}
	h.sim.ResetStats()
	if st := h.sim.Stats(); len(st.Requests) != 0 || st.TokensIssued != 0 || st.Throttled != 0 {
		t.Fatalf("after reset %+v", st)
	}
}

func TestLiveMode(t *testing.T) {
	sim, err := New(Options{Issues: 200, Seed: 31, Live: 200})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, st := range sim.Snapshot() {
		before[st.ID] = st.Status
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		snap := sim.Snapshot()
		changed := 0
		for _, st := range snap {
			if old, ok := before[st.ID]; ok && old != st.Status {
				changed++
			}
		}
		if len(snap) > 205 && changed > 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live mode: %d issues, %d changed after 20s", len(snap), changed)
		}
		time.Sleep(20 * time.Millisecond) // polling with a generous deadline, not a timing assertion
	}
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	a := len(sim.Snapshot())
	b := len(sim.Snapshot())
	if a != b {
		t.Fatal("live goroutine still running after Close")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{Auth: "okta"}, {Issues: -1}, {Rate: -1}, {Days: -2}} {
		if _, err := New(o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}
