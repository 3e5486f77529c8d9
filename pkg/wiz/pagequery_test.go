package wiz

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

const onePage = `{"issues":{"nodes":[{"id":"i-1","createdAt":"2024-05-01T10:00:00Z"}],"pageInfo":{"hasNextPage":true,"endCursor":"c1"}}}`

// decodeResponse reads the whole envelope in one pass and classifies what it finds as exec (through
// go-graphql-client) does.
func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantIDs   int
		wantClass error
		wantMsg   string
	}{
		{name: "page", body: `{"data":` + onePage + `}`, wantIDs: 1},
		{name: "white space around", body: " \n{\"data\" : " + onePage + " , \"extensions\":{\"cost\":[1,2.5e3,-0.1,true,false,null]}}\r\n", wantIDs: 1},
		{name: "keys matched case-insensitively", body: `{"Data":` + onePage + `,"ERRORS":null}`, wantIDs: 1},
		{name: "errors with data", body: `{"data":` + onePage + `,"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMIT_EXCEEDED"}}]}`,
			wantClass: ErrTransient, wantMsg: "slow down"},
		{name: "most decisive error wins", body: `{"errors":[{"message":"x"},{"message":"who are you","extensions":{"code":"UNAUTHENTICATED","path":["a"]}}],"data":null}`,
			wantClass: ErrAuth, wantMsg: "who are you (and 1 more errors)"},
		// The wording decides nothing (WIZ_API.md §10); queryPage knows whether a cursor was sent.
		{name: "cursor wording is a bad request", body: `{"errors":[{"message":"invalid cursor","locations":[{"line":1}],"extensions":{"code":"BAD_USER_INPUT"}}]}`,
			wantClass: ErrBadRequest, wantMsg: "invalid cursor"},
		{name: "bad data then errors", body: `{"data":{"issues":{"nodes":[{"id":7}]}},"errors":[{"message":"forbidden","extensions":{"code":"FORBIDDEN"}}]}`,
			wantClass: ErrPermission, wantMsg: "forbidden"},
		{name: "code that is not a string", body: `{"errors":[{"message":"m","extensions":{"code":5}}]}`, wantClass: ErrTransient, wantMsg: "m"},
		{name: "null data", body: `{"data":null}`, wantClass: ErrTransient, wantMsg: "response has no data"},
		{name: "no data", body: `{"extensions":{}}`, wantClass: ErrTransient, wantMsg: "response has no data"},
		{name: "empty errors", body: `{"data":` + onePage + `,"errors":[]}`, wantIDs: 1},
		{name: "data after the response", body: `{"data":` + onePage + `}{}`, wantClass: ErrTransient, wantMsg: "data after the response"},
		{name: "NUL after the response", body: `{"data":` + onePage + "}\x00", wantClass: ErrTransient, wantMsg: "data after the response"},
		{name: "truncated", body: `{"data":` + onePage[:40], wantClass: ErrTransient, wantMsg: "unexpected end"},
		{name: "invalid literal in a skipped value", body: `{"data":` + onePage + `,"extensions":{"a":tru}}`, wantClass: ErrTransient},
		{name: "invalid number in a node", body: `{"data":{"issues":{"nodes":[{"id":"x","severity_score":01}]}}}`, wantClass: ErrTransient},
		{name: "control character in a skipped string", body: "{\"data\":{\"issues\":{\"nodes\":[{\"id\":\"x\",\"other\":\"a\tb\"}]}}}", wantClass: ErrTransient},
		{name: "bad escape in a skipped string", body: `{"data":{"issues":{"nodes":[{"id":"x","other":"\q"}]}}}`, wantClass: ErrTransient},
		{name: "not an object", body: `[]`, wantClass: ErrTransient},
		{name: "empty", body: ``, wantClass: ErrTransient},
		{name: "cursor missing", body: `{"data":{"issues":{"nodes":[],"pageInfo":{"hasNextPage":true}}}}`, wantClass: ErrTransient, wantMsg: "endCursor is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := decodeResponse([]byte(tt.body), 10)
			if tt.wantClass != nil {
				if !errors.Is(err, tt.wantClass) {
					t.Fatalf("err = %v, want class %v", err, tt.wantClass)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Issues) != tt.wantIDs || len(page.Raw) != tt.wantIDs {
				t.Fatalf("%d issues and %d raw nodes, want %d", len(page.Issues), len(page.Raw), tt.wantIDs)
			}
			if page.Issues[0].ID != "i-1" || !page.HasNextPage || page.EndCursor != "c1" || !json.Valid(page.Raw[0]) {
				t.Fatalf("page = %+v", page)
			}
		})
	}
}

