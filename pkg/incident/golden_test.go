package incident_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/classify"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/incidents")

const (
	issuesDir    = "../../testdata/issues"
	incidentsDir = "../../testdata/incidents"
	commercial   = "https://api.us17.app.wiz.io/graphql"
	fedramp      = "https://api.us30.app.wiz.us/graphql"
)

// goldenClassify is the classify section the golden files are produced with.
var goldenClassify = config.Classify{Rules: []config.ClassifyRule{
	{IncidentType: "Wiz Threat", IssueType: []string{"THREAT_DETECTION"}},
	{IncidentType: "Wiz Critical Toxic Combination", IssueType: []string{"TOXIC_COMBINATION"}, Severity: []string{"CRITICAL"}},
}}

// goldenMapping adds two customFields, one a string and one an object, and overrides none.
var goldenMapping = config.Mapping{Fields: map[string]string{
	"wizresourcename": "entitySnapshot.name",
	"wizresourcetags": "entitySnapshot.tags",
}}

// loadIssue reads a testdata issue and returns it decoded plus its compact bytes, which stand for
// the exact bytes Wiz sends (the files are indented for review).
func loadIssue(t testing.TB, name string) (*wiz.Issue, []byte) {
	t.Helper()
	pretty, err := os.ReadFile(filepath.Join(issuesDir, name))
	if err != nil {
		t.Fatalf("read issue: %v", err)
	}
	var raw bytes.Buffer
	if err := json.Compact(&raw, pretty); err != nil {
		t.Fatalf("compact %s: %v", name, err)
	}
	var issue wiz.Issue
	if err := json.Unmarshal(raw.Bytes(), &issue); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return &issue, raw.Bytes()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(issuesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d issue files in %s, want at least 6", len(files), issuesDir)
	}
	classifier, err := classify.New(goldenClassify)
	if err != nil {
		t.Fatal(err)
	}
	emitted := time.Date(2025, 5, 20, 12, 0, 0, 0, time.UTC)
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			apiURL := commercial
			if strings.HasPrefix(name, "fedramp") {
				apiURL = fedramp
			}
			mapper, err := incident.NewMapper(goldenMapping, apiURL)
			if err != nil {
				t.Fatal(err)
			}
			issue, raw := loadIssue(t, name)
			inc := mapper.Map(issue, raw, classifier.Classify(issue))
			if inc.RawJSON != string(raw) {
				t.Errorf("rawJSON is not the bytes Wiz sent")
			}
			incJSON, clipped, err := mapper.MapJSON(issue, raw, classifier.Classify(issue))
			if err != nil || clipped != 0 {
				t.Fatalf("MapJSON: clipped %d, %v", clipped, err)
			}
			if std, _ := json.Marshal(&inc); !bytes.Equal(incJSON, std) {
				t.Errorf("MapJSON differs from json.Marshal of Map's incident:\n%s\n%s", incJSON, std)
			}
			ev := incident.NewEvent("default", incident.KindCreated, issue, incJSON, emitted)
			line, err := ev.Line()
			if err != nil {
				t.Fatalf("Line: %v", err)
			}
			std, err := json.Marshal(&ev)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			if !bytes.Equal(line, std) {
				t.Errorf("Line differs from json.Marshal:\n%s\n%s", line, std)
			}

			got, err := json.MarshalIndent(&ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join(incidentsDir, name)
			if *update {
				if err := os.MkdirAll(incidentsDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("incident differs from %s (rerun with -update and review the diff):\n%s", golden, got)
			}
		})
	}
}

// TestMapConcurrent shares one Mapper and Classifier between goroutines (as the feeds of an
// instance do); run with -race. Every goroutine must produce the same bytes.
func TestMapConcurrent(t *testing.T) {
	issue, raw := loadIssue(t, "control-toxic-combination.json")
	mapper, err := incident.NewMapper(goldenMapping, commercial)
	if err != nil {
		t.Fatal(err)
	}
	classifier, err := classify.New(goldenClassify)
	if err != nil {
		t.Fatal(err)
	}
	encode := func() (string, error) {
		b, _, err := mapper.MapJSON(issue, raw, classifier.Classify(issue))
		return string(b), err
	}
	want, err := encode()
	if err != nil {
		t.Fatal(err)
	}
	const workers = 8
	results := make(chan string, workers)
	for range workers {
		go func() {
			out := ""
			for range 50 {
				got, err := encode()
				if err != nil || got != want {
					out = "mismatch"
					break
				}
				out = got
			}
			results <- out
		}()
	}
	for range workers {
		if got := <-results; got != want {
			t.Errorf("concurrent Map produced different output")
		}
	}
}
