package wiz

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// TestIssueContextAgainstSim gathers the context of a threat detection and of another issue from
// the simulator: the resource behind each, its project teams and its evidence of the right kind.
func TestIssueContextAgainstSim(t *testing.T) {
	sim := startSim(t, wizsim.Options{})
	c, err := New(context.Background(), simOptions(sim))
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]wizsim.IssueState{}
	for _, st := range sim.Snapshot() {
		if _, ok := byType[st.Type]; !ok && len(st.ProjectIDs) > 0 {
			byType[st.Type] = st
		}
	}
	tests := []struct {
		typ, kind string
	}{
		{wizdef.TypeThreatDetection, EvidenceThreatDetection},
		{wizdef.TypeCloudConfiguration, EvidenceGraph},
		{wizdef.TypeToxicCombination, EvidenceGraph},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			st, ok := byType[tt.typ]
			if !ok {
				t.Fatalf("the simulator has no %s issue with a project", tt.typ)
			}
			got, err := c.IssueContext(context.Background(), st.ID)
			if err != nil {
				t.Fatalf("IssueContext: %v", err)
			}
			if len(got.Errors) > 0 {
				t.Fatalf("lookups failed: %v", got.Errors)
			}
			if got.IssueID != st.ID || got.IssueType != tt.typ {
				t.Fatalf("issue %s %s, want %s %s", got.IssueID, got.IssueType, st.ID, tt.typ)
			}
			var res struct {
				ID         string         `json:"id"`
				Properties map[string]any `json:"properties"`
			}
			if err := json.Unmarshal(got.Resource, &res); err != nil || res.ID == "" {
				t.Fatalf("resource %s: %v", got.Resource, err)
			}
			if res.Properties["providerUniqueId"] != got.ResourceProviderID {
				t.Fatalf("resource %v is not the issue's %s", res.Properties["providerUniqueId"], got.ResourceProviderID)
			}
			if len(got.Projects) != len(st.ProjectIDs) {
				t.Fatalf("%d projects, want %d", len(got.Projects), len(st.ProjectIDs))
			}
			for _, p := range got.Projects {
				if !p.Found || len(p.ProjectOwners) == 0 || p.ProjectOwners[0].Email == "" {
					t.Fatalf("project %+v: no team", p)
				}
			}
			if got.EvidenceKind != tt.kind || string(got.Evidence) == "null" {
				t.Fatalf("evidence %s %s, want kind %s", got.EvidenceKind, got.Evidence, tt.kind)
			}
			if want := 2 + len(got.Projects); tt.kind == EvidenceGraph && got.Requests != want+1 || tt.kind != EvidenceGraph && got.Requests != want {
				t.Fatalf("%d requests", got.Requests)
			}
		})
	}

	_, err = c.IssueContext(context.Background(), "00000000-0000-4000-8000-000000000000")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown issue: %v, want ErrNotFound", err)
	}
}

// TestSimRefusesMalformedContextQueries holds the simulator to Wiz's validation: graphSearch
// without its required projectId, and a field the schema does not have, are refused.
func TestSimRefusesMalformedContextQueries(t *testing.T) {
	sim := startSim(t, wizsim.Options{Issues: 10})
	c, err := New(context.Background(), simOptions(sim))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query string
		vars        map[string]any
		want        string
	}{
		{"no projectId", strings.Replace(ResourceQuery, "projectId: $projectId, ", "", 1),
			map[string]any{"fetchTotalCount": false, "projectId": "*"}, "projectId"},
		{"unknown field", strings.Replace(ProjectTeamQuery, "teamMemberCount", "teamMemberCount\n      budget", 1),
			map[string]any{}, "budget"},
		{"query without type", ResourceQuery,
			map[string]any{"fetchTotalCount": false, "projectId": "*", "query": map[string]any{"select": true}}, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := "GraphSearch"
			if strings.Contains(tt.query, "ProjectsTable") {
				op = "ProjectsTable"
			}
			_, err := c.exec(context.Background(), op, tt.query, tt.vars)
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want a bad request naming %q", err, tt.want)
			}
		})
	}
}
