package incident_test

import (
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/classify"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
)

// benchMapping is a realistic mapping.fields section: two additions and one override.
var benchMapping = config.Mapping{Fields: map[string]string{
	"wizresourcename": "entitySnapshot.name",
	"wizresourcetags": "entitySnapshot.tags",
	"wizdetails":      "sourceRule.resolutionRecommendation",
}}

// BenchmarkMap maps the richest testdata issue (the target is classify + map <= 20 µs per issue).
func BenchmarkMap(b *testing.B) {
	issue, raw := loadIssue(b, "control-toxic-combination.json")
	m, err := incident.NewMapper(benchMapping, commercial)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		inc := m.Map(issue, raw, "Wiz Issue")
		if inc.DbotMirrorID == "" {
			b.Fatal("empty incident")
		}
	}
}

// BenchmarkClassifyAndMap is the per-issue pipeline cost the 20 µs target is about.
func BenchmarkClassifyAndMap(b *testing.B) {
	issue, raw := loadIssue(b, "control-toxic-combination.json")
	m, err := incident.NewMapper(benchMapping, commercial)
	if err != nil {
		b.Fatal(err)
	}
	c, err := classify.New(goldenClassify)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		inc := m.Map(issue, raw, c.Classify(issue))
		if inc.Type == "" {
			b.Fatal("no type")
		}
	}
}

// BenchmarkMapJSON is what the feed's mapper does per issue: map, then marshal (json.go).
func BenchmarkMapJSON(b *testing.B) {
	issue, raw := loadIssue(b, "control-toxic-combination.json")
	m, err := incident.NewMapper(config.Mapping{}, commercial)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.MapJSON(issue, raw, "Wiz Issue"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventLine builds one event line from the incident's JSON (once per event, at commit).
func BenchmarkEventLine(b *testing.B) {
	issue, raw := loadIssue(b, "control-toxic-combination.json")
	m, err := incident.NewMapper(benchMapping, commercial)
	if err != nil {
		b.Fatal(err)
	}
	incJSON, _, err := m.MapJSON(issue, raw, "Wiz Issue")
	if err != nil {
		b.Fatal(err)
	}
	ev := incident.NewEvent("default", incident.KindCreated, issue, incJSON, time.Now())
	b.ReportAllocs()
	b.SetBytes(int64(len(incJSON)))
	for b.Loop() {
		if _, err := ev.Line(); err != nil {
			b.Fatal(err)
		}
	}
}
