package wiz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	graphql "github.com/hasura/go-graphql-client"

	"github.com/wizfetch/wizfetch/pkg/redact"
)

// Error classes. Every error returned by Client methods matches at most one of them with errors.Is;
// errors caused by the caller's context match context.Canceled or context.DeadlineExceeded instead.
var (
	// ErrAuth: the credentials or the token were rejected (HTTP 401, UNAUTHENTICATED, a token
	// endpoint refusal). Not retryable without a configuration change.
	ErrAuth = errors.New("authentication failed")
	// ErrPermission: the service account lacks a scope or the IP is blocked (HTTP 403,
	// UNAUTHORIZED, FORBIDDEN, FORBIDDEN_IP). Not retryable.
	ErrPermission = errors.New("permission denied")
	// ErrBadRequest: Wiz rejected the query or its variables (HTTP 4xx, BAD_USER_INPUT,
	// GRAPHQL_VALIDATION_FAILED). Not retryable.
	ErrBadRequest = errors.New("bad request")
	// ErrTransient: throttling, server trouble, network failure or a malformed or partial
	// response, still failing after the transport's retries. Worth trying again later.
	ErrTransient = errors.New("temporary failure")
	// ErrCursorRejected: Wiz refused the `after` cursor (BAD_USER_INPUT on a page requested with
	// one); the feed restarts its window (see pkg/feed).
	ErrCursorRejected = errors.New("cursor rejected")
	// ErrNotFound: the requested issue does not exist (or is not visible to the account).
	ErrNotFound = errors.New("not found")
)

// APIError is a classified failure of one Wiz API call. It never contains the client secret, the
// access token or the request body.
type APIError struct {
	// Class is one of the ErrX sentinels; errors.Is(apiErr, Class) holds.
	Class error
	// HTTPStatus is the HTTP status of the response, or 0 when there was none (network failure,
	// or a GraphQL error inside an HTTP 200).
	HTTPStatus int
	// Code is the GraphQL extensions.code (or the OAuth2 error code for token failures).
	Code string
	// Message is the server's message, with the tenant's secrets masked, shortened.
	Message string
	// Op names what failed, e.g. "IssuesTable" or "token request to https://auth.app.wiz.io/oauth/token".
	Op string

	// masked: Message is final (masked, then shortened). Until then it holds the server's whole
	// text: masking must come before shortening, or a cut could keep a prefix of a secret.
	masked bool
}

