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

// Issue pages take their own path to the same endpoint. go-graphql-client decodes a response with
// encoding/json into {Data json.RawMessage; Errors; Extensions}: it reads the body into a growing
// buffer, scans all of it once to find where the value ends, scans it again to decode it and copies
// data out. For a page of issues that is about a third of wizfetch's CPU per issue, all of it before
// wizfetch's own decoder walks the same bytes once more. So IssuesTable requests are built with the
// library's request payload type and sent through the same transports (token, rate limit, retries,
// drain), but the response is read once into a buffer of its Content-Length and decoded in one
// validating pass (decodeResponse). Every other operation goes through the library.

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

// queryPage runs IssuesQuery with vars and decodes the page; sizeHint is the page size asked for.
// A BAD_USER_INPUT answer to a page requested with an `after` cursor is ErrCursorRejected
// (cursorRejected).
func (c *Client) queryPage(ctx context.Context, vars map[string]any, sizeHint int) (*Page, error) {
	payload, err := json.Marshal(graphql.GraphQLRequestPayload{Query: IssuesQuery, Variables: vars, OperationName: issuesOp})
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
		return decodeResponse(body, sizeHint)
	})
	if err != nil {
		return nil, cursorRejected(err, hasCursor(vars))
	}
	return page, nil
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

// decodeResponse decodes a whole IssuesTable response body, {"data": …, "errors": […]}, in one
// pass. Errors in the response make it a failure, even with data (as in exec). The body must be one
// valid JSON object (white space may follow it); the page's strings and raw nodes are slices of it.
func decodeResponse(body []byte, sizeHint int) (page *Page, err error) {
	defer func() {
		// API data must never crash the daemon: a decoder bug becomes an error for this page.
		if p := recover(); p != nil {
			page, err = nil, &APIError{Class: ErrTransient, Op: issuesOp, Message: fmt.Sprintf("decode response: decoder panic: %v", p)}
		}
	}()
	return walkResponse(body, sizeHint)
}

// responseKeys are the envelope's keys, for case-insensitive matching as encoding/json does.
var responseKeys = []string{"data", "errors", "extensions"}

// walkResponse is decodeResponse without the safety net (FuzzDecodeResponse calls it).
func walkResponse(body []byte, sizeHint int) (*Page, error) {
	r := &nodeReader{data: body}
	var (
		page    *Page
		gqlErrs []wireError
		dataErr error
	)
	err := r.object(responseKeys, func(key string) (bool, error) {
		switch key {
		case "data":
			page = &Page{}
			if r.null() {
				page = nil
				return true, nil
			}
			dataErr = r.pageData(page, sizeHint)
			return true, dataErr
		case "errors":
			return true, r.wireErrors(&gqlErrs)
		}
		return false, nil
	})
	if err == nil && !r.atEnd() {
		err = r.syntax("data after the response")
	}
	if err != nil && dataErr != nil {
		// The data did not decode; errors after it still say what went wrong better.
		if errs, ok := responseErrors(body); ok && len(errs) > 0 {
			return nil, gqlError(issuesOp, errs)
		}
	}
	if err != nil {
		if apiErr, ok := errors.AsType[*APIError](err); ok {
			return nil, apiErr
		}
		return nil, &APIError{Class: ErrTransient, Code: graphql.ErrJsonDecode, Op: issuesOp, Message: "decode response: " + shorten(err.Error())}
	}
	if len(gqlErrs) > 0 {
		return nil, gqlError(issuesOp, gqlErrs)
	}
	if page == nil {
		return nil, &APIError{Class: ErrTransient, Op: issuesOp, Message: "response has no data"}
	}
	if page.HasNextPage && page.EndCursor == "" {
		return nil, &APIError{Class: ErrTransient, Op: issuesOp, Message: "hasNextPage is true but endCursor is empty"}
	}
	return page, nil
}

// responseErrors reads only the errors of a response, skipping its data.
func responseErrors(body []byte) ([]wireError, bool) {
	r := &nodeReader{data: body}
	var errs []wireError
	err := r.object(responseKeys, func(key string) (bool, error) {
		if key == "errors" {
			return true, r.wireErrors(&errs)
		}
		return false, nil
	})
	return errs, err == nil
}

// wireErrors decodes a GraphQL errors list (null is none): each entry's message and
// extensions.code; a code that is not a string is ignored.
func (r *nodeReader) wireErrors(dst *[]wireError) error {
	return slice(r, dst, "errors", func(e *wireError) error {
		return structValue(r, "errors", func() error {
			return r.object([]string{"message", "extensions"}, func(key string) (bool, error) {
				switch key {
				case "message":
					return true, r.setString(&e.Message, "errors.message")
				case "extensions":
					if r.peek() != '{' {
						return false, nil
					}
					return true, r.object(nil, func(key string) (bool, error) {
						if key == "code" && r.peek() == '"' {
							return true, r.setString(&e.Extensions.Code, "errors.extensions.code")
						}
						return false, nil
					})
				}
				return false, nil
			})
		})
	})
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
