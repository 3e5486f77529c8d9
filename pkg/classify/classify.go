// Package classify turns a Wiz issue into an XSOAR incident type with ordered rules from the config
// (classify.rules): the first rule whose every non-empty list matches wins, else the default type.
package classify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// DefaultType is the incident type used when classify.default_type is empty. It is the type the Wiz
// XSOAR pack's classifier maps every issue to (WIZ_API.md §6).
const DefaultType = "Wiz Issue"

// Classifier maps issues to incident types. It is immutable after New and safe for concurrent use.
type Classifier struct {
	defaultType string
	rules       []rule
}

// rule is a validated config.ClassifyRule. A nil list means "any value"; every comparison is
// ASCII case-insensitive, so "aws", "AWS" and "Aws" all match a cloudPlatform of "AWS".
type rule struct {
	incidentType   string
	issueType      []string
	severity       []string
	status         []string
	sourceRuleType []string
	cloudPlatform  []string
	projectIDs     []string
}

// New validates cfg and builds a Classifier. Every problem is reported, one line per key, naming the
// rule index (e.g. "classify.rules[2].incident_type: must not be empty"). Enum lists (issue_type,
// severity, status, source_rule_type) must hold values Wiz uses (WIZ_API.md §3), so a typo cannot
// silently make a rule never match; cloud_platform and project_ids accept any non-empty string because
// Wiz keeps adding platforms. An empty default_type means DefaultType.
func New(cfg config.Classify) (*Classifier, error) {
	c := &Classifier{defaultType: strings.TrimSpace(cfg.DefaultType)}
	if c.defaultType == "" {
		c.defaultType = DefaultType
	}
	var errs []error
	for i, r := range cfg.Rules {
		key := fmt.Sprintf("classify.rules[%d]", i)
		compiled := rule{incidentType: strings.TrimSpace(r.IncidentType)}
		if compiled.incidentType == "" {
			errs = append(errs, fmt.Errorf("%s.incident_type: must not be empty", key))
		}
		var err error
		if compiled.issueType, err = enumList(key+".issue_type", r.IssueType, wizdef.IssueTypes()); err != nil {
			errs = append(errs, err)
		}
		if compiled.severity, err = enumList(key+".severity", r.Severity, wizdef.Severities()); err != nil {
			errs = append(errs, err)
		}
		if compiled.status, err = enumList(key+".status", r.Status, wizdef.Statuses()); err != nil {
			errs = append(errs, err)
		}
		if compiled.sourceRuleType, err = enumList(key+".source_rule_type", r.SourceRuleType, wizdef.SourceRuleTypes()); err != nil {
			errs = append(errs, err)
		}
		if compiled.cloudPlatform, err = freeList(key+".cloud_platform", r.CloudPlatform); err != nil {
			errs = append(errs, err)
		}
		if compiled.projectIDs, err = freeList(key+".project_ids", r.ProjectIDs); err != nil {
			errs = append(errs, err)
		}
		c.rules = append(c.rules, compiled)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// enumList checks that every value is one of allowed (case-insensitively) and returns the values in
// their canonical spelling; nil for an empty list.
func enumList(key string, values, allowed []string) ([]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(values))
	var bad []string
	for _, v := range values {
		canon := ""
		for _, a := range allowed {
			if strings.EqualFold(strings.TrimSpace(v), a) {
				canon = a
				break
			}
		}
		if canon == "" {
			bad = append(bad, fmt.Sprintf("%q", v))
			continue
		}
		out = append(out, canon)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: unknown value %s (allowed: %s)", key, strings.Join(bad, ", "), strings.Join(allowed, ", "))
	}
	return out, nil
}

// freeList rejects empty strings, which would never match and are almost always a YAML slip.
func freeList(key string, values []string) ([]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(values))
	for i, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, fmt.Errorf("%s[%d]: must not be empty", key, i)
		}
		out = append(out, v)
	}
	return out, nil
}

// Classify returns the incident type of the first rule that matches issue, else the default type.
// A rule field that needs data the issue lacks (source_rule_type without a source rule,
// cloud_platform without an entity snapshot or with a null platform, project_ids without projects)
// does not match. A nil issue gets the default type.
func (c *Classifier) Classify(issue *wiz.Issue) string {
	if issue == nil {
		return c.defaultType
	}
	for i := range c.rules {
		if c.rules[i].matches(issue) {
			return c.rules[i].incidentType
		}
	}
	return c.defaultType
}

// DefaultIncidentType returns the type given to issues no rule matches.
func (c *Classifier) DefaultIncidentType() string { return c.defaultType }

func (r *rule) matches(issue *wiz.Issue) bool {
	if r.issueType != nil && !contains(r.issueType, issue.Type) {
		return false
	}
	if r.severity != nil && !contains(r.severity, issue.Severity) {
		return false
	}
	if r.status != nil && !contains(r.status, issue.Status) {
		return false
	}
	if r.sourceRuleType != nil {
		sr := issue.Rule()
		if sr == nil || !contains(r.sourceRuleType, sr.Typename) {
			return false
		}
	}
	if r.cloudPlatform != nil {
		if issue.EntitySnapshot == nil || !contains(r.cloudPlatform, issue.EntitySnapshot.CloudPlatform) {
			return false
		}
	}
	if r.projectIDs != nil {
		found := false
		for i := range issue.Projects {
			if contains(r.projectIDs, issue.Projects[i].ID) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// contains reports whether v equals one of list, ASCII case-insensitively. An empty v never matches:
// a null in the issue is not a value any rule names.
func contains(list []string, v string) bool {
	if v == "" {
		return false
	}
	for _, l := range list {
		if strings.EqualFold(l, v) {
			return true
		}
	}
	return false
}
