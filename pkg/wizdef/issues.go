// Package wizdef holds what Wiz's public API defines, once: the issue enums (status, severity,
// type, source-rule typename, resolution reason), which reasons each write-back action accepts,
// the API's limits, the OAuth token hosts with their audiences, and the default token URL for an
// API host. Each fact names its public source (WIZ_API.md gathers them). It imports nothing from
// wizfetch, so the client (pkg/wiz), the simulator (pkg/wizsim), the config and everything else
// can share it without an import cycle.
package wizdef

import "strings"

// Issue statuses: the IssueStatus enum (WIZ_API.md §3).
const (
	StatusOpen       = "OPEN"
	StatusInProgress = "IN_PROGRESS"
	StatusResolved   = "RESOLVED"
	StatusRejected   = "REJECTED"
)

// Statuses returns the issue statuses, in a fresh slice.
func Statuses() []string {
	return []string{StatusOpen, StatusInProgress, StatusResolved, StatusRejected}
}

// IsStatus reports whether s is an issue status (exact spelling).
func IsStatus(s string) bool {
	switch s {
	case StatusOpen, StatusInProgress, StatusResolved, StatusRejected:
		return true
	}
	return false
}

// Closed reports whether status is one of the two closing statuses, the ones that carry a
// resolution reason (RESOLVED, REJECTED).
func Closed(status string) bool {
	return status == StatusResolved || status == StatusRejected
}

// Issue severities: the Severity enum (WIZ_API.md §3), lowest first.
const (
	SeverityInformational = "INFORMATIONAL"
	SeverityLow           = "LOW"
	SeverityMedium        = "MEDIUM"
	SeverityHigh          = "HIGH"
	SeverityCritical      = "CRITICAL"
)

// Severities returns the issue severities lowest first, in a fresh slice.
func Severities() []string {
	return []string{SeverityInformational, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}
}

// SeverityRank returns a severity's place in Severities (0 for INFORMATIONAL up to 4 for
// CRITICAL), the order of Wiz's SEVERITY sort; ok is false for anything else.
func SeverityRank(s string) (rank int, ok bool) {
	switch s {
	case SeverityInformational:
		return 0, true
	case SeverityLow:
		return 1, true
	case SeverityMedium:
		return 2, true
	case SeverityHigh:
		return 3, true
	case SeverityCritical:
		return 4, true
	}
	return 0, false
}

// Issue types: the IssueType enum (WIZ_API.md §3).
const (
	TypeToxicCombination   = "TOXIC_COMBINATION"
	TypeThreatDetection    = "THREAT_DETECTION"
	TypeCloudConfiguration = "CLOUD_CONFIGURATION"
)

// IssueTypes returns the issue types, in a fresh slice.
func IssueTypes() []string {
	return []string{TypeToxicCombination, TypeThreatDetection, TypeCloudConfiguration}
}

// Resolvable reports whether an issue of type issueType may be set RESOLVED through the API: only
// THREAT_DETECTION issues may; Wiz refuses the others ("changing to resolved status is not
// allowed") and they must be REJECTED instead (WIZ_API.md §5).
func Resolvable(issueType string) bool { return issueType == TypeThreatDetection }

// Source-rule typenames: the members of the sourceRule (and sourceRules) union, as
// sourceRule.__typename gives them (WIZ_API.md §3, the fragments of the Wiz XSOAR pack's query;
// §10 for sourceRules).
const (
	RuleControl                = "Control"
	RuleCloudEventRule         = "CloudEventRule"
	RuleCloudConfigurationRule = "CloudConfigurationRule"
)

// SourceRuleTypes returns the source-rule typenames, in a fresh slice.
func SourceRuleTypes() []string {
	return []string{RuleControl, RuleCloudEventRule, RuleCloudConfigurationRule}
}

// Resolution reasons: the IssueResolutionReason enum (WIZ_API.md §3).
const (
	ReasonObjectDeleted    = "OBJECT_DELETED"
	ReasonIssueFixed       = "ISSUE_FIXED"
	ReasonControlChanged   = "CONTROL_CHANGED"
	ReasonControlDisabled  = "CONTROL_DISABLED"
	ReasonControlDeleted   = "CONTROL_DELETED"
	ReasonFalsePositive    = "FALSE_POSITIVE"
	ReasonException        = "EXCEPTION"
	ReasonWontFix          = "WONT_FIX"
	ReasonDetectionExpired = "DETECTION_EXPIRED"
)

// ResolutionReasons returns every value of the resolution-reason enum, in a fresh slice. Issues
// read from Wiz may carry any of them; a write-back accepts only those of RejectReasons and
// ResolveReasons.
func ResolutionReasons() []string {
	return []string{ReasonObjectDeleted, ReasonIssueFixed, ReasonControlChanged, ReasonControlDisabled,
		ReasonControlDeleted, ReasonFalsePositive, ReasonException, ReasonWontFix, ReasonDetectionExpired}
}

// RejectReasons returns the resolution reasons Wiz accepts when an issue is set REJECTED, in a
// fresh slice. The other values of the enum (DETECTION_EXPIRED, CONTROL_CHANGED,
// CONTROL_DISABLED, CONTROL_DELETED) are "unsupported" for write-back (Wiz XSOAR pack release
// notes 2.0.3, "Removed unsupported values", demisto/content PR #43959, WZ-100065; WIZ_API.md §10).
func RejectReasons() []string {
	return []string{ReasonFalsePositive, ReasonException, ReasonWontFix}
}

// ResolveReasons returns the resolution reasons Wiz accepts when an issue (a THREAT_DETECTION:
// see Resolvable) is set RESOLVED, in a fresh slice (same sources as RejectReasons).
func ResolveReasons() []string {
	return []string{ReasonObjectDeleted, ReasonIssueFixed, ReasonFalsePositive, ReasonException, ReasonWontFix}
}

// ReasonsFor returns the resolution reasons Wiz accepts with a change to status (RESOLVED or
// REJECTED, any letter case), or nil for a status that takes no reason.
func ReasonsFor(status string) []string {
	switch strings.ToUpper(status) {
	case StatusResolved:
		return ResolveReasons()
	case StatusRejected:
		return RejectReasons()
	}
	return nil
}

// MaxPageSize is the largest `first` the issues query accepts (WIZ_API.md §2: "first at most 500
// for issues").
const MaxPageSize = 500

// MaxNoteLen is the longest note text, in characters, Wiz accepts: longer notes are rejected
// (WIZ_API.md §5, §10; the Wiz XSOAR pack cuts notes to 1400 characters to stay under it,
// demisto/content PR #43959).
const MaxNoteLen = 1500