// Error renders e.g. "wiz IssuesTable: bad request: HTTP 400 BAD_USER_INPUT: invalid filter".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("wiz")
	if e.Op != "" {
		b.WriteString(" ")
		b.WriteString(e.Op)
	}
	b.WriteString(": ")
	if e.Class != nil {
		b.WriteString(e.Class.Error())
	} else {
		b.WriteString("error")
	}
	sep := ": "
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "%sHTTP %d", sep, e.HTTPStatus)
		sep = " "
	}
	if e.Code != "" {
		b.WriteString(sep)
		b.WriteString(e.Code)
		sep = " "
	}
	if e.Message != "" {
		if sep == " " {
			sep = ": "
		}
		b.WriteString(sep)
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns Class, so errors.Is(err, ErrAuth) and friends work.
func (e *APIError) Unwrap() error { return e.Class }

// IsRetryable reports whether err is worth retrying later unchanged (ErrTransient).
func IsRetryable(err error) bool { return errors.Is(err, ErrTransient) }

const maxMessageLen = 500

// scrub finishes an error on its way out of the client: the server text of an *APIError is masked
// with r, then shortened. Every Client method that reaches Wiz returns its errors through scrub
// (callWithRetries; token errors are finished where they arise, tokenSource.fetch). Other errors
// carry no server text. The error is copied, never changed in place.
func scrub(err error, r *redact.Redactor) error {
	apiErr, ok := err.(*APIError)
	if !ok || apiErr.masked {
		return err
	}
	e := *apiErr
	e.Code, e.Message, e.masked = shorten(r.String(e.Code)), shorten(r.String(e.Message)), true
	return &e
}

// shorten cuts text to maxMessageLen bytes; mask secrets first (scrub).
func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxMessageLen {
		return s
	}
	cut := maxMessageLen
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// classByStatus maps an HTTP status of the GraphQL endpoint to an error class (WIZ_API.md §4).
func classByStatus(status int) error {
	switch {
	case status == http.StatusUnauthorized:
		return ErrAuth
	case status == http.StatusForbidden:
		return ErrPermission
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500:
		return ErrTransient
	case status >= 400:
		return ErrBadRequest
	default:
		return ErrTransient
	}
}

// GraphQL error codes the client acts on beyond their class.
const (
	// codeBadUserInput is Wiz's code for a request it refuses, a rejected `after` cursor included.
	codeBadUserInput = "BAD_USER_INPUT"
	// codeRateLimited is Wiz's throttling code. Wiz maps it to HTTP 429 (Wiz's Backstage plugin,
	// types/index.ts), but it may also arrive inside an HTTP 200 answer (WIZ_API.md §10).
	codeRateLimited = "RATE_LIMIT_EXCEEDED"
)

// classByCode maps a GraphQL extensions.code to a class. The message is never consulted: Wiz's
// wording is not documented (for an invalid or expired cursor in particular, WIZ_API.md §10), so
// a rejected cursor is recognised by the request instead (cursorRejected).
func classByCode(code string) error {
	switch strings.ToUpper(code) {
	case "UNAUTHENTICATED":
		return ErrAuth
	case "UNAUTHORIZED", "FORBIDDEN", "FORBIDDEN_IP":
		return ErrPermission
	case codeBadUserInput, "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "BAD_REQUEST":
		return ErrBadRequest
	case "NOT_FOUND":
		return ErrNotFound
	default:
		// RATE_LIMIT_EXCEEDED (retried first: throttledInBody), INTERNAL, INTERNAL_SERVER_ERROR,
		// unknown codes.
		return ErrTransient
	}
}

// cursorRejected reclassifies the failure of a page requested with an `after` cursor: Wiz's
// BAD_USER_INPUT there means the cursor was refused (the filter and order are those of the window's
// first page, which Wiz accepted). Wiz documents no wording for an invalid or expired cursor
// (WIZ_API.md §10), so the code and the request decide, never the message. On the first page of a
// window (no cursor) BAD_USER_INPUT stays a bad request.
func cursorRejected(err error, withCursor bool) error {
	apiErr, ok := errors.AsType[*APIError](err)
	if !withCursor || !ok || apiErr.Class != ErrBadRequest || !strings.EqualFold(apiErr.Code, codeBadUserInput) {
		return err
	}
	e := *apiErr
	e.Class = ErrCursorRejected
	return &e
}

// throttledInBody reports whether err is Wiz throttling a request inside an HTTP 200 answer
// (RATE_LIMIT_EXCEEDED in errors[]), which the retrying transport cannot see: the client retries
// it itself, as the transport retries an HTTP 429.
func throttledInBody(err error) bool {
	apiErr, ok := errors.AsType[*APIError](err)
	return ok && apiErr.HTTPStatus == 0 && strings.EqualFold(apiErr.Code, codeRateLimited)
}

// classRank orders classes so that the most decisive one wins when a response carries several
// errors.
func classRank(c error) int {
	switch c {
	case ErrAuth:
		return 4
	case ErrPermission:
		return 3
	case ErrBadRequest:
		return 2
	case ErrNotFound:
		return 1
	default:
		return 0
	}
}

// wireError is one entry of a GraphQL "errors" array.
type wireError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// pickError chooses the most decisive of a response's GraphQL errors.
func pickError(errs []wireError) (code, message string, class error) {
	class = ErrTransient
	best := -1
	for _, e := range errs {
		c := classByCode(e.Extensions.Code)
		if r := classRank(c); r > best {
			best, class, code, message = r, c, e.Extensions.Code, e.Message
		}
	}
	if len(errs) > 1 {
		message = fmt.Sprintf("%s (and %d more errors)", message, len(errs)-1)
	}
	return code, message, class
}

// classify turns an error from graphql.Client.ExecRaw into a classified error. ctx is the caller's
// context: when it is done, its error is returned (wrapped) instead of a class.
func classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("wiz %s: %w", op, ctxErr)
	}
	if errors.Is(err, errNoSlot) {
		return fmt.Errorf("wiz %s: %w", op, errNoSlot)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) { // token failures and redirects surface through the transport
		if apiErr.Op == "" {
			e := *apiErr
			e.Op = op
			return &e
		}
		return apiErr
	}
	var netErr graphql.NetworkError
	if errors.As(err, &netErr) {
		return statusError(op, netErr.StatusCode(), []byte(netErr.Body()))
	}
	var gqlErrs graphql.Errors
	if errors.As(err, &gqlErrs) && len(gqlErrs) > 0 {
		if lib, ok := libraryCode(gqlErrs[0]); ok {
			// Failures inside the library: transport error (after our retries) or an
			// undecodable (e.g. truncated) body.
			return &APIError{Class: ErrTransient, Code: lib, Message: libraryMessage(gqlErrs[0]), Op: op}
		}
		wire := make([]wireError, len(gqlErrs))
		for i, g := range gqlErrs {
			wire[i].Message = g.Message
			if c, ok := g.Extensions["code"].(string); ok {
				wire[i].Extensions.Code = c
			}
		}
		return gqlError(op, wire)
	}
	return &APIError{Class: ErrTransient, Message: err.Error(), Op: op}
}

// statusError classifies a GraphQL response with an HTTP status other than 200 by its status,
// and by the GraphQL errors in its body when there are any.
func statusError(op string, status int, body []byte) *APIError {
	e := &APIError{Class: classByStatus(status), HTTPStatus: status, Op: op}
	var resp struct {
		Errors []wireError `json:"errors"`
	}
	if json.Unmarshal(body, &resp) == nil && len(resp.Errors) > 0 {
		code, msg, _ := pickError(resp.Errors)
		e.Code, e.Message = code, msg
	} else {
		e.Message = http.StatusText(status)
	}
	return e
}

// gqlError classifies the GraphQL errors of a response by the most decisive of them.
func gqlError(op string, errs []wireError) *APIError {
	code, msg, class := pickError(errs)
	return &APIError{Class: class, Code: code, Message: msg, Op: op}
}

// libraryCode reports whether a graphql.Error was produced by the library itself rather than by
// the server.
func libraryCode(e graphql.Error) (string, bool) {
	c, _ := e.Extensions["code"].(string)
	switch c {
	case graphql.ErrRequestError, graphql.ErrJsonEncode, graphql.ErrJsonDecode,
		graphql.ErrGraphQLEncode, graphql.ErrGraphQLDecode, graphql.ErrGraphQLExtensionsDecode:
		return c, true
	}
	return "", false
}

func libraryMessage(e graphql.Error) string {
	if u := e.Unwrap(); u != nil {
		return u.Error()
	}
	return e.Message
}
