package wizsim

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// maxContextFirst is the largest `first` the simulator answers for graphSearch and projects. Wiz
// does not document these bounds; the simulator applies the issues query's (WIZ_API.md §3).
const maxContextFirst = wizdef.MaxPageSize

// evidenceFields adds an issue's evidence to its projection tree: a THREAT_DETECTION carries
// threatDetectionDetails (a detection on its resource, the resource and an actor), any other issue
// an evidenceQuery that the graph search resolves to its resource.
func evidenceFields(i *issue, m map[string]any) {
	m["evidenceQuery"], m["threatDetectionDetails"] = nil, nil
	if i.entity == nil {
		return
	}
	ent := i.entity
	if i.typ != wizdef.TypeThreatDetection {
		m["evidenceQuery"] = map[string]any{"type": []any{"CLOUD_RESOURCE"}, "select": true,
			"where": map[string]any{"id": map[string]any{"EQUALS": []any{ent["id"]}}}}
		return
	}
	at := ts(i.createdAt)
	actor := map[string]any{"id": i.id + "-actor", "name": "suspicious-user", "externalId": "AIDA" + strings.ToUpper(i.id[:8]),
		"providerUniqueId": "arn:aws:iam::" + fmt.Sprint(ent["subscriptionExternalId"]) + ":user/suspicious-user", "type": "USER_ACCOUNT"}
	resource := map[string]any{"id": ent["id"], "name": ent["name"], "externalId": ent["externalId"],
		"providerUniqueId": ent["providerId"], "type": ent["type"], "nativeType": ent["nativeType"]}
	rule := map[string]any{"id": "tdr-" + i.id[:8], "name": "Suspicious API call from a new location", "origins": []any{"WIZ_SENSOR"},
		"securitySubCategories": []any{}}
	detection := map[string]any{"id": i.id + "-det", "startedAt": at, "severity": i.severity,
		"description": "A **suspicious** API call was made on `" + fmt.Sprint(ent["name"]) + "`.",
		"primaryResource": map[string]any{"id": ent["id"], "type": ent["type"], "name": ent["name"], "externalId": ent["externalId"],
			"region": ent["region"], "cloudAccount": map[string]any{"id": "acct-" + fmt.Sprint(ent["subscriptionExternalId"]),
				"name": ent["subscriptionName"], "externalId": ent["subscriptionExternalId"], "cloudProvider": ent["cloudPlatform"]}},
		"actors": []any{actor}, "ruleMatch": map[string]any{"rule": rule}}
	event := map[string]any{"id": i.id + "-evt", "category": "Reconnaissance", "externalName": "ListBuckets", "timestamp": at,
		"origin": "AWS_CLOUDTRAIL", "path": nil, "kind": "API", "cloudPlatform": ent["cloudPlatform"], "status": "SUCCESS",
		"actorIP": "198.51.100.7", "actor": map[string]any{"id": actor["id"], "externalId": actor["externalId"], "name": actor["name"],
			"type": actor["type"], "email": nil, "providerUniqueId": actor["providerUniqueId"]},
		"subjectResource": map[string]any{"id": ent["id"], "type": ent["type"], "name": ent["name"], "nativeType": ent["nativeType"],
			"externalId": ent["externalId"], "providerUniqueId": ent["providerId"], "region": ent["region"]}}
	m["threatDetectionDetails"] = map[string]any{
		"detections": map[string]any{"nodes": []any{detection}},
		"actors":     []any{actor}, "resources": []any{resource},
		"mainDetection": detection,
		"cloudEventGroups": map[string]any{"nodes": []any{map[string]any{"id": i.id + "-grp", "name": "API activity",
			"firstEventAt": at, "lastEventAt": at, "status": "ACTIVE", "kind": "API", "origin": "AWS_CLOUDTRAIL",
			"groupType": "ACTOR", "description": "Events of the detection", "cloudEvents": []any{event}}}},
	}
}

// execContextQuery answers graphSearch and projects.
func (s *Server) execContextQuery(b []byte, p *projector, name string, fields []*ast.Field) ([]byte, *execError) {
	args := fields[0].ArgumentMap(p.vars)
	first := int64(maxContextFirst)
	if v, ok := args["first"]; ok && v != nil {
		n, ok := toInt(v)
		if !ok || n < 0 || n > maxContextFirst {
			return b, userError("first must be between 0 and %d, got %v", maxContextFirst, v)
		}
		first = n
	}
	if after, _ := args["after"].(string); after != "" {
		return b, userError("invalid cursor %q", after) // every answer fits one page
	}
	switch name {
	case "graphSearch":
		conn, xerr := s.graphSearch(args, int(first))
		if xerr != nil {
			return b, xerr
		}
		return p.writeObject(b, subSets(fields), "GraphSearchResultConnection", conn), nil
	default:
		conn, xerr := s.projectsTable(args, int(first))
		if xerr != nil {
			return b, xerr
		}
		return p.writeObject(b, subSets(fields), "ProjectConnection", conn), nil
	}
}

