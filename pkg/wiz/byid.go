package wiz

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// MaxIDsPerRequest is the longest id list IssuesByID sends in one request: one page of first's
// limit. Wiz documents no bound on IssueFilters.id, but a longer list could never be answered in
// one page (the simulator refuses it).
const MaxIDsPerRequest = MaxPageSize

// idListFilter is the filterBy variable of an id-list read: IssueFilters.id takes a list
// (WIZ_API.md §10), and nothing else is filtered, so an issue of any status comes back.
type idListFilter struct {
	ID []string `json:"id"`
}

// IssuesByID fetches the issues with the given ids with one issuesV2 request (the query of every
// read, filterBy: {id: [..]}, first: the number of distinct ids). Blank and repeated ids are
// dropped; more than MaxIDsPerRequest distinct ids is a bad request. It returns the issues found,
// each with its raw node, in Wiz's order; an id with no issue in the answer is not found (deleted or
// not visible). Only requested issues are returned: a node with another id means Wiz did not apply
// the filter, and is never passed off as one of them. Should Wiz answer in more than one page, the
// cursor is followed while ids are missing.
func (c *Client) IssuesByID(ctx context.Context, ids []string) ([]Issue, []json.RawMessage, error) {
	want := make(map[string]bool, len(ids))
	list := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		key := strings.ToLower(id)
		if id == "" || want[key] {
			continue
		}
		want[key] = true
		list = append(list, id)
	}
	if len(list) == 0 {
		return nil, nil, &APIError{Class: ErrBadRequest, Op: issuesOp, Message: "no issue id"}
	}
	if len(list) > MaxIDsPerRequest {
		return nil, nil, &APIError{Class: ErrBadRequest, Op: issuesOp,
			Message: fmt.Sprintf("%d issue ids, at most %d in one request", len(list), MaxIDsPerRequest)}
	}
	var (
		issues []Issue
		raws   []json.RawMessage
		after  *string
	)
	missing := len(list)
	for {
		page, err := c.queryPage(ctx, map[string]any{
			"filterBy": idListFilter{ID: list},
			"first":    len(list),
			"after":    after,
			"orderBy":  (*IssueOrder)(nil),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("get %d issues by id: %w", len(list), err)
		}
		found := 0
		for i := range page.Issues {
			key := strings.ToLower(page.Issues[i].ID)
			if !want[key] {
				continue // not asked for (or already returned): never passed off as a requested issue
			}
			want[key] = false
			issues = append(issues, page.Issues[i])
			raws = append(raws, page.Raw[i])
			found++
		}
		missing -= found
		if missing == 0 || !page.HasNextPage {
			return issues, raws, nil
		}
		if found == 0 || (after != nil && *after == page.EndCursor) {
			// A further page that brings nothing asked for: rather than walk an endless answer,
			// fail (transient), so the caller retries instead of calling the rest not found.
			return nil, nil, &APIError{Class: ErrTransient, Op: issuesOp,
				Message: fmt.Sprintf("id-list read: hasNextPage with %d of %d ids still missing and no progress", missing, len(list))}
		}
		cursor := page.EndCursor
		after = &cursor
	}
}
