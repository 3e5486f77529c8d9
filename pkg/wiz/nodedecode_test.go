package wiz

import (
	"encoding/json"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// The fuzzer rarely builds well-formed nodes with repeated and case-folded keys at depth; this
// generator builds only such nodes (from Issue's own shape), and the decoder must match
// encoding/json on every one of them.
func TestDecodeIssueMatchesEncodingJSONOnGeneratedNodes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for it := 0; it < 30000; it++ {
		node := genNodeObject(rng, "issue", 0)
		var want Issue
		wantErr := json.Unmarshal([]byte(node), &want)
		var got Issue
		r := &nodeReader{data: []byte(node)}
		gotErr := r.decodeIssueNode(&got, &nodeArena{})
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("encoding/json: %v, decoder: %v\nnode: %s", wantErr, gotErr, node)
		}
		got.createdAtSent, got.dueAtSent = "", ""
		if wantErr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("decoded differently\nencoding/json: %+v\ndecoder:       %+v\nnode: %s", want, got, node)
		}
	}
}

// genNodeKeys are the keys each object kind may get: its fields, case variants and unknown keys.
var genNodeKeys = map[string][]string{
	"issue": {"id", "ID", "sourceRule", "sourceRules", "type", "createdAt", "updatedAt", "dueAt", "projects",
		"entitySnapshot", "serviceTickets", "notes", "SEVERITY", "status", "x"},
	"rule":    {"__typename", "id", "name", "securitySubCategories", "type", "Type", "description"},
	"sub":     {"title", "category"},
	"cat":     {"name", "framework"},
	"name":    {"name", "NAME", "other"},
	"risk":    {"businessImpact", "BusinessImpact"},
	"project": {"id", "slug", "riskProfile", "projectOwners", "securityChampions"},
	"person":  {"name", "email", "EMAIL"},
	"entity":  {"id", "tags", "subscriptionTags", "region", "Region"},
	"ticket":  {"url", "name", "externalId"},
	"note":    {"id", "createdAt", "updatedAt", "user", "serviceAccount", "text"},
}

// genNodeKind is the value kind of a key (per object kind where a name is shared).
func genNodeKind(obj, key string) string {
	switch obj + "." + strings.ToLower(key) {
	case "cat.framework":
		return "obj:name"
	case "project.riskprofile":
		return "obj:risk"
	}
	return map[string]string{
		"sourcerule": "obj:rule", "sourcerules": "arr:rule", "securitysubcategories": "arr:sub", "category": "obj:cat",
		"projects": "arr:project", "projectowners": "arr:person", "securitychampions": "arr:person",
		"entitysnapshot": "obj:entity", "servicetickets": "arr:ticket", "notes": "arr:note", "user": "obj:person",
		"serviceaccount": "obj:person", "tags": "raw", "subscriptiontags": "raw", "createdat": "time",
		"updatedat": "time", "dueat": "time",
	}[strings.ToLower(key)]
}

func genNodeValue(rng *rand.Rand, kind string, depth int) string {
	if rng.Intn(8) == 0 {
		return "null"
	}
	switch {
	case kind == "time":
		return []string{`"2024-01-02T03:04:05Z"`, `"2024-01-02T03:04:05.5+01:00"`, `null`, `"bad"`}[rng.Intn(4)]
	case kind == "raw":
		return []string{`{"a":1}`, `[1, 2]`, `"s"`, `null`, ` { } `}[rng.Intn(5)]
	case strings.HasPrefix(kind, "obj:"):
		return genNodeObject(rng, kind[4:], depth+1)
	case strings.HasPrefix(kind, "arr:"):
		parts := make([]string, rng.Intn(4))
		for i := range parts {
			if rng.Intn(6) == 0 {
				parts[i] = "null"
			} else {
				parts[i] = genNodeObject(rng, kind[4:], depth+1)
			}
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return []string{`"a"`, `"b"`, `"\u00e9"`, `null`, `1`}[rng.Intn(5)]
}

func genNodeObject(rng *rand.Rand, obj string, depth int) string {
	keys := genNodeKeys[obj]
	n := rng.Intn(5)
	if depth > 3 {
		n = rng.Intn(2)
	}
	parts := make([]string, n)
	for i := range parts {
		k := keys[rng.Intn(len(keys))]
		b, _ := json.Marshal(k)
		parts[i] = string(b) + ":" + genNodeValue(rng, genNodeKind(obj, k), depth)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
