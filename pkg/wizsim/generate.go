package wizsim

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// world holds the shared pools a generator draws from.
type world struct {
	rng      *rand.Rand
	rules    map[string][]*rule // by issue type
	projects []*project
	subs     []map[string]any
}

func newUUID(rng *rand.Rand) string {
	var b [16]byte
	for k := 0; k < 16; k += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[k+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func optString(rng *rand.Rand, pNull float64, s string) any {
	if rng.Float64() < pNull {
		return nil
	}
	return s
}

var (
	controlNames = []string{"Publicly exposed VM with a critical vulnerability", "Admin role assigned to external identity",
		"Unencrypted database reachable from the internet", "Container running as root with high privileges",
		"Storage bucket with sensitive data publicly readable", "Lateral movement path to crown jewel",
		"Access key older than 90 days with admin permissions", "Kubernetes API server exposed to the internet"}
	eventRules = []string{"recon-ec2-portprobeunprotectedport", "unauthorizedaccess-iamuser-consoleloginsuccess-b",
		"cryptocurrency-ec2-bitcointool-b", "trojan-ec2-dnsdatexfiltration", "policy-s3-bucketblockpublicaccessdisabled",
		"discovery-s3-maliciousipcaller"}
	configRules = []string{"S3 Bucket should have versioning enabled", "Security group allows ingress from 0.0.0.0/0 to port 22",
		"IAM password policy should require at least 14 characters", "Storage account should disallow public blob access",
		"GKE cluster should have network policy enabled", "RDS instance should not be publicly accessible",
		"CloudTrail should be enabled in all regions", "Key Vault should have purge protection enabled"}
	frameworks   = []string{"Wiz for Risk Assessment", "CIS AWS 1.5.0", "NIST SP 800-53 Revision 5", "MITRE ATT&CK Matrix"}
	categories   = []string{"Vulnerability Assessment", "Identity Management", "Data Protection", "Network Security"}
	people       = []string{"Alice Martin", "Bob Chen", "Carla Diaz", "Dmitri Ivanov", "Eve Okafor", "Farid Haddad"}
	projectNames = []string{"Payments", "Platform", "Data Lake", "Mobile Backend", "Corporate IT", "Shared Services"}
	units        = []string{"Finance", "Engineering", "Analytics", "", "IT"}
	impacts      = []string{"LBI", "MBI", "HBI"}
)

type entityKind struct{ typ, native, platform, prefix string }

var entityKinds = []entityKind{
	{"VIRTUAL_MACHINE", "virtualMachine", "AWS", "i-"},
	{"BUCKET", "bucket", "AWS", "bucket-"},
	{"DATABASE", "rds", "AWS", "db-"},
	{"ACCESS_ROLE", "role", "AWS", "role-"},
	{"VIRTUAL_MACHINE", "Microsoft.Compute/virtualMachines", "Azure", "vm-"},
	{"STORAGE_ACCOUNT", "Microsoft.Storage/storageAccounts", "Azure", "st"},
	{"KUBERNETES_CLUSTER", "container#Cluster", "GCP", "gke-"},
	{"CONTAINER", "Pod", "Kubernetes", "pod-"},
	{"SERVERLESS", "lambda", "AWS", "fn-"},
}

var regions = map[string][]string{
	"AWS": {"us-east-1", "us-west-2", "eu-west-1"}, "Azure": {"westeurope", "eastus"},
	"GCP": {"us-central1", "europe-west4"}, "Kubernetes": {""},
}

func newWorld(rng *rand.Rand) *world {
	w := &world{rng: rng, rules: map[string][]*rule{}}
	for k, name := range controlNames {
		subs := []any{}
		for j := 0; j <= rng.IntN(2); j++ {
			subs = append(subs, map[string]any{"title": fmt.Sprintf("%d.%d %s", k+1, j+1, pick(rng, categories)),
				"category": map[string]any{"name": pick(rng, categories), "framework": map[string]any{"name": pick(rng, frameworks)}}})
		}
		id := fmt.Sprintf("wc-id-%d", 1000+rng.IntN(2000))
		r := &rule{typename: wizdef.RuleControl, id: id, tree: map[string]any{"__typename": wizdef.RuleControl, "id": id, "name": name,
			"description":              optString(rng, 0.2, "This issue is raised when "+name+"."),
			"resolutionRecommendation": optString(rng, 0.3, "Remediate the finding: "+name+"."),
			"securitySubCategories":    subs}}
		w.rules[wizdef.TypeToxicCombination] = append(w.rules[wizdef.TypeToxicCombination], r)
		if k%3 == 0 {
			w.rules[wizdef.TypeThreatDetection] = append(w.rules[wizdef.TypeThreatDetection], r)
		}
	}
	for _, name := range eventRules {
		id := "cer-awsguardduty-" + name
		r := &rule{typename: wizdef.RuleCloudEventRule, id: id, tree: map[string]any{"__typename": wizdef.RuleCloudEventRule, "id": id,
			"name": "GuardDuty finding: " + name, "description": optString(rng, 0.2, "Amazon GuardDuty reported "+name+"."),
			"sourceType": "GUARDDUTY", "type": "CLOUD_DETECTION"}}
		w.rules[wizdef.TypeThreatDetection] = append(w.rules[wizdef.TypeThreatDetection], r)
	}
	for _, name := range configRules {
		id := newUUID(rng)
		r := &rule{typename: wizdef.RuleCloudConfigurationRule, id: id, tree: map[string]any{"__typename": wizdef.RuleCloudConfigurationRule,
			"id": id, "name": name, "description": optString(rng, 0.2, "Checks that: "+name+"."),
			"remediationInstructions": optString(rng, 0.3, "Follow the provider's guide to fix: "+name+"."),
			"serviceType":             pick(rng, []string{"AWS", "Azure", "GCP"})}}
		w.rules[wizdef.TypeCloudConfiguration] = append(w.rules[wizdef.TypeCloudConfiguration], r)
	}
	for k, name := range projectNames {
		id := newUUID(rng)
		owners := []any{map[string]any{"name": pick(rng, people)}}
		champions := []any{}
		if k%2 == 0 {
			champions = append(champions, map[string]any{"name": pick(rng, people)})
		}
		var risk any
		if k != 3 {
			risk = map[string]any{"businessImpact": pick(rng, impacts)}
		}
		w.projects = append(w.projects, &project{id: id, tree: map[string]any{"id": id, "name": name,
			"slug": fmt.Sprintf("%s-%d", slug(name), k), "businessUnit": pick(rng, units), "riskProfile": risk,
			"projectOwners": owners, "securityChampions": champions}})
	}
	for k := 0; k < 6; k++ {
		w.subs = append(w.subs, map[string]any{
			"id":   fmt.Sprintf("%012d", rng.Int64N(1e12)),
			"name": fmt.Sprintf("%s-%s", pick(rng, []string{"prod", "staging", "dev", "sandbox"}), pick(rng, []string{"core", "data", "web"})),
			"tags": map[string]any{"env": pick(rng, []string{"prod", "dev"}), "cost-center": fmt.Sprintf("cc-%d", 100+k)},
		})
	}
	return w
}

func slug(s string) string {
	b := []byte{}
	for _, c := range []byte(s) {
		switch {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case c == ' ':
			b = append(b, '-')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// issueTypes are the types newIssue picks from.
var issueTypes = wizdef.IssueTypes()

// weighted picks a severity with a realistic skew (few criticals).
func weightedSeverity(rng *rand.Rand) string {
	r := rng.Float64()
	switch {
	case r < 0.1:
		return wizdef.SeverityCritical
	case r < 0.35:
		return wizdef.SeverityHigh
	case r < 0.7:
		return wizdef.SeverityMedium
	case r < 0.9:
		return wizdef.SeverityLow
	default:
		return wizdef.SeverityInformational
	}
}

// newIssue builds an issue of type typ created at created; the status is OPEN with statusChangedAt =
// createdAt. Callers adjust the history afterwards.
func (w *world) newIssue(typ, severity string, created time.Time, projects []*project) *issue {
	rng := w.rng
	if typ == "" {
		typ = pick(rng, issueTypes)
	}
	if severity == "" {
		severity = weightedSeverity(rng)
	}
	iss := &issue{id: newUUID(rng), typ: typ, severity: severity, status: wizdef.StatusOpen, createdAt: created, updatedAt: created}
	if rng.Float64() >= 0.04 {
		iss.rule = pick(rng, w.rules[typ])
		iss.ruleListOnly = ruleListOnly(iss.id)
	}
	sca := created
	iss.statusChangedAt = &sca
	if projects == nil {
		switch r := rng.Float64(); {
		case r < 0.05:
		case r < 0.8:
			projects = []*project{pick(rng, w.projects)}
		default:
			a, b := rng.IntN(len(w.projects)), rng.IntN(len(w.projects)-1)
			if b >= a {
				b++
			}
			projects = []*project{w.projects[a], w.projects[b]}
		}
	}
	iss.projects = projects
	iss.entity = w.newEntity()
	if rng.Float64() < 0.1 {
		key := fmt.Sprintf("SEC-%d", 1000+rng.IntN(9000))
		iss.tickets = []any{map[string]any{"externalId": key, "name": key, "url": "https://jira.example.com/browse/" + key}}
	} else {
		iss.tickets = []any{}
	}
	if rng.Float64() < 0.15 {
		due := micro(created.Add(time.Duration(7+rng.IntN(60)) * 24 * time.Hour))
		iss.dueAt = &due
	}
	return iss
}

// listOnlyOneIn: one in listOnlyOneIn issues with a rule leave the deprecated sourceRule null and
// carry the rule only in sourceRules.
const listOnlyOneIn = 5

// ruleListOnly decides from the issue id (so, like the id, from the seed) whether the issue's rule is
// only in sourceRules. It draws nothing from the generator's RNG, so every other generated value
// stays what the seed gave before sourceRules existed.
func ruleListOnly(id string) bool {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()%listOnlyOneIn == 0
}

func (w *world) newEntity() map[string]any {
	rng := w.rng
	k := pick(rng, entityKinds)
	sub := pick(rng, w.subs)
	name := fmt.Sprintf("%s%08x", k.prefix, rng.Uint32())
	var platform any = k.platform
	if rng.Float64() < 0.05 {
		platform = nil
	}
	region := pick(rng, regions[k.platform])
	if rng.Float64() < 0.1 {
		region = ""
	}
	tags := map[string]any{}
	if rng.Float64() < 0.7 {
		tags["Name"] = name
		tags["team"] = pick(rng, []string{"payments", "platform", "data"})
	}
	providerID := fmt.Sprintf("arn:aws:%s:%s:%s:%s", k.native, region, sub["id"], name)
	return map[string]any{
		"id": newUUID(rng), "type": k.typ, "nativeType": k.native, "name": name, "status": pick(rng, []string{"Active", "Active", "Inactive"}),
		"cloudPlatform": platform, "cloudProviderURL": "https://console.example.com/" + name, "providerId": providerID,
		"region": region, "resourceGroupExternalId": optString(rng, 0.5, "rg-"+name), "subscriptionExternalId": sub["id"],
		"subscriptionName": sub["name"], "subscriptionTags": sub["tags"], "tags": tags, "externalId": providerID,
	}
}

func (w *world) addNote(iss *issue, at time.Time, text string, account string) *note {
	n := &note{id: newUUID(w.rng), createdAt: at, updatedAt: at, text: text}
	if account != "" {
		n.account = map[string]any{"name": account}
	} else {
		name := pick(w.rng, people)
		n.user = map[string]any{"name": name, "email": slug(name) + "@example.com"}
	}
	iss.notes = append(iss.notes, n)
	return n
}

// The resolution reasons of generated history, in the order the seed draws them. Wiz itself closes
// issues with reasons a write-back may not send (CONTROL_CHANGED, DETECTION_EXPIRED), so history
// has them too.
var (
	generatedRejectReasons  = []string{wizdef.ReasonWontFix, wizdef.ReasonFalsePositive, wizdef.ReasonException}
	generatedResolveReasons = []string{wizdef.ReasonIssueFixed, wizdef.ReasonObjectDeleted, wizdef.ReasonControlChanged, wizdef.ReasonDetectionExpired}
)

// generate builds n issues whose history spans days and ends at now. See the package doc for the shape.
func (w *world) generate(n, days int, now time.Time) []*issue {
	rng := w.rng
	span := time.Duration(days) * 24 * time.Hour
	start := now.Add(-span)
	randTime := func(from, to time.Time) time.Time {
		if !to.After(from) {
			return from
		}
		return micro(from.Add(time.Duration(rng.Int64N(int64(to.Sub(from))))))
	}
	created := make([]time.Time, n)
	k := 0
	bigRun := n / 2
	if n >= 1000 {
		bigRun = 601
	}
	if n < 4 {
		bigRun = 0
	}
	tBig := randTime(start.Add(span/3), start.Add(span/2))
	for ; k < bigRun; k++ {
		created[k] = tBig
	}
	for k < n && k < bigRun+n/20 { // small tie groups of 2..30
		t := randTime(start, now.Add(-time.Hour))
		for g := 2 + rng.IntN(29); g > 0 && k < n; g-- {
			created[k] = t
			k++
		}
	}
	for recent := max(n/100, 3); recent > 0 && k < n; recent-- { // the last minutes: hidden at first
		created[k] = randTime(now.Add(-10*time.Minute), now)
		k++
	}
	for ; k < n; k++ {
		created[k] = randTime(start, now)
	}
	tBulk := randTime(start.Add(span/2), start.Add(3*span/4))
	bulk := 0
	issues := make([]*issue, n)
	for k := range issues {
		c := created[k]
		iss := w.newIssue("", "", c, nil)
		later := func() time.Time { return randTime(c, now) }
		switch r := rng.Float64(); {
		case r < 0.40:
			switch q := rng.Float64(); {
			case q < 0.25:
				iss.statusChangedAt = nil
			case q < 0.5:
				s := micro(c.Add(-time.Duration(1+rng.IntN(1500)) * time.Millisecond))
				iss.statusChangedAt = &s
			}
		case r < 0.55:
			w.setStatus(iss, wizdef.StatusInProgress, "", later())
		case r < 0.75:
			at := later()
			if bulk < 250 && c.Before(tBulk) && rng.Float64() < 0.6 {
				at = tBulk
				bulk++
			}
			w.setStatus(iss, wizdef.StatusRejected, pick(rng, generatedRejectReasons), at)
		case r < 0.92:
			w.setStatus(iss, wizdef.StatusResolved, pick(rng, generatedResolveReasons), later())
		default: // resolved, then reopened
			w.setStatus(iss, wizdef.StatusOpen, "", later())
		}
		if rng.Float64() < 0.15 {
			at := randTime(c, now)
			w.addNote(iss, at, "Investigating: "+pick(rng, []string{"owner contacted", "ticket opened", "expected behaviour, see runbook"}), "")
			if at.After(iss.updatedAt) {
				iss.updatedAt = at
			}
		}
		iss.visibleAt = iss.latest().Add(time.Duration(rng.Int64N(int64(maxLag))))
		issues[k] = iss
	}
	return issues
}

// setStatus changes an issue's status at time at, keeping resolvedAt and resolutionReason consistent.
func (w *world) setStatus(iss *issue, status, reason string, at time.Time) {
	at = micro(at)
	iss.status = status
	iss.statusChangedAt = &at
	iss.resolutionReason = ""
	iss.resolvedAt = nil
	switch status {
	case wizdef.StatusResolved:
		iss.resolvedAt = &at
		iss.resolutionReason = reason
	case wizdef.StatusRejected:
		iss.resolutionReason = reason
	}
	if at.After(iss.updatedAt) {
		iss.updatedAt = at
	}
}
