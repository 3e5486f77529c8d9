package wiz

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodePage feeds arbitrary response data (the value of "data") to the page decoder: API data must never crash the
// daemon, whatever Wiz (or a proxy in between) sends. Every decoded issue must carry its raw bytes.
func FuzzDecodePage(f *testing.F) {
	for _, name := range []string{"page_mixed.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"issues":{"nodes":null,"pageInfo":{"hasNextPage":false}}}`))
	f.Add([]byte(`{"issues":{"nodes":[{"id":"x","createdAt":"2023-08-23T07:56:09.903743Z","sourceRule":null}],"pageInfo":{"hasNextPage":true,"endCursor":"c"}}}`))
	f.Add([]byte(`{"issues":{"nodes":[{"createdAt":12,"projects":{"a":1},"entitySnapshot":[]}]}}`))
	f.Add([]byte(`{"issues":{"nodes":[{"id":"y","sourceRule":null,"sourceRules":[{"__typename":"Control","id":"wc-id-1","name":"n"},null]}],"pageInfo":{"hasNextPage":false}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The data inside a response envelope; walkResponse, not decodeResponse, whose recover
		// would hide a panic.
		page, err := walkResponse(append(append([]byte(`{"data":`), data...), '}'), 1)
		if err != nil {
			return
		}
		if len(page.Issues) != len(page.Raw) {
			t.Fatalf("%d issues but %d raw nodes", len(page.Issues), len(page.Raw))
		}
		if page.HasNextPage && page.EndCursor == "" {
			t.Fatal("hasNextPage without a cursor was accepted")
		}
		if page.NullNodes < 0 || page.NodesNull && (page.NullNodes > 0 || len(page.Issues) > 0) {
			t.Fatalf("null nodes %d, nodes null %v, %d issues", page.NullNodes, page.NodesNull, len(page.Issues))
		}
		// Defects never panics, and an issue it passes is one an incident can be keyed by.
		for i := range page.Issues {
			is := &page.Issues[i]
			if is.Defects() == nil && (is.ID == "" || len(is.ID) > MaxIDBytes || is.CreatedAt.IsZero() || is.Status == "") {
				t.Fatalf("issue %q passes Defects", is.ID)
			}
		}
	})
}

// FuzzDecodeIssue holds the hand-written node decoder to encoding/json's semantics: on any valid
// JSON both must agree on whether the node decodes, and if it does, on every field; invalid JSON
// the decoder must reject.
func FuzzDecodeIssue(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "page_mixed.json")); err == nil {
		var page struct {
			Issues struct{ Nodes []json.RawMessage } `json:"issues"`
		}
		if json.Unmarshal(b, &page) == nil {
			for _, n := range page.Issues.Nodes {
				f.Add([]byte(n))
			}
		}
	}
	for _, seed := range decodeIssueSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, node []byte) {
		var got Issue
		r := &nodeReader{data: node}
		gotErr := r.decodeIssueNode(&got, &nodeArena{})
		if gotErr == nil && !r.atEnd() {
			gotErr = r.syntax("data after the node")
		}
		if !json.Valid(node) {
			// The decoder validates what it skips, so a node it accepts can be written out as it is.
			if gotErr == nil {
				t.Fatalf("decoder accepted invalid JSON: %q", node)
			}
			return
		}
		var want Issue
		wantErr := json.Unmarshal(node, &want)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("encoding/json: %v, decoder: %v\nnode: %s", wantErr, gotErr, node)
		}
		if wantErr == nil && !got.CreatedAt.IsZero() && got.createdAtSent != "" {
			// The string kept as sent is the one decoded into CreatedAt.
			if at, err := time.Parse(time.RFC3339Nano, got.createdAtSent); err != nil || !at.Equal(got.CreatedAt) {
				t.Fatalf("createdAt kept as sent %q does not give %v (%v)", got.createdAtSent, got.CreatedAt, err)
			}
		}
		if wantErr == nil && got.DueAt != nil && got.dueAtSent != "" {
			if at, err := time.Parse(time.RFC3339Nano, got.dueAtSent); err != nil || !at.Equal(*got.DueAt) {
				t.Fatalf("dueAt kept as sent %q does not give %v (%v)", got.dueAtSent, got.DueAt, err)
			}
		}
		got.createdAtSent, got.dueAtSent = "", "" // encoding/json has no such fields
		if wantErr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("decoded differently\nencoding/json: %+v\ndecoder:       %+v\nnode: %s", want, got, node)
		}
	})
}

// decodeIssueSeeds are the corners of encoding/json's semantics the node decoder keeps.
var decodeIssueSeeds = []string{
	`null`,
	`{}`,
	`"x"`,
	`[]`,
	`{"id":"a","ID":"b","Id":null}`,
	`{"ſourceRule":{"name":"folded key"}}`,
	`{"id":"caf\u00e9 \ud83d\ude00 \ud83d lone \\ \" \/ \b\f\n\r\t"}`,
	"{\"id\":\"bad utf8 \xff\xfe end\"}",
	`{"id":1}`,
	`{"id":true}`,
	`{"createdAt":null,"updatedAt":null,"dueAt":"2024-01-02T03:04:05Z","resolvedAt":"bad"}`,
	`{"createdAt":"2024-01-02T03:04:05.123456789+02:00"}`,
	`{"createdAt":"2024-01-02T03:04:05\u005a"}`,
	`{"createdAt":12}`,
	`{"projects":[{"id":"p","projectOwners":[{"name":"a"},null],"securityChampions":[]},null],"projects":[{"slug":"s"}]}`,
	`{"projects":{}}`,
	`{"projects":[1]}`,
	`{"sourceRule":{"name":"x"},"sourceRule":{"id":"y"},"sourceRules":[{"__typename":"Control","securitySubCategories":[{"title":"t","category":{"name":"c","framework":{"name":"f"}}}]}]}`,
	`{"sourceRule":[]}`,
	`{"sourceRule":null,"sourceRules":[{"__typename":"CloudEventRule","id":"cer-1","name":"n"}],"sourceRules":[null]}`,
	`{"sourceRules":{}}`,
	`{"entitySnapshot":{"tags":{"a":"b"},"subscriptionTags":null,"unknown":[1,{"x":[true,false,null,-1.5e3]}]}}`,
	`{"entitySnapshot":null,"serviceTickets":[{"url":"u"}],"notes":[{"createdAt":"2024-01-02T03:04:05Z","user":{"name":"n"},"serviceAccount":null}]}`,
	`{"notes":[{"user":"x"}]}`,
	`{"unknown":{"deep":[[[{}]]]},"id":"after"}`,
	`{"projects":[{"id":"a"},{"id":"b"}],"projects":[{"slug":"x"}],"projects":[{},{}]}`,
	`{"notes":[{"text":"a"},{"text":"b"}],"notes":[],"notes":[null,null]}`,
}
