package incident

import (
	"strings"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// builtinFields are the customFields Map itself may set, with their XSOAR cliNames as JSON names;
// an empty one is left out. Every value is a JSON string, because every one of these fields that
// the Wiz pack defines is a string field in XSOAR: the "type" of
// Packs/Wiz/IncidentFields/incidentfield-*.json in demisto/content (read 2026-12) is
//
//	cliName                           pack type   value sent
//	wizcloudaccount                   shortText   entitySnapshot.subscriptionExternalId
//	wizcloudaccountname               shortText   entitySnapshot.subscriptionName
//	wizcloudplatform                  shortText   entitySnapshot.cloudPlatform
//	wizdetails                        shortText   the rule's description
//	wizissueduedate                   shortText   dueAt as Wiz sent it (not an XSOAR date field)
//	wizissueid                        shortText   id
//	wizissuenote                      shortText   the notes' texts, "\n\n"-joined
//	wizissueprojects                  shortText   project names (else ids), ", "-joined
//	wizissueresolutionrecommendation  markdown    the Control rule's resolutionRecommendation
//	wizissueurl                       url         the portal link (IssueURL)
//	wizprojectowners                  shortText   distinct projectOwners names, ", "-joined
//	wizprojectsecuritychampions       shortText   distinct securityChampions names, ", "-joined
//	wizresourcecloudid                shortText   entitySnapshot.providerId
//	wizresourceid                     shortText   entitySnapshot.id
//	wizresourcenativetype             shortText   entitySnapshot.nativeType
//	wizresourceregion                 shortText   entitySnapshot.region
//	wizresourcetype                   shortText   entitySnapshot.type
//
// wizissueseverity, wizissuestatus and wizissuetype are wizfetch's own (the pack has no such fields):
// strings too. A JSON list sent to a shortText field is what WIZ_API.md §10 warns against.
//
// The fields are in the order of their names, the order in which encoding/json writes a map's keys,
// so this struct marshals to the bytes of the map Map puts in Incident.CustomFields. MapJSON
// marshals the struct when mapping.fields set nothing on the issue: a struct of strings costs a
// fraction of a map of interfaces to marshal, and it is the common case (TestBuiltinFieldsOrder and
// FuzzMap hold the two forms to the same bytes).
type builtinFields struct {
	CloudAccount                  string `json:"wizcloudaccount,omitempty"`
	CloudAccountName              string `json:"wizcloudaccountname,omitempty"`
	CloudPlatform                 string `json:"wizcloudplatform,omitempty"`
	Details                       string `json:"wizdetails,omitempty"`
	IssueDueDate                  string `json:"wizissueduedate,omitempty"`
	IssueID                       string `json:"wizissueid,omitempty"`
	IssueNote                     string `json:"wizissuenote,omitempty"`
	IssueProjects                 string `json:"wizissueprojects,omitempty"`
	IssueResolutionRecommendation string `json:"wizissueresolutionrecommendation,omitempty"`
	IssueSeverity                 string `json:"wizissueseverity,omitempty"`
	IssueStatus                   string `json:"wizissuestatus,omitempty"`
	IssueType                     string `json:"wizissuetype,omitempty"`
	IssueURL                      string `json:"wizissueurl,omitempty"`
	ProjectOwners                 string `json:"wizprojectowners,omitempty"`
	ProjectSecurityChampions      string `json:"wizprojectsecuritychampions,omitempty"`
	ResourceCloudID               string `json:"wizresourcecloudid,omitempty"`
	ResourceID                    string `json:"wizresourceid,omitempty"`
	ResourceNativeType            string `json:"wizresourcenativetype,omitempty"`
	ResourceRegion                string `json:"wizresourceregion,omitempty"`
	ResourceType                  string `json:"wizresourcetype,omitempty"`
}

// builtinField is one of builtinFields: its cliName and its value.
type builtinField struct {
	cliName string
	value   *string
}

// fields lists f's fields with their cliNames (the JSON names of their tags), in order.
func (f *builtinFields) fields() [20]builtinField {
	return [...]builtinField{
		{"wizcloudaccount", &f.CloudAccount},
		{"wizcloudaccountname", &f.CloudAccountName},
		{"wizcloudplatform", &f.CloudPlatform},
		{"wizdetails", &f.Details},
		{"wizissueduedate", &f.IssueDueDate},
		{"wizissueid", &f.IssueID},
		{"wizissuenote", &f.IssueNote},
		{"wizissueprojects", &f.IssueProjects},
		{"wizissueresolutionrecommendation", &f.IssueResolutionRecommendation},
		{"wizissueseverity", &f.IssueSeverity},
		{"wizissuestatus", &f.IssueStatus},
		{"wizissuetype", &f.IssueType},
		{"wizissueurl", &f.IssueURL},
		{"wizprojectowners", &f.ProjectOwners},
		{"wizprojectsecuritychampions", &f.ProjectSecurityChampions},
		{"wizresourcecloudid", &f.ResourceCloudID},
		{"wizresourceid", &f.ResourceID},
		{"wizresourcenativetype", &f.ResourceNativeType},
		{"wizresourceregion", &f.ResourceRegion},
		{"wizresourcetype", &f.ResourceType},
	}
}

// BuiltinCustomFields returns the cliNames of the customFields the mapper itself may set, sorted
// (mapping.fields may add others). A sink that merges an incident into one it holds (the xsoar
// sink) treats these as wizfetch's: one the mapper left out, being empty, is removed.
func BuiltinCustomFields() []string {
	var f builtinFields
	names := make([]string, 0, 20)
	for _, e := range f.fields() {
		names = append(names, e.cliName)
	}
	return names
}

// withExtra returns the customFields map of an incident: f's non-empty fields, then extra (the
// mapping.fields that matched) added or overriding.
func (f *builtinFields) withExtra(extra map[string]any) map[string]any {
	cf := make(map[string]any, 20+len(extra))
	for _, e := range f.fields() {
		if *e.value != "" {
			cf[e.cliName] = *e.value
		}
	}
	for k, v := range extra {
		cf[k] = v
	}
	return cf
}

// builtinFields returns the built-in custom fields of issue (see builtinFields).
func (m *Mapper) builtinFields(issue *wiz.Issue, rule *wiz.SourceRule, raw string) builtinFields {
	var names, owners, champions []string
	for i := range issue.Projects {
		p := &issue.Projects[i]
		if p.Name != "" {
			names = append(names, p.Name)
		} else if p.ID != "" {
			names = append(names, p.ID)
		}
		owners = appendPeople(owners, p.ProjectOwners)
		champions = appendPeople(champions, p.SecurityChampions)
	}
	e := issue.EntitySnapshot
	if e == nil {
		e = &wiz.Entity{}
	}
	f := builtinFields{
		CloudAccount:             e.SubscriptionExternalID,
		CloudAccountName:         e.SubscriptionName,
		CloudPlatform:            e.CloudPlatform,
		IssueDueDate:             asSent(issue.SentDueAt(), raw, "dueAt", issue.DueAt),
		IssueID:                  issue.ID,
		IssueNote:                joinNotes(issue.Notes),
		IssueProjects:            strings.Join(names, listSeparator),
		IssueSeverity:            issue.Severity,
		IssueStatus:              issue.Status,
		IssueType:                issue.Type,
		ProjectOwners:            strings.Join(owners, listSeparator),
		ProjectSecurityChampions: strings.Join(champions, listSeparator),
		ResourceCloudID:          e.ProviderID,
		ResourceID:               e.ID,
		ResourceNativeType:       e.NativeType,
		ResourceRegion:           e.Region,
		ResourceType:             e.Type,
	}
	if rule != nil {
		f.Details = rule.Description
		if rule.Typename == "Control" {
			f.IssueResolutionRecommendation = rule.ResolutionRecommendation
		}
	}
	if issue.ID != "" {
		f.IssueURL = IssueURL(m.appBase, issue.ID)
	}
	return f
}
