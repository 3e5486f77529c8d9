package wizsim

import (
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// schemaSDL is the subset of Wiz's GraphQL schema the simulator serves (WIZ_API.md §3 and §5). Field and
// type names follow the real schema where they are public; the client's generated variable types
// (IssueFilters, IssueOrder) must match these names. The issue enums and the source-rule union come
// from pkg/wizdef (wizdefSDL), where wizfetch defines them once.
const schemaSDL = `
scalar DateTime
scalar JSON

schema {
  query: Query
  mutation: Mutation
}

type Query {
  issuesV2(filterBy: IssueFilters, first: Int, after: String, orderBy: IssueOrder): IssueConnection!
}

type Mutation {
  updateIssue(input: UnpublishedUpdateIssueInput!): UpdateIssuePayload
  createIssueNote(input: CreateIssueNoteInput!): CreateIssueNotePayload
  deleteIssueNote(input: DeleteIssueNoteInput!): DeleteIssueNotePayload
}

enum CloudPlatform { AWS Azure GCP OCI Alibaba vSphere Kubernetes OpenShift AKS EKS GKE OKE }
enum BusinessImpact { LBI MBI HBI }
enum IssueOrderField { SEVERITY CREATED_AT STATUS_CHANGED_AT }
enum OrderDirection { ASC DESC }

input DateFilter {
  after: DateTime
  before: DateTime
}

input IssueRelatedEntityFilters {
  id: String
  type: [String!]
}

input IssueFilters {
  id: [String!]
  status: [IssueStatus!]
  severity: [Severity!]
  type: [IssueType!]
  project: [String!]
  createdAt: DateFilter
  statusChangedAt: DateFilter
  resolvedAt: DateFilter
  relatedEntity: IssueRelatedEntityFilters
  search: String
}

input IssueOrder {
  field: IssueOrderField!
  direction: OrderDirection = ASC
}

type PageInfo {
  hasNextPage: Boolean!
  endCursor: String
}

type IssueConnection {
  nodes: [Issue!]
  pageInfo: PageInfo!
  totalCount: Int!
}

type Issue {
  id: ID!
  sourceRule: IssueSourceRule @deprecated(reason: "use sourceRules")
  sourceRules: [IssueSourceRule!]
  type: IssueType!
  createdAt: DateTime!
  updatedAt: DateTime
  dueAt: DateTime
  resolvedAt: DateTime
  statusChangedAt: DateTime
  resolutionReason: IssueResolutionReason
  projects: [Project!]
  status: IssueStatus!
  severity: Severity!
  entitySnapshot: EntitySnapshot
  serviceTickets: [ServiceTicket!]
  notes: [IssueNote!]
}

type Control {
  id: ID!
  name: String!
  description: String
  resolutionRecommendation: String
  securitySubCategories: [SecuritySubCategory!]
}

type SecuritySubCategory {
  id: ID
  title: String!
  category: SecurityCategory
}

type SecurityCategory {
  id: ID
  name: String!
  framework: SecurityFramework
}

type SecurityFramework {
  id: ID
  name: String!
}

type CloudEventRule {
  id: ID!
  name: String!
  description: String
  sourceType: String
  type: String
}

type CloudConfigurationRule {
  id: ID!
  name: String!
  description: String
  remediationInstructions: String
  serviceType: String
}

type Project {
  id: ID!
  name: String!
  slug: String
  businessUnit: String
  riskProfile: ProjectRiskProfile
  projectOwners: [User!]
  securityChampions: [User!]
}

type ProjectRiskProfile {
  businessImpact: BusinessImpact
}

type User {
  id: ID
  name: String
  email: String
}

type ServiceAccount {
  id: ID
  name: String
}

type EntitySnapshot {
  id: ID!
  type: String
  nativeType: String
  name: String
  status: String
  cloudPlatform: CloudPlatform
  cloudProviderURL: String
  providerId: String
  region: String
  resourceGroupExternalId: String
  subscriptionExternalId: String
  subscriptionName: String
  subscriptionTags: JSON
  tags: JSON
  externalId: String
}

type ServiceTicket {
  externalId: String
  name: String
  url: String
}

type IssueNote {
  id: ID!
  createdAt: DateTime
  updatedAt: DateTime
  text: String
  user: User
  serviceAccount: ServiceAccount
}

input UpdateIssuePatch {
  status: IssueStatus
  note: String
  resolutionReason: IssueResolutionReason
  resolutionNote: String
  dueAt: DateTime
}

# updateIssue's input type. Every public client inlines it, typing the variables only:
#   updateIssue(input: {id: $issueId, patch: $patch, override: $override})
# with $issueId: ID!, $patch: UpdateIssuePatch, $override: UpdateIssuePatch (Wiz pack Wiz.py
# UPDATE_ISSUE_QUERY). Wiz's name for this type is not public, so the simulator gives it one no
# client would guess: a client that declares $input: UpdateIssueInput! fails validation with
# "Unknown type" (GRAPHQL_VALIDATION_FAILED), and override has no type of its own.
input UnpublishedUpdateIssueInput {
  id: ID!
  patch: UpdateIssuePatch
  override: UpdateIssuePatch
}

type UpdateIssuePayload {
  issue: Issue
}

input CreateIssueNoteInput {
  issueId: String!
  text: String!
}

type CreateIssueNotePayload {
  issueNote: IssueNote
}

input DeleteIssueNoteInput {
  id: String!
}

type DeleteIssueNotePayload {
  _stub: Boolean
}
`

// standardNodeSelection is the node selection of WIZ_API.md §3: the fields the Wiz XSOAR pack reads.
// Issues are pre-serialised with exactly this selection, and a query whose node selection has the same
// shape is answered by splicing those bytes.
// It selects the rule both as the deprecated sourceRule and as the list sourceRules that replaces it
// (WIZ_API.md §10), with one selection, as wizfetch's query does.
const standardNodeSelection = `
id
sourceRule ` + standardRuleSelection + `
sourceRules ` + standardRuleSelection + `
type
createdAt
updatedAt
dueAt
resolvedAt
resolutionReason
statusChangedAt
projects { id name slug businessUnit riskProfile { businessImpact } projectOwners { name } securityChampions { name } }
status
severity
entitySnapshot { id type nativeType name status cloudPlatform cloudProviderURL providerId region resourceGroupExternalId subscriptionExternalId subscriptionName subscriptionTags tags externalId }
serviceTickets { externalId name url }
notes { id createdAt updatedAt text user { name email } serviceAccount { name } }
`

// standardRuleSelection is the selection of one source rule (sourceRule, or an element of
// sourceRules).
const standardRuleSelection = `{
  __typename
  ... on Control { id name description resolutionRecommendation securitySubCategories { title category { name framework { name } } } }
  ... on CloudEventRule { id name description sourceType type }
  ... on CloudConfigurationRule { id name description remediationInstructions serviceType }
}`

// StandardQuery is the issues query of WIZ_API.md §3 with the standard node selection. Tests and the
// benchmark use it; it is also what the fast path recognises.
const StandardQuery = `query IssuesTable($filterBy: IssueFilters, $first: Int, $after: String, $orderBy: IssueOrder) {
  issues: issuesV2(filterBy: $filterBy, first: $first, after: $after, orderBy: $orderBy) {
    nodes {` + standardNodeSelection + `}
    pageInfo { hasNextPage endCursor }
  }
}`

// wizdefSDL declares the issue enums and the source-rule union with the values of pkg/wizdef.
func wizdefSDL() string {
	enum := func(name string, values []string) string {
		return "enum " + name + " { " + strings.Join(values, " ") + " }\n"
	}
	return enum("Severity", wizdef.Severities()) +
		enum("IssueStatus", wizdef.Statuses()) +
		enum("IssueType", wizdef.IssueTypes()) +
		enum("IssueResolutionReason", wizdef.ResolutionReasons()) +
		"union IssueSourceRule = " + strings.Join(wizdef.SourceRuleTypes(), " | ") + "\n"
}

// loadSchema parses the SDL subset.
func loadSchema() (*ast.Schema, error) {
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "wizsim.graphql", Input: schemaSDL},
		&ast.Source{Name: "wizdef.graphql", Input: wizdefSDL()}, &ast.Source{Name: "context.graphql", Input: contextSDL})
	if err != nil {
		return nil, fmt.Errorf("load simulator schema: %w", err)
	}
	return s, nil
}
