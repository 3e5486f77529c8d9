package incident_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// FuzzMap decodes arbitrary bytes as a Wiz issue; whenever that succeeds, Map must not panic, MapJSON
// must encode the incident to the bytes encoding/json gives for Map's incident (or refuse it as too
// large), and the event line must be valid JSON byte-identical to encoding/json's Marshal of the
// event, with and without mapping.fields (MapJSON's two forms of customFields).
func FuzzMap(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(issuesDir, "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `null`, `{"id":null,"sourceRule":null,"sourceRules":[]}`,
		`{"id":"x","sourceRules":[{"name":"\u2028<>&"}],"entitySnapshot":{"tags":{"a":1e999}}}`,
		`{"id":"\ud800","severity":"critical","createdAt":"2025-01-01T00:00:00Z","notes":[{"text":"a"},{"text":"b"}]}`,
	} {
		f.Add([]byte(s))
	}
	mapper, err := incident.NewMapper(config.Mapping{Fields: map[string]string{
		"wiztags":    "entitySnapshot.tags",
		"wizfirst":   "sourceRules.0",
		"wiznotes":   "notes.#.text",
		"wizdetails": "sourceRule.description",
		"wizall":     "@this",
	}}, "https://api.us1.app.wiz.us/graphql")
	if err != nil {
		f.Fatal(err)
	}
	plain, err := incident.NewMapper(config.Mapping{}, "https://api.us1.app.wiz.io/graphql")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var issue wiz.Issue
		if err := json.Unmarshal(data, &issue); err != nil {
			return
		}
		inc := mapper.Map(&issue, data, "Wiz Issue")
		if inc.RawJSON != string(data) && inc.Clipped() == 0 {
			t.Fatal("rawJSON is not the input bytes, and nothing was clipped")
		}
		if len(inc.RawJSON) > incident.MaxRawJSONBytes || !json.Valid([]byte(inc.RawJSON)) {
			t.Fatalf("rawJSON of %d bytes, valid %v", len(inc.RawJSON), json.Valid([]byte(inc.RawJSON)))
		}
		for _, m := range []*incident.Mapper{mapper, plain} {
			incJSON, _, err := m.MapJSON(&issue, data, "Wiz Issue")
			if errors.Is(err, incident.ErrTooLarge) {
				continue
			}
			if err != nil {
				t.Fatalf("MapJSON: %v", err)
			}
			inc := m.Map(&issue, data, "Wiz Issue")
			std, err := json.Marshal(&inc)
			if err != nil {
				t.Fatalf("json.Marshal of Map's incident: %v", err)
			}
			if len(std) <= incident.MaxIncidentBytes && !bytes.Equal(incJSON, std) {
				t.Fatalf("MapJSON differs from json.Marshal of Map's incident:\n%s\n%s", incJSON, std)
			}
			ev := incident.NewEvent("default", incident.KindCreated, &issue, incJSON, now)
			line, err := ev.Line()
			if err != nil {
				t.Fatalf("Line: %v", err)
			}
			if !json.Valid(line) {
				t.Fatalf("invalid JSON: %s", line)
			}
			std, err = json.Marshal(&ev)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			if !bytes.Equal(line, std) {
				t.Fatalf("Line differs from json.Marshal:\n%s\n%s", line, std)
			}
		}
	})
}