// graphSearch finds the resources of visible issues matching query.where: providerUniqueId, id or
// name, each with EQUALS (a value or a list). Other where fields are refused, so that a client
// relying on one the simulator does not model finds out.
func (s *Server) graphSearch(args map[string]any, first int) (map[string]any, *execError) {
	q, _ := args["query"].(map[string]any)
	if q == nil {
		return nil, userError("graphSearch: query is required")
	}
	types, _ := toStrings(q["type"])
	if len(types) == 0 {
		return nil, userError("graphSearch: query.type must list at least one entity type")
	}
	where, _ := q["where"].(map[string]any)
	match := map[string][]string{}
	for field, cond := range where {
		if field != "providerUniqueId" && field != "id" && field != "name" {
			return nil, userError("graphSearch: unsupported where field %q", field)
		}
		c, _ := cond.(map[string]any)
		vals, ok := toStrings(c["EQUALS"])
		if !ok {
			if v, isStr := c["EQUALS"].(string); isStr {
				vals, ok = []string{v}, true
			}
		}
		if !ok || len(c) != 1 {
			return nil, userError("graphSearch: where.%s must be {EQUALS: [values]}", field)
		}
		match[field] = vals
	}
	project, _ := args["projectId"].(string)
	entityKey := map[string]string{"providerUniqueId": "providerId", "id": "id", "name": "name"}

	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	var found []map[string]any
	ids := make([]string, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		iss := s.byID[id]
		ent := iss.entity
		if ent == nil || now.Before(iss.visibleAt) || !inProject(iss, project) {
			continue
		}
		eid, _ := ent["id"].(string)
		if seen[eid] || !typeMatches(types, ent["type"]) {
			continue
		}
		ok := true
		for field, vals := range match {
			v, _ := ent[entityKey[field]].(string)
			ok = ok && contains(vals, v)
		}
		if ok {
			seen[eid] = true
			found = append(found, s.graphEntityLocked(ent))
		}
	}
	total := len(found)
	if len(found) > first {
		found = found[:first]
	}
	nodes := make([]any, len(found))
	for k, e := range found {
		nodes[k] = map[string]any{"entities": []any{e}, "aggregateCount": nil}
	}
	return map[string]any{"nodes": nodes, "pageInfo": map[string]any{"hasNextPage": false, "endCursor": nil},
		"totalCount": total, "maxCountReached": false}, nil
}

func inProject(iss *issue, project string) bool {
	if project == "" || project == "*" {
		return true
	}
	for _, p := range iss.projects {
		if p.id == project {
			return true
		}
	}
	return false
}

