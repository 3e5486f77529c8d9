package wiz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// MaxContextProjects bounds the project-team lookups of one IssueContext: an issue in more
// projects lists the rest without their team (ProjectTeam.Skipped), so one call costs a bounded
// number of requests from the tenant's shared budget.
const MaxContextProjects = 3

// Evidence kinds (IssueContext.EvidenceKind).
const (
	// EvidenceThreatDetection: Evidence is the issue's threatDetectionDetails.
	EvidenceThreatDetection = "threat_detection_details"
	// EvidenceGraph: Evidence is the graph entities the issue's evidenceQuery finds.
	EvidenceGraph = "graph_entities"
	// EvidenceNone: Wiz has no evidence for the issue.
	EvidenceNone = "none"
)

// IssueContext is what an analyst looks at next to an issue: the cloud resource behind it, the
// team of each of its projects and its evidence, gathered as the Wiz XSOAR pack's wiz-get-resource,
// wiz-get-project-team and wiz-get-issue-evidence commands gather them (contextquery.go).
// A lookup that fails after the issue was read leaves its part empty and says why in Errors, so
// the rest still reaches the caller.
type IssueContext struct {
	IssueID   string `json:"issue_id"`
	IssueType string `json:"issue_type"`
	// ResourceProviderID is the issue's entitySnapshot.providerId, the key of the resource lookup.
	ResourceProviderID string `json:"resource_provider_id,omitempty"`
	// Resource is the graph entity Wiz returns for it (id, name, type, properties, user metadata,
	// public exposures), or null when there is none.
	Resource json.RawMessage `json:"resource"`
	// Projects holds each project's owners and security champions.
	Projects []ProjectTeam `json:"projects"`
	// EvidenceKind says what Evidence holds (EvidenceThreatDetection, EvidenceGraph, EvidenceNone).
	EvidenceKind string          `json:"evidence_kind"`
	Evidence     json.RawMessage `json:"evidence"`
	// Errors names the lookups that failed, with the (redacted) reason.
	Errors []string `json:"errors,omitempty"`
	// Failures are those lookups' errors, classified (ErrPermission for a missing scope...), for
	// callers that report the context's health; not part of the JSON.
	Failures []error `json:"-"`
	// Requests is how many Wiz requests the context took.
	Requests int `json:"requests"`
}

// ProjectTeam is one project of an issue and the people Wiz lists for it.
type ProjectTeam struct {
	ID                string       `json:"id"`
	Name              string       `json:"name"`
	ProjectOwners     []TeamMember `json:"project_owners"`
	SecurityChampions []TeamMember `json:"security_champions"`
	// Found is false when the project search did not return this project.
	Found bool `json:"found"`
	// Skipped is true for projects beyond MaxContextProjects (not looked up).
	Skipped bool `json:"skipped,omitempty"`
}

