package classify

import (
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

func threat() *wiz.Issue {
	return &wiz.Issue{
		ID:             "9d0c1a55-1c3e-4e0a-9c63-1f8b7a2a1001",
		Type:           "THREAT_DETECTION",
		Severity:       "HIGH",
		Status:         "OPEN",
		SourceRule:     &wiz.SourceRule{Typename: "CloudEventRule", ID: "cer-awsguardduty-recon", Name: "GuardDuty recon"},
		EntitySnapshot: &wiz.Entity{CloudPlatform: "AWS"},
		Projects:       []wiz.Project{{ID: "p-1"}, {ID: "p-2"}},
	}
}

func TestClassify(t *testing.T) {
	cfg := config.Classify{
		DefaultType: "Wiz Default",
		Rules: []config.ClassifyRule{
			{IncidentType: "Critical Threat", IssueType: []string{"THREAT_DETECTION"}, Severity: []string{"CRITICAL"}},
			{IncidentType: "Azure Anything", CloudPlatform: []string{"azure"}},
			{IncidentType: "Project Two", ProjectIDs: []string{"p-9", "p-2"}},
			{IncidentType: "Controls", SourceRuleType: []string{"Control"}},
			{IncidentType: "Closed", Status: []string{"resolved", "REJECTED"}},
			{IncidentType: "Threat", IssueType: []string{"THREAT_DETECTION"}},
		},
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tests := []struct {
		name  string
		issue func() *wiz.Issue
		want  string
	}{
		{"nil issue gets default", func() *wiz.Issue { return nil }, "Wiz Default"},
		{"empty issue gets default", func() *wiz.Issue { return &wiz.Issue{} }, "Wiz Default"},
		{"fields AND: HIGH threat skips the critical rule", func() *wiz.Issue {
			i := threat()
			i.Projects = nil
			return i
		}, "Threat"},
		{"critical threat matches the first rule", func() *wiz.Issue {
			i := threat()
			i.Severity = "CRITICAL"
			return i
		}, "Critical Threat"},
		{"cloud platform case-insensitive", func() *wiz.Issue {
			i := threat()
			i.EntitySnapshot.CloudPlatform = "Azure"
			return i
		}, "Azure Anything"},
		{"null entity snapshot does not match cloud_platform", func() *wiz.Issue {
			i := threat()
			i.EntitySnapshot = nil
			return i
		}, "Project Two"},
		{"any project id (list OR)", func() *wiz.Issue {
			i := threat()
			i.Type = "CLOUD_CONFIGURATION"
			return i
		}, "Project Two"},
		{"source rule type from sourceRules list", func() *wiz.Issue {
			return &wiz.Issue{Type: "TOXIC_COMBINATION", Status: "OPEN",
				SourceRules: []wiz.SourceRule{{Typename: "Control", ID: "wc-id-1335"}}}
		}, "Controls"},
		{"null source rule does not match source_rule_type", func() *wiz.Issue {
			return &wiz.Issue{Type: "TOXIC_COMBINATION", Status: "RESOLVED"}
		}, "Closed"},
		{"nothing matches", func() *wiz.Issue {
			return &wiz.Issue{Type: "CLOUD_CONFIGURATION", Status: "OPEN", Severity: "LOW",
				SourceRule: &wiz.SourceRule{Typename: "CloudConfigurationRule"}}
		}, "Wiz Default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Classify(tt.issue()); got != tt.want {
				t.Errorf("Classify = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClassifyDefaultsAndCatchAll(t *testing.T) {
	c, err := New(config.Classify{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Classify(threat()); got != DefaultType {
		t.Errorf("no rules: got %q, want %q", got, DefaultType)
	}
	if c.DefaultIncidentType() != DefaultType {
		t.Errorf("DefaultIncidentType = %q", c.DefaultIncidentType())
	}
	c, err = New(config.Classify{Rules: []config.ClassifyRule{{IncidentType: "Everything"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Classify(&wiz.Issue{}); got != "Everything" {
		t.Errorf("empty rule must match everything, got %q", got)
	}
}

// The default config maps every issue to "Wiz Issue", threats included: the Wiz XSOAR pack installs
// the incident types "Wiz Issue" and "WizDefend Detection" only (Packs/Wiz IncidentTypes/), so a
// built-in rule naming another type would create incidents of a type XSOAR does not have.
func TestDefaultConfigMapsEveryIssueToWizIssue(t *testing.T) {
	c, err := New(config.Default().Classify)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range wizdef.IssueTypes() {
		t.Run(typ, func(t *testing.T) {
			i := threat()
			i.Type = typ
			if got := c.Classify(i); got != "Wiz Issue" {
				t.Errorf("Classify(%s) = %q, want Wiz Issue", typ, got)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Classify
		want []string
	}{
		{"empty incident type", config.Classify{Rules: []config.ClassifyRule{
			{IncidentType: "ok"}, {IncidentType: "  ", IssueType: []string{"THREAT_DETECTION"}},
		}}, []string{"classify.rules[1].incident_type: must not be empty"}},
		{"unknown enum values", config.Classify{Rules: []config.ClassifyRule{
			{IncidentType: "x", IssueType: []string{"THREAT"}, Severity: []string{"SEVERE", "HIGH"},
				Status: []string{"CLOSED"}, SourceRuleType: []string{"Rule"}},
		}}, []string{
			`classify.rules[0].issue_type: unknown value "THREAT"`,
			`classify.rules[0].severity: unknown value "SEVERE"`,
			`classify.rules[0].status: unknown value "CLOSED"`,
			`classify.rules[0].source_rule_type: unknown value "Rule"`,
		}},
		{"empty list entries", config.Classify{Rules: []config.ClassifyRule{
			{IncidentType: "a"}, {IncidentType: "b"},
			{IncidentType: "c", CloudPlatform: []string{"AWS", ""}, ProjectIDs: []string{""}},
		}}, []string{
			"classify.rules[2].cloud_platform[1]: must not be empty",
			"classify.rules[2].project_ids[0]: must not be empty",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err == nil {
				t.Fatalf("New succeeded (%v), want error", c)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d error lines, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

// BenchmarkClassify walks a realistic rule list where the issue matches only the default.
func BenchmarkClassify(b *testing.B) {
	c, err := New(config.Classify{Rules: []config.ClassifyRule{
		{IncidentType: "Critical Threat", IssueType: []string{"THREAT_DETECTION"}, Severity: []string{"CRITICAL"}},
		{IncidentType: "Azure", CloudPlatform: []string{"Azure", "AKS"}},
		{IncidentType: "Prod", ProjectIDs: []string{"p-7", "p-8", "p-9"}},
		{IncidentType: "Controls", SourceRuleType: []string{"Control"}, Status: []string{"OPEN", "IN_PROGRESS"}},
		{IncidentType: "Threat", IssueType: []string{"THREAT_DETECTION"}, Severity: []string{"LOW", "MEDIUM"}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	issue := threat()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if c.Classify(issue) != DefaultType {
			b.Fatal("unexpected type")
		}
	}
}
