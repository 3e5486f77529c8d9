package wiz

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

const onePage = `{"issues":{"nodes":[{"id":"i-1","createdAt":"2024-05-01T10:00:00Z"}],"pageInfo":{"hasNextPage":true,"endCursor":"c1"}}}`

// decodeResponse validates the whole body as json.Valid does and classifies what it finds as exec
// (through go-graphql-client) does.
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
		{name: "data of the wrong shape then errors", body: `{"data":{"issues":"x"},"errors":[{"message":"forbidden","extensions":{"code":"FORBIDDEN"}}]}`,
			wantClass: ErrPermission, wantMsg: "forbidden"},
		{name: "code that is not a string", body: `{"errors":[{"message":"m","extensions":{"code":5}}]}`, wantClass: ErrTransient, wantMsg: "m"},
		{name: "null data", body: `{"data":null}`, wantClass: ErrTransient, wantMsg: "response has no data"},
		{name: "no data", body: `{"extensions":{}}`, wantClass: ErrTransient, wantMsg: "response has no data"},
		{name: "empty errors", body: `{"data":` + onePage + `,"errors":[]}`, wantIDs: 1},
		{name: "data after the response", body: `{"data":` + onePage + `}{}`, wantClass: ErrTransient, wantMsg: "after top-level value"},
		{name: "NUL after the response", body: `{"data":` + onePage + "}\x00", wantClass: ErrTransient, wantMsg: "after top-level value"},
		{name: "truncated", body: `{"data":` + onePage[:40], wantClass: ErrTransient, wantMsg: "unexpected end"},
		{name: "invalid literal in a skipped value", body: `{"data":` + onePage + `,"extensions":{"a":tru}}`, wantClass: ErrTransient},
		{name: "invalid number in a node", body: `{"data":{"issues":{"nodes":[{"id":"x","severity_score":01}]}}}`, wantClass: ErrTransient},
		{name: "control character in a skipped string", body: "{\"data\":{\"issues\":{\"nodes\":[{\"id\":\"x\",\"other\":\"a\tb\"}]}}}", wantClass: ErrTransient},
		{name: "bad escape in a skipped string", body: `{"data":{"issues":{"nodes":[{"id":"x","other":"\q"}]}}}`, wantClass: ErrTransient},
		{name: "not an object", body: `[]`, wantClass: ErrTransient},
		{name: "issues not an object", body: `{"data":{"issues":[]}}`, wantClass: ErrTransient, wantMsg: "cannot unmarshal array"},
		{name: "nodes not a list", body: `{"data":{"issues":{"nodes":{}}}}`, wantClass: ErrTransient, wantMsg: "cannot unmarshal object"},
		// A node that is not an issue does not fail its page: TestUndecodableNodes.
		{name: "empty", body: ``, wantClass: ErrTransient},
		{name: "cursor missing", body: `{"data":{"issues":{"nodes":[],"pageInfo":{"hasNextPage":true}}}}`, wantClass: ErrTransient, wantMsg: "endCursor is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := decodeResponse([]byte(tt.body))
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

// A body is accepted only if json.Valid accepts it, at encoding/json's nesting limit too: a
// malformed page is a transient failure, never a partial page.
func TestDecodeResponseAsStrictAsJSONValid(t *testing.T) {
	values := []string{
		`0`, `-0`, `-0.5e-3`, `1E+9`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `--1`, `0x1`,
		`true`, `tru`, `truex`, `nul`, `null `, `false`,
		`""`, `"\u00e9\n\/"`, `"\u00g0"`, `"\x"`, "\"a\x01\"", "\"\xff\"", `"abc`,
		`[]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `{"a":}`, `{"a":1}}`,
		` [ { "a" : [ 1 , "b" , null ] } ] `, "", " ",
	}
	// The same value skipped as an unknown field of a node, of the envelope, and after the page.
	wraps := []func(v string) string{
		func(v string) string { return `{"data":{"issues":{"nodes":[{"id":"x","junk":` + v + `}]}}}` },
		func(v string) string { return `{"data":{"issues":{"nodes":[]}},"extensions":` + v + `}` },
		func(v string) string { return `{"data":{"issues":{"nodes":[]}}}` + v },
	}
	for _, v := range values {
		for i, wrap := range wraps {
			body := []byte(wrap(v))
			_, err := decodeResponse(body)
			if valid := json.Valid(body); valid != (err == nil) {
				t.Errorf("wrap %d of %q: json.Valid %v, decodeResponse error %v", i, v, valid, err)
			} else if err != nil && !errors.Is(err, ErrTransient) {
				t.Errorf("wrap %d of %q: %v, want a transient failure", i, v, err)
			}
		}
	}
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

// FuzzDecodeResponse feeds arbitrary bodies to the response decoder: it must never panic, it accepts
// exactly what json.Valid accepts (raw nodes are written out as they are), and a body it refuses
// is a classified failure.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"data":` + onePage + `}`))
	f.Add([]byte(`{"data":null,"errors":[{"message":"m","extensions":{"code":"UNAUTHENTICATED"}}]}`))
	f.Add([]byte(`{"data":{"issues":{"nodes":[{"id":"x","entitySnapshot":{"a":[1,-2.5e3,"\u00e9"]}}]}},"extensions":null}`))
	f.Add([]byte(`{"data":{"issues":{"nodes":[null,{"id":"x"}]}}} x`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := decodeResponse(body)
		if err != nil {
			if _, ok := errors.AsType[*APIError](err); !ok {
				t.Fatalf("unclassified error %v", err)
			}
			if !json.Valid(body) && !errors.Is(err, ErrTransient) {
				t.Fatalf("invalid JSON failed as %v, want a transient failure", err)
			}
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

// The nesting limit is json.Valid's, counted from the top of the response.
func TestResponseNestingLimit(t *testing.T) {
	// envelope, data, issues, nodes and the node are 5 levels; junk adds k more.
	for _, k := range []int{9995, 9996} {
		body := `{"data":{"issues":{"nodes":[{"id":"x","junk":` + strings.Repeat("[", k) + strings.Repeat("]", k) + `}]}}}`
		_, err := decodeResponse([]byte(body))
		if valid := json.Valid([]byte(body)); (err == nil) != valid {
			t.Errorf("depth %d: decoder error %v, json.Valid %v", 5+k, err, valid)
		}
		body = `{"data":null,"extensions":` + strings.Repeat("[", k+4) + strings.Repeat("]", k+4) + `}`
		_, err = decodeResponse([]byte(body))
		if valid := json.Valid([]byte(body)); valid != (err == nil || strings.Contains(err.Error(), "no data")) {
			t.Errorf("envelope depth %d: decoder error %v, json.Valid %v", 5+k, err, valid)
		}
	}
}

// Raw holds each node's exact bytes, and they are the caller's: a copy, not a view of the body.
func TestDecodeRawNodesAreCopies(t *testing.T) {
	const node = `{"id":"i-1", "createdAt":"2024-05-01T10:00:00.000001Z","brandNew":{"a":[1,2]}}`
	body := []byte(`{"data":{"issues":{"nodes":[ ` + node + ` ],"pageInfo":{"hasNextPage":false}}}}`)
	page, err := decodeResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Raw) != 1 || string(page.Raw[0]) != node {
		t.Fatalf("raw = %q, want the node as sent", page.Raw)
	}
	clear(body)
	if string(page.Raw[0]) != node || page.Issues[0].SentCreatedAt() != "2024-05-01T10:00:00.000001Z" || page.Issues[0].ID != "i-1" {
		t.Fatalf("the page changed with the body: raw %q, issue %+v", page.Raw[0], page.Issues[0])
	}
}

// TestDecodeSourceRules decodes a page whose nodes carry the rule in sourceRules (sourceRule null, or
// a differing sourceRule): the list reaches the struct, the raw node keeps it byte for byte, and
// Rule() is the list's first rule.
func TestDecodeSourceRules(t *testing.T) {
	const ruleA = `{"__typename":"CloudConfigurationRule","id":"ccr-1","name":"Bucket versioning","description":"d","remediationInstructions":"enable it","serviceType":"AWS"}`
	const ruleB = `{"__typename":"Control","id":"wc-id-7","name":"Exposed VM","description":"old","resolutionRecommendation":"r","securitySubCategories":[]}`
	nodes := []string{
		`{"id":"a","sourceRule":null,"sourceRules":[` + ruleA + `]}`,
		`{"id":"b","sourceRule":` + ruleB + `,"sourceRules":[` + ruleA + `,` + ruleB + `]}`,
		`{"id":"c","sourceRule":` + ruleB + `,"sourceRules":null}`,
	}
	body := `{"data":{"issues":{"nodes":[` + strings.Join(nodes, ",") + `],"pageInfo":{"hasNextPage":false}}}}`
	page, err := decodeResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Issues) != len(nodes) {
		t.Fatalf("decoded %d issues, want %d", len(page.Issues), len(nodes))
	}
	var wantA, wantB SourceRule
	if err := json.Unmarshal([]byte(ruleA), &wantA); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(ruleB), &wantB); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		wantList []SourceRule
		wantRule SourceRule
	}{
		{wantList: []SourceRule{wantA}, wantRule: wantA},
		{wantList: []SourceRule{wantA, wantB}, wantRule: wantA},
		{wantList: nil, wantRule: wantB},
	}
	for i, tt := range tests {
		is := &page.Issues[i]
		if !reflect.DeepEqual(is.SourceRules, tt.wantList) {
			t.Errorf("issue %s: sourceRules = %+v, want %+v", is.ID, is.SourceRules, tt.wantList)
		}
		if r := is.Rule(); r == nil || !reflect.DeepEqual(*r, tt.wantRule) {
			t.Errorf("issue %s: Rule() = %+v, want %+v", is.ID, r, tt.wantRule)
		}
		if string(page.Raw[i]) != nodes[i] {
			t.Errorf("issue %s: raw = %s, want the node as sent", is.ID, page.Raw[i])
		}
		// The struct marshals back with the list, so an issue without raw bytes keeps it too.
		b, err := json.Marshal(is)
		if err != nil {
			t.Fatal(err)
		}
		var back Issue
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if len(back.SourceRules) != len(is.SourceRules) || back.Rule() == nil || back.Rule().ID != tt.wantRule.ID ||
			!strings.Contains(string(b), `"sourceRules":`) {
			t.Errorf("issue %s: marshalled as %s, sourceRules did not round-trip", is.ID, b)
		}
	}
}