// TeamMember is a project owner or security champion.
type TeamMember struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// evidenceIssue is the node of IssueEvidenceQuery.
type evidenceIssue struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	EntitySnapshot *struct {
		ProviderID string `json:"providerId"`
	} `json:"entitySnapshot"`
	Projects []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"projects"`
	EvidenceQuery          json.RawMessage `json:"evidenceQuery"`
	ThreatDetectionDetails json.RawMessage `json:"threatDetectionDetails"`
}

// IssueContext gathers the context of one issue: one issue read (IssueEvidenceQuery), then the
// resource (ResourceQuery, when the issue names one), each project's team (ProjectTeamQuery, at most
// MaxContextProjects) and, for an issue that is not a THREAT_DETECTION, its evidence graph
// (EvidenceGraphQuery, when the issue has an evidenceQuery). Every request goes through the
// client's token, rate limiter and retries. An unknown issue is ErrNotFound; a failure of the issue
// read fails the call, a failure of a later lookup is reported in IssueContext.Errors (but a
// cancelled ctx fails the call).
func (c *Client) IssueContext(ctx context.Context, issueID string) (*IssueContext, error) {
	issueID = strings.TrimSpace(issueID)
	if issueID == "" {
		return nil, &APIError{Class: ErrBadRequest, Op: "IssuesTable", Message: "empty issue id"}
	}
	data, err := c.exec(ctx, "IssuesTable", IssueEvidenceQuery, map[string]any{
		"filterBy": idListFilter{ID: []string{issueID}},
		"first":    1,
	})
	if err != nil {
		return nil, fmt.Errorf("issue context %s: %w", issueID, err)
	}
	var page struct {
		Issues *struct {
			Nodes []evidenceIssue `json:"nodes"`
		} `json:"issues"`
	}
	if err := json.Unmarshal(data, &page); err != nil {
		return nil, fmt.Errorf("issue context %s: %w", issueID, &APIError{Class: ErrTransient, Op: "IssuesTable", Message: "decode response: " + shorten(err.Error())})
	}
	var iss *evidenceIssue
	if page.Issues != nil {
		for i := range page.Issues.Nodes {
			if strings.EqualFold(page.Issues.Nodes[i].ID, issueID) {
				iss = &page.Issues.Nodes[i]
			}
		}
	}
	if iss == nil {
		return nil, fmt.Errorf("issue context %s: %w", issueID, ErrNotFound)
	}
	out := &IssueContext{IssueID: iss.ID, IssueType: iss.Type, Resource: json.RawMessage("null"),
		Projects: []ProjectTeam{}, EvidenceKind: EvidenceNone, Evidence: json.RawMessage("null"), Requests: 1}
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("issue context %s: %s: %w", issueID, what, err)
		}
		out.Errors = append(out.Errors, what+": "+err.Error())
		out.Failures = append(out.Failures, err)
		return nil
	}

	if iss.EntitySnapshot != nil && iss.EntitySnapshot.ProviderID != "" {
		out.ResourceProviderID = iss.EntitySnapshot.ProviderID
		out.Requests++
		res, err := c.resource(ctx, out.ResourceProviderID)
		if err != nil {
			if err := fail("resource", err); err != nil {
				return nil, err
			}
		} else if res != nil {
			out.Resource = res
		}
	}

	for i, p := range iss.Projects {
		team := ProjectTeam{ID: p.ID, Name: p.Name, ProjectOwners: []TeamMember{}, SecurityChampions: []TeamMember{}}
		if i >= MaxContextProjects {
			team.Skipped = true
			out.Projects = append(out.Projects, team)
			continue
		}
		out.Requests++
		if err := c.projectTeam(ctx, &team); err != nil {
			if err := fail("project team of "+p.Name, err); err != nil {
				return nil, err
			}
		}
		out.Projects = append(out.Projects, team)
	}

	switch {
	case iss.Type == wizdef.TypeThreatDetection:
		// The pack returns threatDetectionDetails for a threat detection, not its evidenceQuery.
		if isJSONValue(iss.ThreatDetectionDetails) {
			out.EvidenceKind, out.Evidence = EvidenceThreatDetection, iss.ThreatDetectionDetails
		}
	case isJSONValue(iss.EvidenceQuery):
		out.Requests++
		ev, err := c.evidenceGraph(ctx, iss.EvidenceQuery)
		if err != nil {
			if err := fail("evidence", err); err != nil {
				return nil, err
			}
		} else if ev != nil {
			out.EvidenceKind, out.Evidence = EvidenceGraph, ev
		}
	}
	return out, nil
}

// isJSONValue reports whether raw holds a JSON value other than null.
func isJSONValue(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}

// graphSearchAnswer is the part of a GraphSearch answer IssueContext reads.
type graphSearchAnswer struct {
	GraphSearch *struct {
		Nodes []struct {
			Entities []json.RawMessage `json:"entities"`
		} `json:"nodes"`
	} `json:"graphSearch"`
}

// resource runs the pack's get_resource by resource_id: the first entity of the first node, or
// nil when Wiz finds none.
func (c *Client) resource(ctx context.Context, providerID string) (json.RawMessage, error) {
	data, err := c.exec(ctx, "GraphSearch", ResourceQuery, map[string]any{
		"fetchPublicExposurePaths":   true,
		"fetchInternalExposurePaths": false,
		"fetchIssueAnalytics":        false,
		"first":                      50,
		"query": map[string]any{
			"type":   []string{"CLOUD_RESOURCE"},
			"select": true,
			"where":  map[string]any{"providerUniqueId": map[string]any{"EQUALS": []string{providerID}}},
		},
		"projectId":       "*",
		"fetchTotalCount": true,
		"quick":           true,
	})
	if err != nil {
		return nil, fmt.Errorf("get resource: %w", err)
	}
	var ans graphSearchAnswer
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, &APIError{Class: ErrTransient, Op: "GraphSearch", Message: "decode response: " + shorten(err.Error())}
	}
	if ans.GraphSearch == nil || len(ans.GraphSearch.Nodes) == 0 || len(ans.GraphSearch.Nodes[0].Entities) == 0 {
		return nil, nil
	}
	return ans.GraphSearch.Nodes[0].Entities[0], nil
}

// projectTeam runs the pack's get_project_team for team.Name and fills the owners and champions of
// the project whose id is team.ID. The pack takes the first search result; a name search can
// return another project whose name contains this one's, so the id decides here.
func (c *Client) projectTeam(ctx context.Context, team *ProjectTeam) error {
	if strings.TrimSpace(team.Name) == "" {
		return errors.New("the project has no name to search for")
	}
	data, err := c.exec(ctx, "ProjectsTable", ProjectTeamQuery, map[string]any{
		"first":              20,
		"filterBy":           map[string]any{"search": team.Name},
		"orderBy":            map[string]any{"field": "SECURITY_SCORE", "direction": "ASC"},
		"analyticsSelection": map[string]any{},
	})
	if err != nil {
		return fmt.Errorf("get project team: %w", err)
	}
	var ans struct {
		Projects *struct {
			Nodes []struct {
				ID                string       `json:"id"`
				Name              string       `json:"name"`
				ProjectOwners     []TeamMember `json:"projectOwners"`
				SecurityChampions []TeamMember `json:"securityChampions"`
			} `json:"nodes"`
		} `json:"projects"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return &APIError{Class: ErrTransient, Op: "ProjectsTable", Message: "decode response: " + shorten(err.Error())}
	}
	if ans.Projects == nil {
		return nil
	}
	for _, n := range ans.Projects.Nodes {
		if n.ID == team.ID || (team.ID == "" && n.Name == team.Name) {
			team.Found = true
			if n.ProjectOwners != nil {
				team.ProjectOwners = n.ProjectOwners
			}
			if n.SecurityChampions != nil {
				team.SecurityChampions = n.SecurityChampions
			}
			return nil
		}
	}
	return nil
}

