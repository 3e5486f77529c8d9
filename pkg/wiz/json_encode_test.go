package wiz

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	graphql "github.com/hasura/go-graphql-client"
)

// The page request encoded by go-json reads back, with encoding/json, as the payload it encodes:
// the query text with its quotes, backslashes and newlines, and variables of every kind a page
// sends (strings, numbers, lists, nested filters, times, nil).
func TestPageRequestEncodesAsEncodingJSON(t *testing.T) {
	vars := map[string]any{
		"first": 200,
		"after": "eyJjdXJzb3IiOiAiXHUwMDNjIn0=",
		"filterBy": map[string]any{
			"status":    []string{"OPEN", "IN_PROGRESS"},
			"createdAt": map[string]any{"after": time.Date(2026, 12, 6, 20, 0, 0, 123456000, time.UTC)},
			"project":   nil,
			"search":    "quote \" backslash \\ tab \t <html> & \u2028",
		},
		"orderBy": map[string]any{"field": "CREATED_AT", "direction": "ASC"},
	}
	in := graphql.GraphQLRequestPayload{Query: IssuesQuery + "\n# \"quoted\" \\ </script>", Variables: vars, OperationName: issuesOp}
	got, err := encodeJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("go-json's request is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("go-json's request differs from encoding/json's:\n%s\n%s", got, want)
	}
}
