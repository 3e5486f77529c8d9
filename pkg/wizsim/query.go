package wizsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// Page size limits of issuesV2 (WIZ_API.md §2).
const (
	maxFirst     = wizdef.MaxPageSize
	defaultFirst = 50
)

// orderField is an IssueOrderField; its value indexes Server.idx.
type orderField int

const (
	orderCreatedAt orderField = iota
	orderStatusChangedAt
	orderSeverity
	numOrders
)

var orderNames = map[string]orderField{"CREATED_AT": orderCreatedAt, "STATUS_CHANGED_AT": orderStatusChangedAt, "SEVERITY": orderSeverity}

// sortKey is an issue's primary sort key for field f: nanoseconds since the epoch for timestamps (a null
// statusChangedAt sorts last), the rank for severity. Ties break on the id.
func sortKey(i *issue, f orderField) int64 {
	switch f {
	case orderStatusChangedAt:
		if i.statusChangedAt == nil {
			return math.MaxInt64
		}
		return i.statusChangedAt.UnixNano()
	case orderSeverity:
		rank, _ := wizdef.SeverityRank(i.severity)
		return int64(rank)
	default:
		return i.createdAt.UnixNano()
	}
}

func less(f orderField, a *issue, ka int64, b *issue) bool {
	kb := sortKey(b, f)
	return ka < kb || ka == kb && a.id < b.id
}

// insertSorted inserts iss into the ascending index of field f.
func insertSorted(xs []*issue, f orderField, iss *issue) []*issue {
	k := sortKey(iss, f)
	pos := sort.Search(len(xs), func(j int) bool { return less(f, iss, k, xs[j]) })
	xs = append(xs, nil)
	copy(xs[pos+1:], xs[pos:])
	xs[pos] = iss
	return xs
}

// removeSorted removes iss from the index of field f; its key must be the one it was inserted with.
func removeSorted(xs []*issue, f orderField, iss *issue) []*issue {
	k := sortKey(iss, f)
	pos := sort.Search(len(xs), func(j int) bool {
		kj := sortKey(xs[j], f)
		return kj > k || kj == k && xs[j].id >= iss.id
	})
	if pos < len(xs) && xs[pos] == iss {
		return append(xs[:pos], xs[pos+1:]...)
	}
	return xs
}

// errEmptyList marks a filter holding an empty list: Wiz answers HTTP 400.
var errEmptyList = errors.New("empty list filter")

// timeRange is an exclusive (after, before) bound in nanoseconds.
type timeRange struct {
	set           bool
	after, before int64
}

func (r timeRange) contains(t *time.Time) bool {
	if !r.set {
		return true
	}
	if t == nil {
		return false
	}
	n := t.UnixNano()
	return n > r.after && n < r.before
}

// issueQuery is a parsed issuesV2 call.
type issueQuery struct {
	ids, status, severity, types, projects map[string]bool
	created, changed, resolved             timeRange
	entityID                               string
	search                                 string
	order                                  orderField
	desc                                   bool
	first                                  int
	after                                  *string
	hash                                   uint64 // binds cursors to filter and order
}

func toStrings(v any) ([]string, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		if s, ok := v.(string); ok {
			return []string{s}, true
		}
		return nil, false
	}
	out := make([]string, 0, rv.Len())
	for k := 0; k < rv.Len(); k++ {
		e := rv.Index(k).Interface()
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return int64(x), true
		}
	}
	return 0, false
}

func parseTS(v any, name string) (int64, bool, error) {
	if v == nil {
		return 0, false, nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, false, fmt.Errorf("%s: expected an RFC 3339 timestamp string", name)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false, fmt.Errorf("%s: invalid timestamp %q", name, s)
	}
	return t.UnixNano(), true, nil
}

func parseRange(v any, name string, canon *strings.Builder) (timeRange, error) {
	r := timeRange{after: math.MinInt64, before: math.MaxInt64}
	m, ok := v.(map[string]any)
	if !ok || v == nil {
		return timeRange{}, nil
	}
	a, hasA, err := parseTS(m["after"], name+".after")
	if err != nil {
		return r, err
	}
	b, hasB, err := parseTS(m["before"], name+".before")
	if err != nil {
		return r, err
	}
	if hasA {
		r.after, r.set = a, true
	}
	if hasB {
		r.before, r.set = b, true
	}
	fmt.Fprintf(canon, "%s:%v/%d/%v/%d;", name, hasA, a, hasB, b)
	return r, nil
}