// evidenceGraph runs the pack's evidence graph search with the issue's evidenceQuery and
// PULL_ISSUE_EVIDENCE_PARAMS: the entities of the first node, or nil when there are none.
func (c *Client) evidenceGraph(ctx context.Context, query json.RawMessage) (json.RawMessage, error) {
	data, err := c.exec(ctx, "GraphSearch", EvidenceGraphQuery, map[string]any{
		"quick":                      true,
		"fetchPublicExposurePaths":   false,
		"fetchInternalExposurePaths": false,
		"fetchIssueAnalytics":        false,
		"fetchLateralMovement":       false,
		"fetchKubernetes":            false,
		"first":                      5,
		"projectId":                  "*",
		"query":                      query,
		"fetchTotalCount":            false,
	})
	if err != nil {
		return nil, fmt.Errorf("get issue evidence: %w", err)
	}
	var ans graphSearchAnswer
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, &APIError{Class: ErrTransient, Op: "GraphSearch", Message: "decode response: " + shorten(err.Error())}
	}
	if ans.GraphSearch == nil || len(ans.GraphSearch.Nodes) == 0 || len(ans.GraphSearch.Nodes[0].Entities) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(ans.GraphSearch.Nodes[0].Entities)
	if err != nil {
		return nil, fmt.Errorf("encode evidence: %w", err)
	}
	return b, nil
}
