package wiz

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// IssuesQuery is the issues read of WIZ_API.md §3, with the Wiz XSOAR pack's node selection so
// rawJSON and the mapper match XSOAR. Every read (pages and single issues) uses it.
//
// It selects the source rule twice: the deprecated sourceRule the pack reads, and the list
// sourceRules that replaces it (WIZ_API.md §10; Elastic's wiz integration 3.12.0 moved to it and
// 4.0.0 dropped sourceRule), with one selection so the two cannot drift. Wiz may leave sourceRule null
// and fill only the list; Issue.Rule prefers the list. The selection is shared as Go text rather than
// as a GraphQL named fragment, which would have to name the union type (a name no public client
// relies on).
const IssuesQuery = `query IssuesTable($filterBy: IssueFilters, $first: Int, $after: String, $orderBy: IssueOrder) {
  issues: issuesV2(filterBy: $filterBy, first: $first, after: $after, orderBy: $orderBy) {
    nodes {
      id
      sourceRule ` + sourceRuleSelection + `
      sourceRules ` + sourceRuleSelection + `
      type
      createdAt
      updatedAt
      dueAt
      resolvedAt
      resolutionReason
      statusChangedAt
      projects {
        id
        name
        slug
        businessUnit
        riskProfile {
          businessImpact
        }
        projectOwners {
          name
        }
        securityChampions {
          name
        }
      }
      status
      severity
      entitySnapshot {
        id
        type
        nativeType
        name
        status
        cloudPlatform
        cloudProviderURL
        providerId
        region
        resourceGroupExternalId
        subscriptionExternalId
        subscriptionName
        subscriptionTags
        tags
        externalId
      }
      serviceTickets {
        externalId
        name
        url
      }
      notes {
        id
        createdAt
        updatedAt
        text
        user {
          name
          email
        }
        serviceAccount {
          name
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}`

// sourceRuleSelection selects the IssueSourceRule union (Control | CloudEventRule |
// CloudConfigurationRule) as the pack does; sourceRule and sourceRules share it.
const sourceRuleSelection = `{
        __typename
        ... on Control {
          id
          name
          description
          resolutionRecommendation
          securitySubCategories {
            title
            category {
              name
              framework {
                name
              }
            }
          }
        }
        ... on CloudEventRule {
          id
          name
          description
          sourceType
          type
        }
        ... on CloudConfigurationRule {
          id
          name
          description
          remediationInstructions
          serviceType
        }
      }`

// MaxPageSize is the largest `first` Wiz accepts for issues.
const MaxPageSize = wizdef.MaxPageSize

// IssueFilter selects issues. Empty lists and nil times are left out of the request (Wiz answers
// HTTP 400 to an empty list). ID selects one issue and is meant to be used alone.
type IssueFilter struct {
	ID                 string
	Status             []string
	Severity           []string
	Type               []string
	ProjectIDs         []string
	CreatedAfter       *time.Time
	CreatedBefore      *time.Time
	StatusChangedAfter *time.Time
}

// IssueOrder is the issues sort order: Field CREATED_AT, STATUS_CHANGED_AT or SEVERITY;
// Direction ASC or DESC. Its Go name is also the GraphQL input type's name.
type IssueOrder struct {
	Field     string `json:"field"`
	Direction string `json:"direction"`
}

// Page is one page of issues.
type Page struct {
	// Issues are the decoded nodes, in the same order as Raw.
	Issues []Issue
	// Raw holds each node's exact JSON bytes, unknown fields included: a copy, the caller's.
	Raw []json.RawMessage
	// HasNextPage and EndCursor are the page's pageInfo.
	HasNextPage bool
	EndCursor   string
	// NullNodes counts the nodes that were JSON null (left out of Issues), and NodesNull says the
	// nodes list itself was null or missing: degraded answers the feeds log at WARN (WIZ_API.md §3).
	NullNodes int
	NodesNull bool
	// release gives back the page's slot of a PageSlots (Release); nil when it holds none.
	release func()
}

// IssueFilters is the wire form of IssueFilter (the GraphQL input type IssueFilters).
type IssueFilters struct {
	ID              string          `json:"id,omitempty"`
	Status          []string        `json:"status,omitempty"`
	Severity        []string        `json:"severity,omitempty"`
	Type            []string        `json:"type,omitempty"`
	Project         []string        `json:"project,omitempty"`
	CreatedAt       *DateRangeInput `json:"createdAt,omitempty"`
	StatusChangedAt *DateRangeInput `json:"statusChangedAt,omitempty"`
}

