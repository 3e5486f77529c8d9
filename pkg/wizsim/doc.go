// Package wizsim simulates the parts of Wiz's API that wizfetch uses, for tests, benchmarks and the demo:
// the OAuth client-credentials token endpoint, the GraphQL issuesV2 query and the write-back mutations,
// with the quirks of WIZ_API.md (exclusive after, microsecond timestamp ties, late visibility, 429s).
//
// # Endpoints
//
//   - POST /oauth/token: form-encoded client_credentials grant; the audience must be wiz-api (cognito
//     mode) or beyond-api (auth0 mode). Errors are OAuth JSON: 401 access_denied for bad credentials,
//     400 invalid_request for a wrong grant, audience or content type.
//   - POST /graphql: Bearer token required (401 UNAUTHENTICATED otherwise). Requests are parsed and
//     validated with gqlparser against an SDL subset of Wiz's schema (schema.go). Parse and validation
//     errors answer HTTP 200 with code GRAPHQL_VALIDATION_FAILED; variable coercion errors, a first
//     outside 1..500 and rejected cursors (`invalid value for argument "after": ...`, never naming
//     "cursor": Wiz's wording is undocumented, WIZ_API.md §10) answer HTTP 200 with BAD_USER_INPUT;
//     an empty list filter answers HTTP 400 with BAD_USER_INPUT, like Wiz.
//     Mutations follow the Wiz XSOAR pack (WIZ_API.md §5, §10): updateIssue takes
//     input {id, patch, override} with patch and override of type UpdateIssuePatch (a variable of
//     any other named input type fails validation); reject and resolve (THREAT_DETECTION only)
//     accept the reasons of wizdef.ReasonsFor (reject FALSE_POSITIVE, EXCEPTION and WONT_FIX,
//     resolve also OBJECT_DELETED and ISSUE_FIXED); patch.note only together with RESOLVED or
//     REJECTED and a reason; every refusal is BAD_USER_INPUT. The enums and reasons come from
//     pkg/wizdef, as the client's do.
//   - GET /_sim/stats: the Stats counters as JSON.
//
// # Query semantics
//
// first defaults to 50 and must be 1..500. Without orderBy, issues come in SEVERITY DESC order; a statusChangedAt filter without orderBy implies
// STATUS_CHANGED_AT ASC, and issues with a null statusChangedAt never match it. Ties break on the id
// (descending for DESC orders). Cursors are signed positions (sort key and id) bound to the query's filter
// and order (not to first), so paging is stable while data changes; after is exclusive. When a query's
// node selection has the shape of WIZ_API.md §3 (any field order or fragment structure, no aliases), the
// pre-serialised bytes of each issue are spliced (keys then come in the §3 order); any other selection is
// projected field by field with aliases, fragments and __typename as any GraphQL server would.
// IssueConnection also has totalCount (a full count: select it only when needed).
//
// # Data
//
// New generates Options.Issues issues deterministically from Options.Seed over Options.Days days ending
// at the clock's now: one createdAt tie run of 601 issues (N/2 when N < 1000), small tie groups, a bulk
// rejection sharing one statusChangedAt, statusChangedAt slightly before createdAt or null for some open
// issues, status churn (OPEN, IN_PROGRESS, RESOLVED, REJECTED, reopened), and about 1% of issues in the
// last ten minutes. About one in five issues with a rule leave the deprecated sourceRule null and
// carry the rule only in sourceRules (chosen from the issue id, so by the seed). Late visibility: each issue has VisibleAt = max(createdAt, statusChangedAt) + a lag
// in [0, 5 min); before VisibleAt by the injected clock the issue is hidden from every query (a pending
// status change hides the whole issue rather than serving its old status). Changes made through
// SetStatus, AddIssue and the mutations are visible at once; live mode uses lags below 3 s.
//
// # Latency
//
// Options.Latency and Options.LatencyPerIssue (wizsim --latency, --latency-per-issue) make every
// /graphql answer wait the base latency plus the per-node cost of the issues it returns, as Wiz's
// pages take seconds; a request cancelled meanwhile gets nothing. Options.Rate (--rate) answers 429
// above that many requests per second per token.
//
// # Faults
//
// A fault spec (Options.Faults, SetFaults, wizsim --faults) is a semicolon-separated list of faults,
// each kind[:key=value,...]:
//
//	429        answer 429 RATE_LIMIT_EXCEEDED (retry_after=2s adds Retry-After: 2; omitted: no header)
//	5xx        answer code=500|502|503|504 (default 503) with code INTERNAL
//	slow       wait delay=3s (default), then answer normally
//	partial    answer 200 with the data and an INTERNAL error
//	malformed  answer 200 with the body truncated to half
//	expire     invalidate every token and answer 401 (token expiry mid-run)
//	cursor     invalidate every cursor issued so far, then answer normally (a request carrying one fails)
//	graphql_ratelimit  answer 200 with RATE_LIMIT_EXCEEDED and null data (throttling inside a 200)
//	expire200  invalidate every token and answer 200 with UNAUTHENTICATED and null data
//	gateway    answer code=502|504 (default 502) with an HTML page, as a gateway does, not Wiz's JSON
//
// Keys choose the /graphql requests (after authentication and the rate limit) a fault handles: p=0.1
// (probability per request from an RNG seeded by Options.Seed), every=N (every Nth request), count=N
// (only N requests in all, then the fault is spent), burst=N (N consecutive requests once triggered).
// Without p or every a fault handles every request. Faults are checked in spec order; the first that
// fires handles the request and later ones do not see it. Example:
//
//	429:every=7,burst=3,retry_after=1s;5xx:p=0.02;slow:count=1,delay=3s
//
// Options.Rate enforces that many requests per second per service account (burst ceil(Rate)) with
// 429, shared by every token issued to it, as Wiz limits per service account (WIZ_API.md §2).
package wizsim