// parseIssueArgs turns the issuesV2 arguments into a query. Errors are user errors; errEmptyList is
// wrapped for an empty list.
func parseIssueArgs(args map[string]any) (*issueQuery, error) {
	q := &issueQuery{order: orderSeverity, desc: true, first: defaultFirst}
	var canon strings.Builder
	if f, ok := args["filterBy"].(map[string]any); ok {
		for _, name := range []string{"id", "status", "severity", "type", "project"} {
			v, present := f[name]
			if !present || v == nil {
				continue
			}
			list, ok := toStrings(v)
			if !ok {
				return nil, fmt.Errorf("filterBy.%s: expected a list of strings", name)
			}
			if len(list) == 0 {
				return nil, fmt.Errorf("filterBy.%s: %w", name, errEmptyList)
			}
			if name == "id" && len(list) > maxFirst {
				// IssueFilters.id takes a list (terraform-provider-wiz types it []string, WIZ_API.md
				// §10); Wiz documents no bound, but no page can hold more than first's 500 issues, so
				// a longer list could never be answered whole: refused, the safe assumption.
				return nil, fmt.Errorf("filterBy.id: %d ids, at most %d (one page) may be asked for at once", len(list), maxFirst)
			}
			set := make(map[string]bool, len(list))
			for _, s := range list {
				set[s] = true
			}
			sort.Strings(list)
			fmt.Fprintf(&canon, "%s=%s;", name, strings.Join(list, ","))
			switch name {
			case "id":
				q.ids = set
			case "status":
				q.status = set
			case "severity":
				q.severity = set
			case "type":
				q.types = set
			case "project":
				q.projects = set
			}
		}
		var err error
		if q.created, err = parseRange(f["createdAt"], "filterBy.createdAt", &canon); err != nil {
			return nil, err
		}
		if q.changed, err = parseRange(f["statusChangedAt"], "filterBy.statusChangedAt", &canon); err != nil {
			return nil, err
		}
		if q.resolved, err = parseRange(f["resolvedAt"], "filterBy.resolvedAt", &canon); err != nil {
			return nil, err
		}
		if re, ok := f["relatedEntity"].(map[string]any); ok {
			q.entityID, _ = re["id"].(string)
			fmt.Fprintf(&canon, "entity=%s;", q.entityID)
		}
		if s, ok := f["search"].(string); ok {
			q.search = strings.ToLower(s)
			fmt.Fprintf(&canon, "search=%q;", q.search)
		}
	}
	if q.changed.set {
		q.order, q.desc = orderStatusChangedAt, false
	}
	if o, ok := args["orderBy"].(map[string]any); ok {
		name, _ := o["field"].(string)
		f, known := orderNames[name]
		if !known {
			return nil, fmt.Errorf("orderBy.field: unknown value %q", name)
		}
		dir, _ := o["direction"].(string)
		q.order, q.desc = f, dir == "DESC"
	}
	fmt.Fprintf(&canon, "order=%d/%v", q.order, q.desc)
	h := fnv.New64a()
	h.Write([]byte(canon.String()))
	q.hash = h.Sum64()
	if v, present := args["first"]; present && v != nil {
		n, ok := toInt(v)
		if !ok || n < 1 || n > maxFirst {
			return nil, fmt.Errorf("first: must be between 1 and %d, got %v", maxFirst, v)
		}
		q.first = int(n)
	}
	if a, ok := args["after"].(string); ok {
		q.after = &a
	}
	return q, nil
}