// Degraded answers (WIZ_API.md §3): a null nodes list and null nodes decode to an empty or shorter
// page, and the page says so (the feeds log it at WARN).
func TestDecodeNullNodes(t *testing.T) {
	for _, tc := range []struct {
		data      string
		issues    int
		nullNodes int
		nodesNull bool
	}{
		{`{"issues":{"nodes":null,"pageInfo":{"hasNextPage":false}}}`, 0, 0, true},
		{`{"issues":{"pageInfo":{"hasNextPage":false}}}`, 0, 0, true},
		{`{"issues":{"nodes":[null,{"id":"x"},null],"pageInfo":{"hasNextPage":false}}}`, 1, 2, false},
		{`{"issues":{"nodes":[ null ,null],"pageInfo":{"hasNextPage":false}}}`, 0, 2, false},
		{`{"issues":{"nodes":[],"pageInfo":{"hasNextPage":false}}}`, 0, 0, false},
		{`{"issues":{"nodes":null,"nodes":[null],"pageInfo":{"hasNextPage":false}}}`, 0, 1, false},
		{`{"issues":null}`, 0, 0, false},
	} {
		page, err := decodeResponse([]byte(`{"data":` + tc.data + `}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.data, err)
		}
		if len(page.Issues) != tc.issues || len(page.Raw) != tc.issues || page.NullNodes != tc.nullNodes || page.NodesNull != tc.nodesNull {
			t.Fatalf("%s: %d issues, %d raw, %d null nodes, nodes null %v", tc.data, len(page.Issues), len(page.Raw), page.NullNodes, page.NodesNull)
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

// TestUndecodableNodes: a node that is valid JSON but not an issue comes back as an issue whose
// Defects say why, with its id when that much decodes and its raw bytes, and the page's other nodes
// as they are. Failing the page instead stalled the feed on that node for good.
func TestUndecodableNodes(t *testing.T) {
	body := `{"data":{"issues":{"nodes":[` +
		`{"id":"bad-time","createdAt":"yesterday","status":"OPEN"},` +
		`{"id":7,"status":"OPEN"},` +
		`{"id":"bad-list","projects":"none"},` +
		`{"id":"good","type":"TOXIC_COMBINATION","createdAt":"2025-01-02T03:04:05.123456Z","status":"OPEN","severity":"HIGH"}` +
		`],"pageInfo":{"hasNextPage":false,"endCursor":""}}}}`
	page, err := decodeResponse([]byte(body))
	if err != nil {
		t.Fatalf("decodeResponse: %v", err)
	}
	if len(page.Issues) != 4 || len(page.Raw) != 4 {
		t.Fatalf("%d issues, %d raw nodes; want 4 each", len(page.Issues), len(page.Raw))
	}
	for i, want := range []struct{ id, defect string }{
		{"bad-time", "parsing time"}, {"", "does not decode"}, {"bad-list", "does not decode"},
	} {
		is := page.Issues[i]
		d := is.Defects()
		if is.ID != want.id || len(d) == 0 || !strings.HasPrefix(d[0], "the node does not decode: ") || !strings.Contains(d[0], want.defect) {
			t.Errorf("node %d: id %q, defects %q; want id %q and a first defect naming %q", i, is.ID, d, want.id, want.defect)
		}
		if !is.CreatedAt.IsZero() || is.Status != "" {
			t.Errorf("node %d kept fields of a failed decode: %+v", i, is)
		}
	}
	if d := page.Issues[3].Defects(); d != nil || page.Issues[3].ID != "good" {
		t.Errorf("the good node: %+v, defects %q", page.Issues[3], d)
	}
	if string(page.Raw[1]) != `{"id":7,"status":"OPEN"}` {
		t.Errorf("raw node 1 = %s", page.Raw[1])
	}
}

// Client.Issue reads one issue for a caller that decides on its fields (resolve checks its type, the
// mirror its status): a node that does not decode is a failure there, never an empty issue.
func TestIssueOfAnUndecodableNodeIsAnError(t *testing.T) {
	f := newFakeWiz(t)
	f.setGraphQL(func(w http.ResponseWriter, _ *http.Request, _ gqlRequest, _ int64) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"issues":{"nodes":[{"id":"x-1","status":"OPEN","createdAt":"yesterday"}],"pageInfo":{"hasNextPage":false}}}}`))
	})
	c := newTestClient(t, f.options())
	is, raw, err := c.Issue(testCtx(t), "x-1")
	if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "does not decode") || is != nil || raw != nil {
		t.Fatalf("Issue = %v, %s, %v; want a transient error naming the decode failure", is, raw, err)
	}
	ue, ok := errors.AsType[*UndecodableError](err)
	if !ok || ue.Issue.ID != "x-1" || len(ue.Issue.Defects()) == 0 || !strings.Contains(string(ue.Raw), "yesterday") {
		t.Fatalf("error %#v: want an *UndecodableError with the defective issue and its raw node", err)
	}
}
