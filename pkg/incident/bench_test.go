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

// BenchmarkAppendJSON encodes one event (the JSONL sink's per-event cost).
func BenchmarkAppendJSON(b *testing.B) {
	issue, raw := loadIssue(b, "control-toxic-combination.json")
	m, err := incident.NewMapper(benchMapping, commercial)
	if err != nil {
		b.Fatal(err)
	}
	ev := incident.NewEvent("default", incident.KindCreated, issue, m.Map(issue, raw, "Wiz Issue"), time.Now())
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = ev.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkMapAndEncode is what the feed's mapper does per issue without mapping.fields: map, then
// encode, through Map (every built-in custom field boxed into the map) or MapCompact.
func BenchmarkMapAndEncode(b *testing.B) {
	issue, raw := loadIssue(b, "control-toxic-combination.json")
	m, err := incident.NewMapper(config.Mapping{}, commercial)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64<<10)
	b.Run("Map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			inc := m.Map(issue, raw, "Wiz Issue")
			if buf, err = inc.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MapCompact", func(b *testing.B) {
		var scratch []incident.CustomField
		b.ReportAllocs()
		for b.Loop() {
			inc := m.MapCompact(issue, raw, "Wiz Issue", &scratch)
			if buf, err = inc.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