func (q *issueQuery) matches(i *issue) bool {
	if q.ids != nil && !q.ids[i.id] || q.status != nil && !q.status[i.status] ||
		q.severity != nil && !q.severity[i.severity] || q.types != nil && !q.types[i.typ] {
		return false
	}
	if q.projects != nil {
		found := false
		for _, p := range i.projects {
			if q.projects[p.id] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if !q.created.contains(&i.createdAt) || !q.changed.contains(i.statusChangedAt) || !q.resolved.contains(i.resolvedAt) {
		return false
	}
	if q.entityID != "" && i.entity["id"] != q.entityID {
		return false
	}
	if q.search != "" {
		name, _ := i.entity["name"].(string)
		rname := ""
		if i.rule != nil {
			rname, _ = i.rule.tree["name"].(string)
		}
		if !strings.Contains(strings.ToLower(name+"\x00"+rname), q.search) {
			return false
		}
	}
	return true
}

// bounds returns the exclusive key range the order field's own filter imposes.
func (q *issueQuery) bounds() (lo, hi int64, bounded bool) {
	lo, hi = math.MinInt64, math.MaxInt64
	var r timeRange
	switch q.order {
	case orderCreatedAt:
		r = q.created
	case orderStatusChangedAt:
		r = q.changed // hi stays MaxInt64: the null sentinel, excluded by the filter
	}
	if r.set {
		lo, hi, bounded = r.after, r.before, true
	}
	return lo, hi, bounded
}

// position is a place in an ordering: the last item a page returned.
type position struct {
	gen  uint64
	hash uint64
	key  int64
	id   string
}

const macLen = 12

func (s *Server) encodeCursor(p position) string {
	payload := fmt.Sprintf("%d|%x|%d|%s", p.gen, p.hash, p.key, p.id)
	m := hmac.New(sha256.New, s.cursorKey)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(append([]byte(payload), m.Sum(nil)[:macLen]...))
}

// badAfter starts the message of every refused `after` value (answered as BAD_USER_INPUT). Wiz's
// wording for an invalid or expired cursor is not documented (WIZ_API.md §10), so the simulator
// deliberately never says "cursor": a client must tell a rejected cursor by the code and by having
// sent one, not by the message.
const badAfter = `invalid value for argument "after"`

// decodeCursor checks a cursor's signature, generation and binding to the query hash.
func (s *Server) decodeCursor(c string, hash, gen uint64) (position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) <= macLen {
		return position{}, errors.New(badAfter + ": unreadable")
	}
	payload, mac := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	m := hmac.New(sha256.New, s.cursorKey)
	m.Write(payload)
	if !hmac.Equal(mac, m.Sum(nil)[:macLen]) {
		return position{}, errors.New(badAfter + ": signature mismatch")
	}
	parts := strings.SplitN(string(payload), "|", 4)
	if len(parts) != 4 {
		return position{}, errors.New(badAfter + ": malformed")
	}
	var p position
	p.gen, _ = strconv.ParseUint(parts[0], 10, 64)
	p.hash, _ = strconv.ParseUint(parts[1], 16, 64)
	p.key, _ = strconv.ParseInt(parts[2], 10, 64)
	p.id = parts[3]
	switch {
	case p.gen != gen:
		return position{}, errors.New(badAfter + ": expired")
	case p.hash != hash:
		return position{}, errors.New(badAfter + ": issued for a different query")
	}
	return p, nil
}

// page is the result of an issuesV2 call.
type page struct {
	nodes     []*issue
	hasNext   bool
	endCursor string
}

// runIssues executes q against the index at time now. The caller holds s.mu for reading.
func (s *Server) runIssues(q *issueQuery, now time.Time) (page, error) {
	xs := s.idx[q.order]
	f := q.order
	lo, hi, bounded := q.bounds()
	var cur *position
	if q.after != nil {
		p, err := s.decodeCursor(*q.after, q.hash, s.cursorGen)
		if err != nil {
			return page{}, err
		}
		cur = &p
	}
	var pg page
	visit := func(i *issue) bool { // false stops the scan
		if now.Before(i.visibleAt) || !q.matches(i) {
			return true
		}
		if len(pg.nodes) == q.first {
			pg.hasNext = true
			return false
		}
		pg.nodes = append(pg.nodes, i)
		return true
	}
	if !q.desc {
		start := sort.Search(len(xs), func(j int) bool {
			k := sortKey(xs[j], f)
			if cur != nil {
				return k > cur.key || k == cur.key && xs[j].id > cur.id
			}
			return k > lo
		})
		for j := start; j < len(xs); j++ {
			if bounded && sortKey(xs[j], f) >= hi || !visit(xs[j]) {
				break
			}
		}
	} else {
		end := sort.Search(len(xs), func(j int) bool {
			k := sortKey(xs[j], f)
			if cur != nil {
				return k > cur.key || k == cur.key && xs[j].id >= cur.id
			}
			return bounded && k >= hi
		})
		for j := end - 1; j >= 0; j-- {
			if bounded && sortKey(xs[j], f) <= lo || !visit(xs[j]) {
				break
			}
		}
	}
	if n := len(pg.nodes); n > 0 {
		last := pg.nodes[n-1]
		pg.endCursor = s.encodeCursor(position{gen: s.cursorGen, hash: q.hash, key: sortKey(last, f), id: last.id})
	}
	return pg, nil
}

// countIssues is totalCount: every visible issue matching the filter.
func (s *Server) countIssues(q *issueQuery, now time.Time) int {
	n := 0
	for _, i := range s.idx[orderCreatedAt] {
		if !now.Before(i.visibleAt) && q.matches(i) {
			n++
		}
	}
	return n
}
