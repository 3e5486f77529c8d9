package wizdef

import (
	"slices"
	"testing"
)

// TestReasonsFor pins the reasons each write-back action accepts to the values of the Wiz XSOAR
// pack's release notes 2.0.3 (PR #43959): the client refuses the others before any request, and
// the simulator answers them with BAD_USER_INPUT, both from this one list.
func TestReasonsFor(t *testing.T) {
	tests := []struct {
		status string
		want   []string
	}{
		{"REJECTED", []string{"FALSE_POSITIVE", "EXCEPTION", "WONT_FIX"}},
		{"rejected", []string{"FALSE_POSITIVE", "EXCEPTION", "WONT_FIX"}},
		{"RESOLVED", []string{"OBJECT_DELETED", "ISSUE_FIXED", "FALSE_POSITIVE", "EXCEPTION", "WONT_FIX"}},
		{"resolved", []string{"OBJECT_DELETED", "ISSUE_FIXED", "FALSE_POSITIVE", "EXCEPTION", "WONT_FIX"}},
		{"OPEN", nil},
		{"IN_PROGRESS", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := ReasonsFor(tt.status); !slices.Equal(got, tt.want) {
			t.Errorf("ReasonsFor(%q) = %v, want %v", tt.status, got, tt.want)
		}
	}
	all := ResolutionReasons()
	for _, r := range append(RejectReasons(), ResolveReasons()...) {
		if !slices.Contains(all, r) {
			t.Errorf("%s is not a value of the resolutionReason enum", r)
		}
	}
	// The values Wiz calls "unsupported" for write-back are accepted by no action.
	for _, r := range []string{"DETECTION_EXPIRED", "CONTROL_CHANGED", "CONTROL_DISABLED", "CONTROL_DELETED"} {
		if !slices.Contains(all, r) {
			t.Errorf("%s is missing from the resolutionReason enum", r)
		}
		if slices.Contains(RejectReasons(), r) || slices.Contains(ResolveReasons(), r) {
			t.Errorf("%s is accepted by a write-back action", r)
		}
	}
}

// TestEnums pins each enum to WIZ_API.md §3, and each helper to its list.
func TestEnums(t *testing.T) {
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"statuses", Statuses(), []string{"OPEN", "IN_PROGRESS", "RESOLVED", "REJECTED"}},
		{"severities", Severities(), []string{"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}},
		{"issue types", IssueTypes(), []string{"TOXIC_COMBINATION", "THREAT_DETECTION", "CLOUD_CONFIGURATION"}},
		{"source rules", SourceRuleTypes(), []string{"Control", "CloudEventRule", "CloudConfigurationRule"}},
		{"resolution reasons", ResolutionReasons(), []string{"OBJECT_DELETED", "ISSUE_FIXED", "CONTROL_CHANGED",
			"CONTROL_DISABLED", "CONTROL_DELETED", "FALSE_POSITIVE", "EXCEPTION", "WONT_FIX", "DETECTION_EXPIRED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}

	for _, s := range Statuses() {
		if !IsStatus(s) {
			t.Errorf("IsStatus(%q) = false", s)
		}
		if want := s == "RESOLVED" || s == "REJECTED"; Closed(s) != want {
			t.Errorf("Closed(%q) = %v", s, !want)
		}
		if want := Closed(s); (ReasonsFor(s) != nil) != want {
			t.Errorf("ReasonsFor(%q) = %v: only the closing statuses take a reason", s, ReasonsFor(s))
		}
	}
	for _, s := range []string{"", "open", "CLOSED", "OPEN "} {
		if IsStatus(s) || Closed(s) {
			t.Errorf("%q taken for a (closing) status", s)
		}
	}
	for want, s := range Severities() {
		if got, ok := SeverityRank(s); !ok || got != want {
			t.Errorf("SeverityRank(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	if _, ok := SeverityRank("critical"); ok {
		t.Error("SeverityRank accepted a lower-case severity")
	}
	for _, typ := range IssueTypes() {
		if Resolvable(typ) != (typ == "THREAT_DETECTION") {
			t.Errorf("Resolvable(%q) = %v", typ, Resolvable(typ))
		}
	}
}

// TestFreshSlices: a caller that changes a returned list must not change the next caller's.
func TestFreshSlices(t *testing.T) {
	for name, f := range map[string]func() []string{
		"Statuses": Statuses, "Severities": Severities, "IssueTypes": IssueTypes,
		"SourceRuleTypes": SourceRuleTypes, "ResolutionReasons": ResolutionReasons,
		"RejectReasons": RejectReasons, "ResolveReasons": ResolveReasons,
	} {
		a := f()
		a[0] = "CHANGED"
		if f()[0] == "CHANGED" {
			t.Errorf("%s returns a shared slice", name)
		}
	}
}
