package wizsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"
)

// Error codes in errors[].extensions.code.
const (
	CodeUnauthenticated  = "UNAUTHENTICATED"
	CodeBadUserInput     = "BAD_USER_INPUT"
	CodeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	CodeRateLimited      = "RATE_LIMIT_EXCEEDED"
	CodeInternal         = "INTERNAL"
	CodeNotFound         = "NOT_FOUND"
)

// maxBody bounds a GraphQL request body.
const maxBody = 1 << 20

// maxCachedDocs bounds the parsed-document cache; it is emptied when full.
const maxCachedDocs = 512

// gqlRequest is a GraphQL-over-HTTP request body.
type gqlRequest struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
}

// execError is an error that ends a request: HTTP status, code and message.
type execError struct {
	status int
	code   string
	msg    string
}

func (e *execError) Error() string { return e.msg }

func userError(format string, args ...any) *execError {
	return &execError{status: http.StatusOK, code: CodeBadUserInput, msg: fmt.Sprintf(format, args...)}
}

// errorBody renders {"errors":[{message, extensions:{code}}]} with "data":null when withData.
func errorBody(code, msg string, withData bool) []byte {
	b := []byte(`{"errors":[`)
	b = appendError(b, code, msg)
	b = append(b, ']')
	if withData {
		b = append(b, `,"data":null`...)
	}
	return append(b, '}')
}

func appendError(b []byte, code, msg string) []byte {
	b = append(b, `{"message":`...)
	b = strconv.AppendQuote(b, msg)
	b = append(b, `,"extensions":{"code":`...)
	b = strconv.AppendQuote(b, code)
	return append(b, "}}"...)
}

func writeErrors(w http.ResponseWriter, status int, code, msg string, withData bool) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(code, msg, withData))
}

// cachedDoc is a parsed and validated query document.
type cachedDoc struct {
	doc       *ast.QueryDocument
	errs      gqlerror.List
	cacheable bool // no directives: the fast-path decision depends on the text only

	mu   sync.Mutex
	fast map[*ast.Field]bool
}

// docCache caches documents by query text.
type docCache struct {
	mu   sync.Mutex
	docs map[string]*cachedDoc
}

func (s *Server) document(query string) *cachedDoc {
	s.docs.mu.Lock()
	cd, ok := s.docs.docs[query]
	s.docs.mu.Unlock()
	if ok {
		return cd
	}
	doc, errs := gqlparser.LoadQueryWithRules(s.schema, query, nil)
	cd = &cachedDoc{doc: doc, errs: errs, cacheable: !strings.Contains(query, "@"), fast: map[*ast.Field]bool{}}
	s.docs.mu.Lock()
	if len(s.docs.docs) >= maxCachedDocs {
		clear(s.docs.docs)
	}
	s.docs.docs[query] = cd
	s.docs.mu.Unlock()
	return cd
}

