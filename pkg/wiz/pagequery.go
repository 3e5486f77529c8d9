package wiz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	graphql "github.com/hasura/go-graphql-client"
)

// Issue pages take their own path to the same endpoint: the request is go-graphql-client's payload
// (GraphQLRequestPayload) sent through the client's transports (token, rate limit, retries, body
// bound, drain), and the body is read whole and decoded in one call (decodeResponse, decodeJSON).
// The library's ExecRaw would stream the body into its decoder and stop at the end of the first
// JSON value, so a page followed by anything else would pass as valid, and it would copy the data
// out before anything decodes it; decoding the whole body validates it exactly as json.Valid does.
// Every other operation goes through ExecRaw (Client.exec).

// maxPageBytes bounds the body of one issues page: Wiz's largest page, 500 issues (WIZ_API.md §2),
// at a generous 128 KiB each — an issue with its rule, projects, entity snapshot, tags and notes
// is a few KiB; notes are capped at ~1500 characters each — is 62.5 MiB. A larger body is not a
// page wizfetch asked for, and must fail before it costs the daemon its memory.
const maxPageBytes = 64 << 20

// presizeLimit is the largest Content-Length readBody trusts to size its buffer before any byte has
// arrived; a larger body grows its buffer as it comes (so a lying header costs nothing up front).
const presizeLimit = 8 << 20

// issuesOp is the operation name of IssuesQuery.
const issuesOp = "IssuesTable"

// queryPage runs IssuesQuery with vars and decodes the page (decodeResponse). A BAD_USER_INPUT
// answer to a page requested with an `after` cursor is ErrCursorRejected (cursorRejected).
func (c *Client) queryPage(ctx context.Context, vars map[string]any) (*Page, error) {
	payload, err := encodeJSON(graphql.GraphQLRequestPayload{Query: IssuesQuery, Variables: vars, OperationName: issuesOp})
	if err != nil {
		return nil, &APIError{Class: ErrBadRequest, Op: issuesOp, Code: graphql.ErrGraphQLEncode, Message: shorten(err.Error())}
	}
	page, err := callWithRetries(ctx, c, issuesOp, func(ctx context.Context) (*Page, error) {
		req, err := http.NewRequestWithContext(withBodyLimit(ctx, maxPageBytes), http.MethodPost, c.apiURL, bytes.NewReader(payload))
		if err != nil {
			return nil, classify(ctx, issuesOp, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			var apiErr *APIError
			if ctx.Err() != nil || errors.Is(err, errNoSlot) || errors.As(err, &apiErr) {
				return nil, classify(ctx, issuesOp, err)
			}
			return nil, &APIError{Class: ErrTransient, Code: graphql.ErrRequestError, Op: issuesOp, Message: err.Error()}
		}
		var release func()
		if resp.StatusCode == http.StatusOK {
			// A page about to be read takes a slot of the ctx's PageSlots, if any.
			if release, err = takePageSlot(ctx); err != nil {
				_ = resp.Body.Close()
				return nil, classify(ctx, issuesOp, err)
			}
		}
		page, err := readPage(ctx, resp)
		if err != nil {
			if release != nil {
				release()
			}
			return nil, err
		}
		page.release = release
		return page, nil
	})
	if err != nil {
		return nil, cursorRejected(err, hasCursor(vars))
	}
	return page, nil
}

// readPage reads and decodes the response to an issues query.
func readPage(ctx context.Context, resp *http.Response) (*Page, error) {
	body, err := readBody(resp)
	if ctx.Err() != nil {
		return nil, classify(ctx, issuesOp, ctx.Err())
	}
	if resp.StatusCode != http.StatusOK {
		// The status decides, whatever became of the body (as in go-graphql-client).
		return nil, statusError(issuesOp, resp.StatusCode, body)
	}
	if err != nil {
		return nil, &APIError{Class: ErrTransient, Code: graphql.ErrJsonDecode, Op: issuesOp, Message: err.Error()}
	}
	return decodeResponse(body)
}

// hasCursor reports whether query variables carry a non-empty `after` cursor.
func hasCursor(vars map[string]any) bool {
	switch after := vars["after"].(type) {
	case *string:
		return after != nil && *after != ""
	case string:
		return after != ""
	}
	return false
}

// readBody reads and closes a response body: into one buffer of its Content-Length when that is
// known (and at most presizeLimit). The transport has bounded the body (maxPageBytes, a smaller
// bound for an error body) and gunzipped it if the server compressed it without being asked
// (boundedBody). On an error it returns what it read.
func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	n := resp.ContentLength
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		n = min(n, maxErrorBody) // the transport reads no more of it (boundedBody)
	}
	if n > maxPageBytes {
		return nil, fmt.Errorf("read response: %w", &bodyTooLargeError{Limit: maxPageBytes})
	}
	if n >= 0 && n <= presizeLimit {
		buf := make([]byte, n)
		if k, err := io.ReadFull(resp.Body, buf); err != nil {
			return buf[:k], fmt.Errorf("read response: %w", err)
		}
		return buf, nil
	}
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		return buf, fmt.Errorf("read response: %w", err)
	}
	return buf, nil
}