// skip accepts exactly what json.Valid accepts, including at encoding/json's nesting limit.
func TestSkipMatchesJSONValid(t *testing.T) {
	cases := []string{
		`0`, `-0`, `-0.5e-3`, `1E+9`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `--1`, `0x1`,
		`true`, `tru`, `truex`, `nul`, `null `, `false`,
		`""`, `"\u00e9\n\/"`, `"\u00g0"`, `"\x"`, "\"a\x01\"", "\"\xff\"", `"abc`,
		`[]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `{"a":}`, `{"a":1}}`,
		` [ { "a" : [ 1 , "b" , null ] } ] `, "", " ",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	}
	for _, c := range cases {
		if got, want := skipsWhole([]byte(c)), json.Valid([]byte(c)); got != want {
			name := c
			if len(name) > 40 {
				name = name[:40] + "…"
			}
			t.Errorf("skip(%q) = %v, json.Valid = %v", name, got, want)
		}
	}
}

// skipsWhole reports whether skip consumes data as one value followed only by white space.
func skipsWhole(data []byte) bool {
	r := &nodeReader{data: data}
	return r.skip() == nil && r.atEnd()
}

// A page the server gzips without being asked (as go-graphql-client also allows) is read, and
// pages are sent with the library's request payload.
func TestQueryPageReadsGzip(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, req gqlRequest, _ int64) {
		if req.OperationName != issuesOp || req.Query != IssuesQuery {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte(`{"data":` + onePage + `}`))
		_ = zw.Close()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(buf.Bytes())
	})
	c := newTestClient(t, f.options())
	page, err := c.Issues(testCtx(t), IssueFilter{}, nil, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Issues) != 1 || page.Issues[0].ID != "i-1" || page.EndCursor != "c1" {
		t.Fatalf("page = %+v", page)
	}
}

// A body that ends before its Content-Length is a transient failure, not a short page.
func TestQueryPageShortBody(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		body := `{"data":` + onePage + `}`
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write([]byte(body))
		// The handler returns with the body short: the server closes the connection.
	})
	opts := f.options()
	opts.RetryFor = 1 // no retries
	c := newTestClient(t, opts)
	_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 10, "")
	if !errors.Is(err, ErrTransient) {
		t.Fatalf("err = %v, want a transient failure", err)
	}
}

// FuzzDecodeResponse feeds arbitrary bodies to the response decoder: it must never panic, and what
// it accepts must be valid JSON (raw nodes are written out as they are).
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"data":` + onePage + `}`))
	f.Add([]byte(`{"data":null,"errors":[{"message":"m","extensions":{"code":"UNAUTHENTICATED"}}]}`))
	f.Add([]byte(`{"data":{"issues":{"nodes":[{"id":"x","entitySnapshot":{"a":[1,-2.5e3,"\u00e9"]}}]}},"extensions":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := walkResponse(body, 1) // not decodeResponse, whose recover would hide a panic
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON: %q", body)
		}
		if len(page.Issues) != len(page.Raw) {
			t.Fatalf("%d issues but %d raw nodes", len(page.Issues), len(page.Raw))
		}
		for _, raw := range page.Raw {
			if !json.Valid(raw) {
				t.Fatalf("raw node %q is not valid JSON", raw)
			}
		}
	})
}

// FuzzSkip holds skip to json.Valid on any input.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `"\ud800"`, `-1.5e+10`, `[tru]`, `{"a":1,}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := skipsWhole(data), json.Valid(data); got != want {
			t.Fatalf("skip accepts %v, json.Valid %v: %q", got, want, data)
		}
	})
}