// handleGraphQL is POST /graphql.
func (s *Server) handleGraphQL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeErrors(w, http.StatusMethodNotAllowed, CodeBadUserInput, "only POST is supported", false)
		return
	}
	tok := s.authorize(w, r)
	if tok == nil {
		return
	}
	if tok.limiter != nil && !tok.limiter.AllowN(s.now(), 1) {
		writeErrors(w, http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded", false)
		return
	}
	var post string
	if f := s.faults.next(); f != nil {
		s.stats.fault(f.kind)
		s.log.Debug("injecting fault", "kind", f.kind)
		switch f.kind {
		case Fault429:
			if f.hasRetry {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.retryAfter.Seconds()))))
			}
			writeErrors(w, http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded", false)
			return
		case FaultGraphQLRateLimit:
			// Throttling as a GraphQL error inside an HTTP 200: Wiz's Backstage plugin
			// (types/index.ts) knows RATE_LIMIT_EXCEEDED as a code of the answer, not only as a 429.
			writeErrors(w, http.StatusOK, CodeRateLimited, "rate limit exceeded", true)
			return
		case Fault5xx:
			writeErrors(w, f.code, CodeInternal, "internal server error", false)
			return
		case FaultExpire:
			s.ExpireTokens()
			writeErrors(w, http.StatusUnauthorized, CodeUnauthenticated, "unauthenticated: access token expired", false)
			return
		case FaultExpireInData:
			s.ExpireTokens()
			writeErrors(w, http.StatusOK, CodeUnauthenticated, "unauthenticated: access token expired", true)
			return
		case FaultGateway:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(f.code)
			fmt.Fprintf(w, "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n</body>\r\n</html>\r\n",
				f.code, http.StatusText(f.code), f.code, http.StatusText(f.code))
			return
		case FaultCursor:
			s.InvalidateCursors()
		case FaultSlow:
			t := time.NewTimer(f.delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.closing:
				t.Stop()
				writeErrors(w, http.StatusServiceUnavailable, CodeInternal, "server shutting down", false)
				return
			}
		case FaultPartial, FaultMalformed:
			post = f.kind
		}
	}
	var req gqlRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || req.Query == "" {
		writeErrors(w, http.StatusBadRequest, CodeBadUserInput, "request body must be JSON with a query", false)
		return
	}
	status, out, nodes := s.execute(&req, post == FaultPartial)
	if !s.wait(r, s.opts.Latency+time.Duration(nodes)*s.opts.LatencyPerIssue) {
		s.putBody(out)
		if r.Context().Err() == nil {
			writeErrors(w, http.StatusServiceUnavailable, CodeInternal, "server shutting down", false)
		}
		return
	}
	if post == FaultMalformed && status == http.StatusOK {
		out = out[:len(out)/2]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out))) // not chunked: a client that stops reading at the JSON's end still reuses the connection
	w.WriteHeader(status)
	_, _ = w.Write(out)
	s.putBody(out)
}

// wait sleeps d (the latency model), and reports false when the request or the server ended first.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

// maxPooledBody keeps an unusually large response's buffer out of the pool.
const maxPooledBody = 8 << 20

// getBody returns an empty buffer for a response, from the pool when it has one.
func (s *Server) getBody() []byte {
	if p, ok := s.bodies.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 64<<10)
}

// putBody hands a written response's buffer back to the pool.
func (s *Server) putBody(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledBody {
		return
	}
	b = b[:0]
	s.bodies.Put(&b)
}

// execute runs a request and returns the HTTP status, the body and how many issue nodes it holds.
// partial adds an INTERNAL error next to successful data.
func (s *Server) execute(req *gqlRequest, partial bool) (int, []byte, int) {
	cd := s.document(req.Query)
	if len(cd.errs) > 0 {
		b := []byte(`{"errors":[`)
		for k, e := range cd.errs {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendError(b, CodeValidationFailed, e.Message)
		}
		return http.StatusOK, append(b, `],"data":null}`...), 0
	}
	op := cd.doc.Operations.ForName(req.OperationName)
	if op == nil {
		return http.StatusOK, errorBody(CodeBadUserInput, fmt.Sprintf("unknown operation %q", req.OperationName), true), 0
	}
	vars, err := validator.VariableValues(s.schema, op, req.Variables)
	if err != nil {
		msg := err.Error()
		var ge *gqlerror.Error
		if errors.As(err, &ge) {
			msg = ge.Message
			if len(ge.Path) > 0 {
				msg = ge.Path.String() + ": " + msg
			}
		}
		return http.StatusOK, errorBody(CodeBadUserInput, msg, true), 0
	}
	p := &projector{schema: s.schema, vars: vars}
	root := "Query"
	switch op.Operation {
	case ast.Mutation:
		root = "Mutation"
	case ast.Subscription:
		return http.StatusOK, errorBody(CodeBadUserInput, "subscriptions are not supported", true), 0
	}
	b := s.getBody()
	if partial {
		b = append(b, `{"errors":[`...)
		b = appendError(b, CodeInternal, "internal error: some results could not be loaded")
		b = append(b, `],"data":{`...)
	} else {
		b = append(b, `{"data":{`...)
	}
	for k, c := range p.collect([]ast.SelectionSet{op.SelectionSet}, root) {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, c.key)
		b = append(b, ':')
		var xerr *execError
		switch name := c.fields[0].Name; name {
		case "__typename":
			b = strconv.AppendQuote(b, root)
		case "issuesV2":
			b, xerr = s.execIssues(b, p, cd, c.fields)
		case "graphSearch", "projects":
			b, xerr = s.execContextQuery(b, p, name, c.fields)
		default:
			b, xerr = s.execMutation(b, p, name, c.fields)
		}
		if xerr != nil {
			return xerr.status, errorBody(xerr.code, xerr.msg, xerr.status == http.StatusOK), p.nodes
		}
	}
	return http.StatusOK, append(b, "}}"...), p.nodes
}

