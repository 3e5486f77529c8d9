package wizsim

// contextSDL extends the schema with what the Wiz XSOAR pack's wiz-get-resource,
// wiz-get-project-team and wiz-get-issue-evidence read (demisto/content Packs/Wiz/Integrations/Wiz
// Wiz.py: PULL_RESOURCES_QUERY, the ProjectsTable query of get_project_team,
// PULL_ISSUE_WITH_EVIDENCE_PARAM_QUERY and PULL_ISSUE_EVIDENCE_QUERY): the graph search, the
// projects table, and an issue's evidenceQuery and threatDetectionDetails. Names follow those
// queries; a type they never name (the graph search's result types, for one) is named after Wiz's
// public naming habits, and no client names it. Validation is the real thing: a query that selects
// a field outside this schema, omits graphSearch's required projectId or mistypes a variable is
// refused with GRAPHQL_VALIDATION_FAILED or BAD_USER_INPUT, as Wiz refuses it.
const contextSDL = `
extend type Query {
  graphSearch(query: GraphEntityQueryInput, controlId: ID, projectId: String!, first: Int, after: String, quick: Boolean): GraphSearchResultConnection
  projects(filterBy: ProjectFilters, first: Int, after: String, orderBy: ProjectOrder): ProjectConnection
}

extend type Issue {
  evidenceQuery: JSON
  threatDetectionDetails: ThreatDetectionIssueDetails
}

extend type Project {
  description: String
  archived: Boolean
  cloudAccountCount: Int
  repositoryCount: Int
  securityScore: Int
  teamMemberCount: Int
  issueAnalytics(selection: ProjectIssueAnalyticsSelection): ProjectIssueAnalytics
}

input GraphEntityQueryInput {
  type: [String!]!
  select: Boolean
  where: JSON
  relationships: JSON
  as: String
}

type GraphSearchResultConnection {
  nodes: [GraphSearchResult!]
  pageInfo: PageInfo!
  totalCount: Int!
  maxCountReached: Boolean!
}

type GraphSearchResult {
  entities: [GraphEntity]
  aggregateCount: Int
}

type GraphEntity {
  id: ID!
  name: String
  type: String!
  properties: JSON
  userMetadata: GraphEntityMetadata
  technologies: [Technology!]
  issues(filterBy: IssueFilters): GraphEntityIssueAnalytics
  publicExposures(first: Int, after: String): NetworkExposureConnection
  otherSubscriptionExposures(first: Int, after: String): NetworkExposureConnection
  otherVnetExposures(first: Int, after: String): NetworkExposureConnection
  lateralMovementPaths(first: Int, after: String): LateralMovementPathConnection
  kubernetesPaths(first: Int, after: String): KubernetesPathConnection
}

type GraphEntityMetadata {
  isInWatchlist: Boolean
  isIgnored: Boolean
  note: String
}

type Technology {
  id: ID!
  name: String
  icon: String
}

type GraphEntityIssueAnalytics {
  lowSeverityCount: Int
  mediumSeverityCount: Int
  highSeverityCount: Int
  criticalSeverityCount: Int
}

type NetworkExposureConnection { nodes: [NetworkExposure!] }

type NetworkExposure {
  id: ID!
  portRange: String
  sourceIpRange: String
  destinationIpRange: String
  path: [GraphEntity!]
  applicationEndpoints: [GraphEntity!]
}

type LateralMovementPathConnection { nodes: [LateralMovementPath!] }
type LateralMovementPath { id: ID!, pathEntities: [LateralMovementPathEntity!] }
type LateralMovementPathEntity { entity: GraphEntity }
type KubernetesPathConnection { nodes: [KubernetesPath!] }
type KubernetesPath { id: ID!, path: [GraphEntity!] }

input ProjectFilters {
  search: String
  id: [String!]
  archived: Boolean
}

enum ProjectOrderField { SECURITY_SCORE NAME }

input ProjectOrder {
  field: ProjectOrderField!
  direction: OrderDirection = ASC
}

input ProjectIssueAnalyticsSelection {
  type: [IssueType!]
  status: [IssueStatus!]
}

type ProjectConnection {
  nodes: [Project!]
  pageInfo: PageInfo!
  totalCount: Int
}

type ProjectIssueAnalytics {
  issueCount: Int
  scopeSize: Int
  informationalSeverityCount: Int
  lowSeverityCount: Int
  mediumSeverityCount: Int
  highSeverityCount: Int
  criticalSeverityCount: Int
}

enum DescriptionFormat { TEXT MARKDOWN }

type ThreatDetectionIssueDetails {
  detections(first: Int, after: String): DetectionConnection
  actors: [GraphEntityRef!]
  resources: [GraphEntityRef!]
  mainDetection: Detection
  cloudEventGroups(first: Int, after: String): CloudEventGroupConnection
}

type GraphEntityRef {
  id: ID!
  name: String
  externalId: String
  providerUniqueId: String
  type: String
  nativeType: String
}

type DetectionConnection { nodes: [Detection!] }

type Detection {
  id: ID!
  startedAt: DateTime
  severity: Severity
  description(format: DescriptionFormat): String
  primaryResource: DetectionResource
  actors: [GraphEntityRef!]
  ruleMatch: DetectionRuleMatch
}

type DetectionResource {
  id: ID!
  type: String
  name: String
  externalId: String
  region: String
  cloudAccount: CloudAccount
}

type CloudAccount {
  id: ID!
  name: String
  externalId: String
  cloudProvider: String
}

type DetectionRuleMatch { rule: DetectionRule }

type DetectionRule {
  id: ID!
  name: String
  origins: [String!]
  securitySubCategories: [SecuritySubCategory!]
}

type CloudEventGroupConnection { nodes: [CloudEventGroup!] }

type CloudEventGroup {
  id: ID!
  name: String
  firstEventAt: DateTime
  lastEventAt: DateTime
  status: String
  kind: String
  origin: String
  groupType: String
  description: String
  cloudEvents: [CloudEvent!]
}

type CloudEvent {
  id: ID!
  category: String
  externalName: String
  timestamp: DateTime
  origin: String
  path: String
  kind: String
  cloudPlatform: CloudPlatform
  status: String
  actorIP: String
  actor: CloudEventActor
  subjectResource: CloudEventResource
}

type CloudEventActor {
  id: ID
  externalId: String
  name: String
  type: String
  email: String
  providerUniqueId: String
}

type CloudEventResource {
  id: ID
  type: String
  name: String
  nativeType: String
  externalId: String
  providerUniqueId: String
  region: String
}
`