// The nesting limit counts from the top of the response, as json.Valid's does, however deep in a
// node the decoder starts skipping.
func TestResponseNestingLimit(t *testing.T) {
	// envelope, data, issues, nodes and the node are 5 levels; junk adds k more.
	for _, k := range []int{9995, 9996} {
		body := `{"data":{"issues":{"nodes":[{"id":"x","junk":` + strings.Repeat("[", k) + strings.Repeat("]", k) + `}]}}}`
		_, err := walkResponse([]byte(body), 1)
		if valid := json.Valid([]byte(body)); (err == nil) != valid {
			t.Errorf("depth %d: decoder error %v, json.Valid %v", 5+k, err, valid)
		}
		body = `{"data":null,"extensions":` + strings.Repeat("[", k+4) + strings.Repeat("]", k+4) + `}`
		_, err = walkResponse([]byte(body), 1)
		if valid := json.Valid([]byte(body)); valid != (err == nil || strings.Contains(err.Error(), "no data")) {
			t.Errorf("envelope depth %d: decoder error %v, json.Valid %v", 5+k, err, valid)
		}
	}
}

// A refused request is classified by its status even when its body cannot be read whole (as through
// go-graphql-client): a 401 refreshes the token and retries once, then fails as ErrAuth.
func TestQueryPageStatusWinsOverABrokenBody(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"message":"tok`))
	})
	c := newTestClient(t, f.options())
	_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 10, "")
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if n := f.gqlCount.Load(); n != 2 {
		t.Fatalf("%d requests, want 2 (one retry with a fresh token)", n)
	}
}

// Wiz documents no wording for an invalid or expired cursor (WIZ_API.md §10): BAD_USER_INPUT on a
// page requested with a cursor is ErrCursorRejected whatever the message says, and on the first page
// of a window (no cursor) it is a bad request even when the message talks about cursors.
func TestCursorRejectedByRequestNotWording(t *testing.T) {
	tests := []struct {
		name    string
		after   string
		status  int
		code    string
		message string
		want    error
	}{
		{name: "with cursor, no cursor wording", after: "c1", status: 200, code: "BAD_USER_INPUT", message: `invalid value for argument "after"`, want: ErrCursorRejected},
		{name: "with cursor, empty message", after: "c1", status: 200, code: "BAD_USER_INPUT", want: ErrCursorRejected},
		{name: "with cursor, HTTP 400", after: "c1", status: 400, code: "BAD_USER_INPUT", message: "Bad Request", want: ErrCursorRejected},
		{name: "with cursor, lower-case code", after: "c1", status: 200, code: "bad_user_input", message: "no", want: ErrCursorRejected},
		{name: "with cursor, validation failure", after: "c1", status: 200, code: "GRAPHQL_VALIDATION_FAILED", message: "cursor", want: ErrBadRequest},
		{name: "with cursor, permission", after: "c1", status: 200, code: "UNAUTHORIZED", message: "cursor", want: ErrPermission},
		{name: "with cursor, server trouble", after: "c1", status: 200, code: "INTERNAL", message: "cursor", want: ErrTransient},
		{name: "first page, cursor wording", status: 200, code: "BAD_USER_INPUT", message: "invalid cursor", want: ErrBadRequest},
		{name: "first page, HTTP 400", status: 400, code: "BAD_USER_INPUT", message: "Cursor expired", want: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeWiz(t)
			f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
				writeJSON(w, tt.status, gqlErrors(tt.code, tt.message))
			})
			c := newTestClient(t, f.options())
			_, err := c.Issues(testCtx(t), IssueFilter{}, nil, 10, tt.after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrAuth, ErrPermission, ErrBadRequest, ErrTransient, ErrCursorRejected, ErrNotFound} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("err also matches %v", other)
				}
			}
			if n := f.gqlCount.Load(); n != 1 {
				t.Errorf("graphql requests = %d, want 1 (not retried)", n)
			}
		})
	}
}