// isFast reports whether a nodes selection has the standard shape, so pre-serialised bytes answer it.
func (s *Server) isFast(p *projector, cd *cachedDoc, nodes []*ast.Field) bool {
	if cd.cacheable {
		cd.mu.Lock()
		v, ok := cd.fast[nodes[0]]
		cd.mu.Unlock()
		if ok {
			return v
		}
	}
	v := p.shape(subSets(nodes), "Issue") == s.stdShape
	if cd.cacheable {
		cd.mu.Lock()
		cd.fast[nodes[0]] = v
		cd.mu.Unlock()
	}
	return v
}

// execIssues answers issuesV2.
func (s *Server) execIssues(b []byte, p *projector, cd *cachedDoc, fields []*ast.Field) ([]byte, *execError) {
	q, err := parseIssueArgs(fields[0].ArgumentMap(p.vars))
	if err != nil {
		if errors.Is(err, errEmptyList) {
			return b, &execError{status: http.StatusBadRequest, code: CodeBadUserInput, msg: err.Error()}
		}
		return b, userError("%s", err.Error())
	}
	conn := p.collect(subSets(fields), "IssueConnection")
	fast := make([]bool, len(conn))
	needTrees, wantTotal := false, false
	for k, c := range conn {
		switch c.fields[0].Name {
		case "nodes":
			fast[k] = s.isFast(p, cd, c.fields)
			needTrees = needTrees || !fast[k]
		case "totalCount":
			wantTotal = true
		}
	}
	now := s.now()
	s.mu.RLock()
	pg, err := s.runIssues(q, now)
	if err != nil {
		s.mu.RUnlock()
		return b, userError("%s", err.Error())
	}
	raws := make([][]byte, len(pg.nodes))
	for k, n := range pg.nodes {
		raws[k] = n.full
	}
	var trees []map[string]any
	if needTrees {
		trees = make([]map[string]any, len(pg.nodes))
		for k, n := range pg.nodes {
			trees[k] = n.tree()
		}
	}
	total := 0
	if wantTotal {
		total = s.countIssues(q, now)
	}
	s.mu.RUnlock()
	s.stats.served(len(pg.nodes))
	p.nodes += len(pg.nodes)
	size := 256
	for _, r := range raws {
		size += len(r) + 1
	}
	b = slices.Grow(b, size)

	b = append(b, '{')
	for k, c := range conn {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, c.key)
		b = append(b, ':')
		switch c.fields[0].Name {
		case "__typename":
			b = append(b, `"IssueConnection"`...)
		case "totalCount":
			b = strconv.AppendInt(b, int64(total), 10)
		case "pageInfo":
			var end any
			if pg.endCursor != "" {
				end = pg.endCursor
			}
			b = p.writeObject(b, subSets(c.fields), "PageInfo", map[string]any{"hasNextPage": pg.hasNext, "endCursor": end})
		case "nodes":
			b = append(b, '[')
			for j := range pg.nodes {
				if j > 0 {
					b = append(b, ',')
				}
				if fast[k] {
					b = append(b, raws[j]...)
				} else {
					b = p.writeObject(b, subSets(c.fields), "Issue", trees[j])
				}
			}
			b = append(b, ']')
		}
	}
	return append(b, '}'), nil
}