// DateRangeInput is a GraphQL date filter; times are RFC 3339 with microseconds, UTC.
type DateRangeInput struct {
	After  string `json:"after,omitempty"`
	Before string `json:"before,omitempty"`
}

// wireTimeLayout keeps Wiz's microsecond precision.
const wireTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// FormatTime renders t the way filters send it: UTC, RFC 3339 with 6 fractional digits.
func FormatTime(t time.Time) string { return t.UTC().Format(wireTimeLayout) }

// Wire returns the filter as sent in the filterBy variable.
func (f IssueFilter) Wire() IssueFilters {
	w := IssueFilters{
		ID:       f.ID,
		Status:   nonEmpty(f.Status),
		Severity: nonEmpty(f.Severity),
		Type:     nonEmpty(f.Type),
		Project:  nonEmpty(f.ProjectIDs),
	}
	if f.CreatedAfter != nil || f.CreatedBefore != nil {
		w.CreatedAt = &DateRangeInput{}
		if f.CreatedAfter != nil {
			w.CreatedAt.After = FormatTime(*f.CreatedAfter)
		}
		if f.CreatedBefore != nil {
			w.CreatedAt.Before = FormatTime(*f.CreatedBefore)
		}
	}
	if f.StatusChangedAfter != nil {
		w.StatusChangedAt = &DateRangeInput{After: FormatTime(*f.StatusChangedAfter)}
	}
	return w
}

// nonEmpty drops blank entries and returns nil for an empty result, so the field is omitted.
func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// issuesVariables builds the variables of IssuesQuery. Typed nil pointers stand for absent
// values (an untyped nil would panic in the GraphQL library's typed paths).
func issuesVariables(f IssueFilter, order *IssueOrder, first int, after string) map[string]any {
	var afterPtr *string
	if after != "" {
		afterPtr = &after
	}
	return map[string]any{
		"filterBy": f.Wire(),
		"first":    first,
		"after":    afterPtr,
		"orderBy":  order,
	}
}

// Issues fetches one page of issues: first (1..500) issues matching f in the given order (nil:
// Wiz's default), after the cursor (empty: from the start).
func (c *Client) Issues(ctx context.Context, f IssueFilter, order *IssueOrder, first int, after string) (*Page, error) {
	if first < 1 || first > MaxPageSize {
		return nil, &APIError{Class: ErrBadRequest, Op: "IssuesTable",
			Message: fmt.Sprintf("first must be between 1 and %d, got %d", MaxPageSize, first)}
	}
	return c.queryPage(ctx, issuesVariables(f, order, first, after))
}

// UndecodableError is Client.Issue's error for an issue whose node does not decode (decodeNode).
// It matches ErrTransient, for callers that decide on the issue's fields; a caller that records
// rejections (the push refetch) takes Issue, whose Defects say why, and Raw, and rejects it as the
// feeds reject such a node in a page.
type UndecodableError struct {
	Issue Issue
	Raw   json.RawMessage
}

// Error implements error.
func (e *UndecodableError) Error() string {
	return issuesOp + ": issue " + e.Issue.ID + " does not decode: " + e.Issue.decodeErr
}

// Is makes the error match ErrTransient.
func (e *UndecodableError) Is(target error) bool { return target == ErrTransient }

// Issue fetches one issue by id with the same query (first: 1, filterBy: {id}). It returns an
// error matching ErrNotFound when Wiz has no such issue, and an *UndecodableError when its node
// does not decode (decodeNode).
func (c *Client) Issue(ctx context.Context, id string) (*Issue, json.RawMessage, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, nil, &APIError{Class: ErrBadRequest, Op: "IssuesTable", Message: "empty issue id"}
	}
	page, err := c.Issues(ctx, IssueFilter{ID: id}, nil, 1, "")
	if err != nil {
		return nil, nil, fmt.Errorf("get issue %s: %w", id, err)
	}
	for i := range page.Issues {
		if strings.EqualFold(page.Issues[i].ID, id) {
			if page.Issues[i].decodeErr != "" {
				// A caller deciding on this one issue (its type, its status) must not see the
				// empty fields of a node that did not decode.
				return nil, nil, &UndecodableError{Issue: page.Issues[i], Raw: page.Raw[i]}
			}
			return &page.Issues[i], page.Raw[i], nil
		}
	}
	if len(page.Issues) > 0 {
		// Wiz answered with another issue: the filter was not applied; never return a wrong issue.
		return nil, nil, fmt.Errorf("get issue %s: %w (the response holds issue %s instead)", id, ErrNotFound, page.Issues[0].ID)
	}
	return nil, nil, fmt.Errorf("get issue %s: %w", id, ErrNotFound)
}