func typeMatches(types []string, t any) bool {
	s, _ := t.(string)
	return contains(types, "CLOUD_RESOURCE") || contains(types, s)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// graphEntityLocked is the graph entity of a resource, with its open issues counted. The caller
// holds s.mu.
func (s *Server) graphEntityLocked(ent map[string]any) map[string]any {
	counts := map[string]int{}
	for _, iss := range s.byID {
		if iss.entity != nil && iss.entity["id"] == ent["id"] && !wizdef.Closed(iss.status) {
			counts[iss.severity]++
		}
	}
	props := map[string]any{"nativeType": ent["nativeType"], "region": ent["region"], "cloudPlatform": ent["cloudPlatform"],
		"providerUniqueId": ent["providerId"], "externalId": ent["externalId"], "subscriptionExternalId": ent["subscriptionExternalId"],
		"status": ent["status"], "tags": ent["tags"], "cloudProviderURL": ent["cloudProviderURL"]}
	out := map[string]any{"id": ent["id"], "name": ent["name"], "type": ent["type"], "properties": props,
		"userMetadata": map[string]any{"isInWatchlist": false, "isIgnored": false, "note": nil},
		"technologies": []any{}, "otherSubscriptionExposures": map[string]any{"nodes": []any{}},
		"otherVnetExposures": map[string]any{"nodes": []any{}}, "lateralMovementPaths": map[string]any{"nodes": []any{}},
		"kubernetesPaths": map[string]any{"nodes": []any{}},
		"issues": map[string]any{"lowSeverityCount": counts[wizdef.SeverityLow], "mediumSeverityCount": counts[wizdef.SeverityMedium],
			"highSeverityCount": counts[wizdef.SeverityHigh], "criticalSeverityCount": counts[wizdef.SeverityCritical]}}
	exposures := []any{}
	if t, _ := ent["type"].(string); t == "VIRTUAL_MACHINE" || t == "BUCKET" {
		internet := map[string]any{"id": "internet", "name": "Internet", "type": "INTERNET", "properties": map[string]any{}}
		exposures = append(exposures, map[string]any{"id": fmt.Sprint(ent["id"]) + "-exposure", "portRange": "443",
			"sourceIpRange": "0.0.0.0/0", "destinationIpRange": "10.0.0.0/24",
			"path":                 []any{internet, map[string]any{"id": ent["id"], "name": ent["name"], "type": ent["type"], "properties": props}},
			"applicationEndpoints": []any{}})
	}
	out["publicExposures"] = map[string]any{"nodes": exposures}
	return out
}

// projectsTable answers the projects table: filterBy.search matches a substring of the name or
// slug (any case), filterBy.id lists ids; ordered by orderBy (default NAME).
func (s *Server) projectsTable(args map[string]any, first int) (map[string]any, *execError) {
	filter, _ := args["filterBy"].(map[string]any)
	search, _ := filter["search"].(string)
	search = strings.ToLower(strings.TrimSpace(search))
	ids, hasIDs := toStrings(filter["id"])
	order, _ := args["orderBy"].(map[string]any)
	field, _ := order["field"].(string)
	desc := order["direction"] == "DESC"

	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []map[string]any
	for _, p := range s.world.projects {
		name, _ := p.tree["name"].(string)
		slugName, _ := p.tree["slug"].(string)
		if search != "" && !strings.Contains(strings.ToLower(name), search) && !strings.Contains(slugName, search) {
			continue
		}
		if hasIDs && !contains(ids, p.id) {
			continue
		}
		out = append(out, s.projectNodeLocked(p))
	}
	sort.SliceStable(out, func(a, b int) bool {
		var less bool
		if field == "SECURITY_SCORE" {
			less = out[a]["securityScore"].(int) < out[b]["securityScore"].(int)
		} else {
			less = out[a]["name"].(string) < out[b]["name"].(string)
		}
		if desc {
			return !less
		}
		return less
	})
	total := len(out)
	if len(out) > first {
		out = out[:first]
	}
	nodes := make([]any, len(out))
	for k, n := range out {
		nodes[k] = n
	}
	return map[string]any{"nodes": nodes, "pageInfo": map[string]any{"hasNextPage": false, "endCursor": nil}, "totalCount": total}, nil
}

// projectNodeLocked is a project as the projects table shows it: the issue's project fields plus
// owners and champions with id and email, and open-issue analytics. The caller holds s.mu.
func (s *Server) projectNodeLocked(p *project) map[string]any {
	n := make(map[string]any, len(p.tree)+8)
	for k, v := range p.tree {
		n[k] = v
	}
	people := func(v any) []any {
		list, _ := v.([]any)
		out := make([]any, 0, len(list))
		for _, e := range list {
			m, _ := e.(map[string]any)
			name, _ := m["name"].(string)
			h := fnv.New32a()
			h.Write([]byte(name))
			out = append(out, map[string]any{"id": fmt.Sprintf("user-%08x", h.Sum32()), "name": name, "email": slug(name) + "@example.com"})
		}
		return out
	}
	n["projectOwners"], n["securityChampions"] = people(p.tree["projectOwners"]), people(p.tree["securityChampions"])
	counts := map[string]int{}
	total := 0
	for _, iss := range s.byID {
		if wizdef.Closed(iss.status) {
			continue
		}
		for _, ip := range iss.projects {
			if ip == p {
				counts[iss.severity]++
				total++
			}
		}
	}
	h := fnv.New32a()
	h.Write([]byte(p.id))
	n["description"] = "Simulated project " + fmt.Sprint(p.tree["name"])
	n["archived"] = false
	n["cloudAccountCount"] = 1 + int(h.Sum32()%5)
	n["repositoryCount"] = int(h.Sum32() % 7)
	n["securityScore"] = int(h.Sum32() % 100)
	n["teamMemberCount"] = len(n["projectOwners"].([]any)) + len(n["securityChampions"].([]any))
	n["issueAnalytics"] = map[string]any{"issueCount": total, "scopeSize": total,
		"informationalSeverityCount": counts[wizdef.SeverityInformational], "lowSeverityCount": counts[wizdef.SeverityLow],
		"mediumSeverityCount": counts[wizdef.SeverityMedium], "highSeverityCount": counts[wizdef.SeverityHigh],
		"criticalSeverityCount": counts[wizdef.SeverityCritical]}
	return n
}
