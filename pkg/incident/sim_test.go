package incident_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// TestSimIncidentsNameTheListedRule reads the simulator through the client's issues query and maps
// every issue: an issue whose deprecated sourceRule is null and whose rule is only in sourceRules
// (WIZ_API.md §10) must still be named, and detailed, after that rule.
func TestSimIncidentsNameTheListedRule(t *testing.T) {
	if !strings.Contains(wiz.IssuesQuery, "sourceRules") {
		t.Fatal("wiz.IssuesQuery does not select sourceRules")
	}
	// The clock jumps 10 minutes ahead once the data is generated, so every issue is visible.
	var ahead atomic.Bool
	sim, err := wizsim.New(wizsim.Options{Issues: 300, Seed: 11, Now: func() time.Time {
		if ahead.Load() {
			return time.Now().Add(10 * time.Minute)
		}
		return time.Now()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ahead.Store(true)
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := wiz.New(ctx, wiz.Options{APIURL: sim.URL(), AuthURL: sim.TokenURL(), Audience: wiz.AudienceCognito,
		ClientID: "wizsim-client", ClientSecret: "wizsim-secret", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := incident.NewMapper(config.Mapping{}, sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	listOnly, after := 0, ""
	for {
		page, err := client.Issues(ctx, wiz.IssueFilter{}, &wiz.IssueOrder{Field: "CREATED_AT", Direction: "ASC"}, 200, after)
		if err != nil {
			t.Fatal(err)
		}
		for i := range page.Issues {
			raw := string(page.Raw[i])
			rule := gjson.Get(raw, "sourceRules.0")
			if gjson.Get(raw, "sourceRule").Type != gjson.Null || !rule.Exists() {
				continue
			}
			listOnly++
			is := &page.Issues[i]
			inc := mapper.Map(is, page.Raw[i], "Wiz Issue")
			if want := rule.Get("name").String() + " - " + is.ID; inc.Name != want {
				t.Errorf("issue %s named %q, want %q", is.ID, inc.Name, want)
			}
			if want := rule.Get("description").String(); inc.Details != want {
				t.Errorf("issue %s details %q, want %q", is.ID, inc.Details, want)
			}
		}
		if !page.HasNextPage {
			break
		}
		after = page.EndCursor
	}
	if listOnly == 0 {
		t.Fatal("no simulated issue had its rule only in sourceRules")
	}
}
