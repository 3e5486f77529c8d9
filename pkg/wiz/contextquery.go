package wiz

// The queries behind IssueContext, taken from the Wiz-maintained XSOAR pack
// (demisto/content Packs/Wiz/Integrations/Wiz/Wiz.py), so that wizfetch asks Wiz exactly what
// Wiz's own integration asks:
//
//   - ResourceQuery is the pack's PULL_RESOURCES_QUERY (command wiz-get-resource, get_resource with
//     a resource_id), sent with the variables get_resource builds;
//   - ProjectTeamQuery is the ProjectsTable query of get_project_team (wiz-get-project-team);
//   - IssueEvidenceQuery is PULL_ISSUE_WITH_EVIDENCE_PARAM_QUERY (wiz-get-issue-evidence's first
//     step), and EvidenceGraphQuery is PULL_ISSUE_EVIDENCE_QUERY, run with the issue's
//     evidenceQuery and PULL_ISSUE_EVIDENCE_PARAMS.
//
// Two deliberate differences, both to keep an answer bounded and the request count low:
// IssueEvidenceQuery also selects the issue's id, entitySnapshot and projects (the keys of the
// resource and project-team lookups, which saves a separate issue read), and its cloud-event
// fragment selects the events' identity, actor and subject resource but not the pack's
// CloudEventExtraDetails (CI/CD scan reports, runtime process trees, admission reviews: unbounded
// and of little use to a reader); detections and event groups are asked for 20 at a time, not 500.
const (
	ResourceQuery = `query GraphSearch(
  $query: GraphEntityQueryInput
  $controlId: ID
  $projectId: String!
  $first: Int
  $after: String
  $fetchTotalCount: Boolean!
  $quick: Boolean
  $fetchPublicExposurePaths: Boolean = false
  $fetchInternalExposurePaths: Boolean = false
  $fetchIssueAnalytics: Boolean = false
) {
  graphSearch(query: $query, controlId: $controlId, projectId: $projectId, first: $first, after: $after, quick: $quick) {
    totalCount @include(if: $fetchTotalCount)
    maxCountReached @include(if: $fetchTotalCount)
    pageInfo { endCursor hasNextPage }
    nodes {
      entities {
        id
        name
        type
        properties
        userMetadata { isInWatchlist isIgnored note }
        issueAnalytics: issues(filterBy: { status: [IN_PROGRESS, OPEN] }) @include(if: $fetchIssueAnalytics) {
          lowSeverityCount
          mediumSeverityCount
          highSeverityCount
          criticalSeverityCount
        }
        publicExposures(first: 10) @include(if: $fetchPublicExposurePaths) {
          nodes { ...NetworkExposureFragment }
        }
        otherSubscriptionExposures(first: 10) @include(if: $fetchInternalExposurePaths) {
          nodes { ...NetworkExposureFragment }
        }
        otherVnetExposures(first: 10) @include(if: $fetchInternalExposurePaths) {
          nodes { ...NetworkExposureFragment }
        }
      }
      aggregateCount
    }
  }
}

fragment NetworkExposureFragment on NetworkExposure {
  id
  portRange
  sourceIpRange
  destinationIpRange
  path {
    id
    name
    type
    properties
    issueAnalytics: issues(filterBy: { status: [IN_PROGRESS, OPEN] }) @include(if: $fetchIssueAnalytics) {
      lowSeverityCount
      mediumSeverityCount
      highSeverityCount
      criticalSeverityCount
    }
  }
}`

	ProjectTeamQuery = `query ProjectsTable(
  $filterBy: ProjectFilters
  $first: Int
  $after: String
  $orderBy: ProjectOrder
  $analyticsSelection: ProjectIssueAnalyticsSelection
) {
  projects(filterBy: $filterBy, first: $first, after: $after, orderBy: $orderBy) {
    nodes {
      id
      name
      description
      businessUnit
      archived
      slug
      projectOwners { id name email }
      securityChampions { id name email }
      cloudAccountCount
      repositoryCount
      securityScore
      riskProfile { businessImpact }
      teamMemberCount
      issueAnalytics(selection: $analyticsSelection) {
        issueCount
        scopeSize
        informationalSeverityCount
        lowSeverityCount
        mediumSeverityCount
        highSeverityCount
        criticalSeverityCount
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`

	IssueEvidenceQuery = `query IssuesTable($filterBy: IssueFilters, $first: Int, $after: String, $orderBy: IssueOrder) {
  issues: issuesV2(filterBy: $filterBy, first: $first, after: $after, orderBy: $orderBy) {
    nodes {
      id
      type
      entitySnapshot { id type name providerId }
      projects { id name }
      evidenceQuery
      threatDetectionDetails {
        ...ThreatDetectionDetailsDetections
        ...ThreatDetectionDetailsActorsResources
        ...ThreatDetectionDetailsMainDetection
        ...ThreatDetectionDetailsCloudEventGroups
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}

fragment ThreatDetectionDetailsDetections on ThreatDetectionIssueDetails {
  detections(first: 20) {
    nodes {
      id
      startedAt
      severity
      description(format: MARKDOWN)
      primaryResource {
        id
        type
        name
        externalId
        region
        cloudAccount { id name externalId cloudProvider }
      }
      actors { id name externalId providerUniqueId type }
      ruleMatch {
        rule {
          id
          name
          securitySubCategories { id title category { id name framework { id } } }
        }
      }
    }
  }
}

fragment ThreatDetectionDetailsActorsResources on ThreatDetectionIssueDetails {
  actors { id name externalId providerUniqueId type }
  resources { id name externalId providerUniqueId type nativeType }
}

fragment ThreatDetectionDetailsMainDetection on ThreatDetectionIssueDetails {
  mainDetection {
    id
    startedAt
    severity
    description(format: MARKDOWN)
    ruleMatch { rule { id name origins } }
  }
}

fragment ThreatDetectionDetailsCloudEventGroups on ThreatDetectionIssueDetails {
  cloudEventGroups(first: 20) {
    nodes {
      id
      name
      firstEventAt
      lastEventAt
      status
      kind
      origin
      groupType
      description
      cloudEvents {
        id
        category
        externalName
        timestamp
        origin
        path
        kind
        cloudPlatform
        status
        actorIP
        actor { id externalId name type email providerUniqueId }
        subjectResource { id type name nativeType externalId providerUniqueId region }
      }
    }
  }
}`

	EvidenceGraphQuery = `query GraphSearch(
  $query: GraphEntityQueryInput
  $controlId: ID
  $projectId: String!
  $first: Int
  $after: String
  $fetchTotalCount: Boolean!
  $quick: Boolean = true
  $fetchPublicExposurePaths: Boolean = false
  $fetchInternalExposurePaths: Boolean = false
  $fetchIssueAnalytics: Boolean = false
  $fetchLateralMovement: Boolean = false
  $fetchKubernetes: Boolean = false
) {
  graphSearch(query: $query, controlId: $controlId, projectId: $projectId, first: $first, after: $after, quick: $quick) {
    totalCount @include(if: $fetchTotalCount)
    maxCountReached @include(if: $fetchTotalCount)
    pageInfo { endCursor hasNextPage }
    nodes {
      entities {
        ...PathGraphEntityFragment
        userMetadata { isInWatchlist isIgnored note }
        technologies { id icon }
        publicExposures(first: 10) @include(if: $fetchPublicExposurePaths) {
          nodes { ...NetworkExposureFragment }
        }
        otherSubscriptionExposures(first: 10) @include(if: $fetchInternalExposurePaths) {
          nodes { ...NetworkExposureFragment }
        }
        otherVnetExposures(first: 10) @include(if: $fetchInternalExposurePaths) {
          nodes { ...NetworkExposureFragment }
        }
        lateralMovementPaths(first: 10) @include(if: $fetchLateralMovement) {
          nodes { id pathEntities { entity { ...PathGraphEntityFragment } } }
        }
        kubernetesPaths(first: 10) @include(if: $fetchKubernetes) {
          nodes { id path { ...PathGraphEntityFragment } }
        }
      }
      aggregateCount
    }
  }
}

fragment PathGraphEntityFragment on GraphEntity {
  id
  name
  type
  properties
  issueAnalytics: issues(filterBy: { status: [IN_PROGRESS, OPEN] }) @include(if: $fetchIssueAnalytics) {
    highSeverityCount
    criticalSeverityCount
  }
}

fragment NetworkExposureFragment on NetworkExposure {
  id
  portRange
  sourceIpRange
  destinationIpRange
  path { ...PathGraphEntityFragment }
  applicationEndpoints { ...PathGraphEntityFragment }
}`
)