// pageResponse is the envelope of an IssuesTable response. Each node is kept as its raw bytes
// (rawNode) and decoded into an Issue only once the response is known to carry no errors.
type pageResponse struct {
	Data *struct {
		Issues *struct {
			Nodes    *[]rawNode `json:"nodes"`
			PageInfo struct {
				HasNextPage bool   `json:"hasNextPage"`
				EndCursor   string `json:"endCursor"`
			} `json:"pageInfo"`
		} `json:"issues"`
	} `json:"data"`
	Errors []wireError `json:"errors"`
}

// rawNode is one node's JSON, kept as the decoder hands it to an Unmarshaler: goccy/go-json hands
// over a copy of those bytes, encoding/json a part of the body, which readBody allocated for this
// response alone and nothing writes to again. Either way the bytes stay as they are, and keeping
// them saves the second copy json.RawMessage makes of every node.
type rawNode []byte

// UnmarshalJSON implements json.Unmarshaler.
func (n *rawNode) UnmarshalJSON(b []byte) error {
	*n = b
	return nil
}

// decodeResponse decodes a whole IssuesTable response body, {"data": …, "errors": […]}: a body
// that is not valid JSON (json.Valid, nesting limit included) is a transient failure; errors in the
// response make it a failure, even with data (as in exec); nodes: null and null nodes are counted
// (Page.NodesNull, Page.NullNodes); every other node is decoded into an Issue (decodeNode: a node
// that is not an issue is kept as one whose Defects say so, for the feed to reject), and its bytes,
// a copy, kept in Page.Raw.
func decodeResponse(body []byte) (*Page, error) {
	var resp pageResponse
	err := decodeJSON(body, &resp)
	if err != nil && !wrongType(err) {
		// Not JSON, or not one JSON value.
		return nil, decodeError("decode response: %v", err)
	}
	if len(resp.Errors) > 0 {
		// Whatever became of the data, the errors say best what went wrong.
		return nil, gqlError(issuesOp, resp.Errors)
	}
	if err != nil {
		return nil, decodeError("decode response: %v", err)
	}
	if resp.Data == nil {
		return nil, &APIError{Class: ErrTransient, Op: issuesOp, Message: "response has no data"}
	}
	page := &Page{}
	issues := resp.Data.Issues
	if issues == nil {
		return page, nil
	}
	page.HasNextPage, page.EndCursor = issues.PageInfo.HasNextPage, issues.PageInfo.EndCursor
	if page.HasNextPage && page.EndCursor == "" {
		return nil, &APIError{Class: ErrTransient, Op: issuesOp, Message: "hasNextPage is true but endCursor is empty"}
	}
	if issues.Nodes == nil {
		page.NodesNull = true
		return page, nil
	}
	nodes := *issues.Nodes
	page.Issues = make([]Issue, 0, len(nodes))
	page.Raw = make([]json.RawMessage, 0, len(nodes))
	for _, raw := range nodes {
		if string(raw) == "null" {
			page.NullNodes++
			continue
		}
		page.Issues = append(page.Issues, decodeNode(raw))
		page.Raw = append(page.Raw, json.RawMessage(raw))
	}
	return page, nil
}

// decodeError is the transient failure of a response that does not decode.
func decodeError(format string, args ...any) *APIError {
	return &APIError{Class: ErrTransient, Code: graphql.ErrJsonDecode, Op: issuesOp, Message: shorten(fmt.Sprintf(format, args...))}
}

// callWithRetries runs call (which returns classified errors) with the retries that answers inside
// an HTTP 200 need, beyond the transport's: throttling (RATE_LIMIT_EXCEEDED) is retried with
// backoff as a 429 is (retryThrottled); when Wiz rejects the token a call was sent with (ErrAuth),
// the token is invalidated, refreshed, and the call runs once more. A failure comes back scrubbed:
// the tenant's secrets masked in its server text, which is then shortened.
func callWithRetries[T any](ctx context.Context, c *Client, op string, call func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		used := &usedToken{}
		v, err := retryThrottled(context.WithValue(ctx, usedTokenKey{}, used), c.retry, op, call)
		if err == nil {
			return v, nil
		}
		var apiErr *APIError
		if attempt == 0 && used.token != "" && errors.As(err, &apiErr) && apiErr.Class == ErrAuth {
			c.log.Info("access token rejected: refreshing it and retrying once", "op", op)
			c.tokens.Invalidate(used.token)
			continue
		}
		// A server may echo the request: mask the token it carried as well as the cached one.
		return v, scrub(err, c.tokens.redactor(used.token))
	}
}
