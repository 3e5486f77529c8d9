package wizsim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"golang.org/x/time/rate"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// Options configure a simulator. Zero values take the documented defaults.
type Options struct {
	Issues       int           // number of generated issues (default 1000 when 0)
	Seed         int64         // generator and fault RNG seed
	Days         int           // history spread in days (default 7)
	Auth         string        // "cognito" (default, audience wiz-api) or "auth0" (audience beyond-api)
	ClientID     string        // default "wizsim-client"
	ClientSecret string        // default "wizsim-secret"
	ExpiresIn    time.Duration // token lifetime (default 24h)
	Rate         float64       // requests/s per service account (all its tokens) enforced with 429; 0 = unlimited
	Faults       string        // fault spec, same syntax as --faults; "" = none
	Live         float64       // live mode: status changes per second (plus half as many new issues); 0 = static
	// Latency and LatencyPerIssue model how long Wiz takes to answer: every /graphql answer waits
	// Latency plus LatencyPerIssue for each issue node it returns (WIZ_API.md: pages take seconds;
	// heavy queries over a minute). Zero: answer at once.
	Latency         time.Duration
	LatencyPerIssue time.Duration
	Now             func() time.Time // injected clock; nil = time.Now. Visibility, expiry, rate and live use it.
	Logger          *slog.Logger     // nil = discard
}

// IssueState is what a test needs about one issue to compute expected query results.
type IssueState struct {
	ID              string
	Type            string
	Severity        string
	Status          string
	ProjectIDs      []string
	CreatedAt       time.Time
	StatusChangedAt *time.Time
	VisibleAt       time.Time
}

// NewIssue describes an issue for AddIssue; empty fields are chosen by the generator.
type NewIssue struct {
	Type       string        // IssueType; "" = random
	Severity   string        // Severity; "" = random
	Status     string        // initial status; "" = OPEN
	ProjectIDs []string      // ids of existing projects (see Snapshot); nil = random
	Lag        time.Duration // visibility lag after creation; 0 = visible at once
}

// Server is an in-process Wiz API simulator.
type Server struct {
	// bodies keeps response buffers for the next request: a page of 200 issues is ~350 KB, and
	// growing a fresh buffer for every page would allocate ~1 MB per page, which makes the
	// simulator's own garbage collection (over tens of MB of generated issues) steal CPU from
	// whatever it serves on the same machine.
	bodies    sync.Pool // of *[]byte
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	schema    *ast.Schema
	std       []*ast.Field // the standard nodes field
	stdShape  string
	cursorKey []byte
	handler   http.Handler
	closing   chan struct{}

	mu        sync.RWMutex
	world     *world
	byID      map[string]*issue
	notes     map[string]*issue // note id -> issue
	idx       [numOrders][]*issue
	cursorGen uint64

	auth   authState
	faults faultState
	stats  statsState
	docs   docCache

	life      sync.Mutex
	srv       *http.Server
	url       string
	closed    bool
	stopLive  context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New generates the data set and returns a server that does not listen yet (see Start and Handler).
func New(opts Options) (*Server, error) {
	if opts.Issues == 0 {
		opts.Issues = 1000
	}
	if opts.Issues < 0 {
		return nil, fmt.Errorf("wizsim: issues must be positive, got %d", opts.Issues)
	}
	if opts.Days == 0 {
		opts.Days = 7
	}
	if opts.Days < 0 {
		return nil, fmt.Errorf("wizsim: days must be positive, got %d", opts.Days)
	}
	if opts.Auth == "" {
		opts.Auth = "cognito"
	}
	if _, ok := audiences[opts.Auth]; !ok {
		return nil, fmt.Errorf("wizsim: auth must be cognito or auth0, got %q", opts.Auth)
	}
	if opts.ClientID == "" {
		opts.ClientID = "wizsim-client"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "wizsim-secret"
	}
	if opts.ExpiresIn == 0 {
		opts.ExpiresIn = 24 * time.Hour
	}
	if opts.Rate < 0 || opts.Live < 0 {
		return nil, errors.New("wizsim: rate and live must not be negative")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	fl, err := parseFaults(opts.Faults)
	if err != nil {
		return nil, fmt.Errorf("wizsim: faults: %w", err)
	}
	schema, err := loadSchema()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, log: opts.Logger.With("component", "wizsim"), now: opts.Now, schema: schema,
		closing: make(chan struct{}),
		byID:    make(map[string]*issue, opts.Issues), notes: map[string]*issue{},
		docs:  docCache{docs: map[string]*cachedDoc{}},
		stats: statsState{s: newStats()},
	}
	key := sha256.Sum256([]byte("wizsim cursor key " + strconv.FormatInt(opts.Seed, 10)))
	s.cursorKey = key[:]
	s.auth = authState{clientID: opts.ClientID, secret: opts.ClientSecret, tokens: map[string]*token{}}
	if opts.Rate > 0 {
		s.auth.limiter = rate.NewLimiter(rate.Limit(opts.Rate), int(math.Max(1, math.Ceil(opts.Rate))))
	}
	s.faults = faultState{rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0xfa017)), faults: fl}
	doc, errs := gqlparser.LoadQueryWithRules(schema, "{ issuesV2 { nodes {"+standardNodeSelection+"} } }", nil)
	if len(errs) > 0 {
		return nil, fmt.Errorf("wizsim: standard selection: %w", errs)
	}
	conn := doc.Operations[0].SelectionSet[0].(*ast.Field)
	s.std = []*ast.Field{conn.SelectionSet[0].(*ast.Field)}
	s.stdShape = (&projector{schema: schema}).shape(subSets(s.std), "Issue")

	s.world = newWorld(rand.New(rand.NewPCG(uint64(opts.Seed), 0x77697a)))
	generated := s.world.generate(opts.Issues, opts.Days, micro(s.now()))
	for _, iss := range generated {
		s.serialize(iss)
		s.byID[iss.id] = iss
		for _, n := range iss.notes {
			s.notes[n.id] = iss
		}
	}
	for f := orderField(0); f < numOrders; f++ {
		xs := slices.Clone(generated)
		sort.Slice(xs, func(a, b int) bool { return less(f, xs[a], sortKey(xs[a], f), xs[b]) })
		s.idx[f] = xs
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/token", s.handleToken)
	mux.HandleFunc("/graphql", s.handleGraphQL)
	mux.HandleFunc("/_sim/stats", s.handleStats)
	s.handler = s.record(mux)
	s.log.Info("generated issues", "issues", opts.Issues, "seed", opts.Seed, "days", opts.Days)
	return s, nil
}

// addLocked indexes a new issue and pre-serialises it. The caller holds s.mu (or owns s exclusively).
func (s *Server) addLocked(iss *issue) {
	s.serialize(iss)
	s.byID[iss.id] = iss
	for _, n := range iss.notes {
		s.notes[n.id] = iss
	}
	for f := orderField(0); f < numOrders; f++ {
		s.idx[f] = insertSorted(s.idx[f], f, iss)
	}
}

// serialize pre-renders the standard selection of iss. The caller holds s.mu for writing.
func (s *Server) serialize(iss *issue) {
	iss.full = (&projector{schema: s.schema}).writeObject(make([]byte, 0, 2048), subSets(s.std), "Issue", iss.tree())
}

func endpointOf(path string) string {
	switch path {
	case EndpointToken, EndpointGraphQL, EndpointStats:
		return path
	}
	return EndpointOther
}

// record counts every response by endpoint and status.
func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := endpointOf(r.URL.Path)
		rec := &statusRecorder{ResponseWriter: w, onStatus: func(code int) { s.stats.request(endpoint, code) }}
		next.ServeHTTP(rec, r)
		rec.setStatus(http.StatusOK) // a handler that wrote nothing answered 200
	})
}

// Handler routes POST /oauth/token, POST /graphql and GET /_sim/stats.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr (e.g. "127.0.0.1:0"), serves in the background and starts live mode when
// Options.Live is set.
func (s *Server) Start(addr string) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.srv != nil || s.closed {
		return errors.New("wizsim: already started or closed")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("wizsim: listen on %s: %w", addr, err)
	}
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve failed", "err", err)
		}
	}()
	if s.opts.Live > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopLive = cancel
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.live(ctx)
		}()
	}
	s.log.Info("listening", "url", s.url)
	return nil
}

// URL is the base URL, e.g. "http://127.0.0.1:PORT"; empty before Start.
func (s *Server) URL() string {
	s.life.Lock()
	defer s.life.Unlock()
	return s.url
}

// TokenURL is URL()+"/oauth/token".
func (s *Server) TokenURL() string { return s.URL() + EndpointToken }

// GraphQLURL is URL()+"/graphql".
func (s *Server) GraphQLURL() string { return s.URL() + EndpointGraphQL }

// Close stops serving (slow responses in flight end at once) and live mode, and waits for both.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing)
		s.life.Lock()
		s.closed = true
		srv, stop := s.srv, s.stopLive
		s.life.Unlock()
		if stop != nil {
			stop()
		}
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if e := srv.Shutdown(ctx); e != nil {
				err = fmt.Errorf("wizsim: shutdown: %w", e)
				_ = srv.Close()
			}
		}
		s.wg.Wait()
	})
	return err
}

// InvalidateCursors makes every cursor issued so far invalid.
func (s *Server) InvalidateCursors() {
	s.mu.Lock()
	s.cursorGen++
	s.mu.Unlock()
}

// SetStatus changes an issue's status now: statusChangedAt = now (microseconds), resolvedAt when
// RESOLVED, visible at once. Unlike the updateIssue mutation it allows RESOLVED for every type.
func (s *Server) SetStatus(id, status string) error {
	if !wizdef.IsStatus(status) {
		return fmt.Errorf("wizsim: unknown status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	iss := s.byID[id]
	if iss == nil {
		return fmt.Errorf("wizsim: issue %s not found", id)
	}
	now := micro(s.now())
	s.changeStatusLocked(iss, status, "", now, now)
	s.serialize(iss)
	return nil
}

// AddIssue adds an issue created now and returns its id.
func (s *Server) AddIssue(spec NewIssue) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var projects []*project
	for _, pid := range spec.ProjectIDs {
		var found *project
		for _, p := range s.world.projects {
			if p.id == pid {
				found = p
			}
		}
		if found == nil {
			return "", fmt.Errorf("wizsim: unknown project %q", pid)
		}
		projects = append(projects, found)
	}
	if spec.ProjectIDs != nil && projects == nil {
		projects = []*project{}
	}
	if spec.Type != "" && s.world.rules[spec.Type] == nil {
		return "", fmt.Errorf("wizsim: unknown issue type %q", spec.Type)
	}
	if _, ok := wizdef.SeverityRank(spec.Severity); spec.Severity != "" && !ok {
		return "", fmt.Errorf("wizsim: unknown severity %q", spec.Severity)
	}
	if spec.Status != "" && !wizdef.IsStatus(spec.Status) {
		return "", fmt.Errorf("wizsim: unknown status %q", spec.Status)
	}
	now := micro(s.now())
	iss := s.world.newIssue(spec.Type, spec.Severity, now, projects)
	if spec.Status != "" && spec.Status != wizdef.StatusOpen {
		s.world.setStatus(iss, spec.Status, "", now)
	}
	iss.visibleAt = now.Add(spec.Lag)
	s.addLocked(iss)
	return iss.id, nil
}

// Snapshot returns every issue (visible or not) in createdAt order.
func (s *Server) Snapshot() []IssueState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]IssueState, 0, len(s.byID))
	for _, i := range s.idx[orderCreatedAt] {
		st := IssueState{ID: i.id, Type: i.typ, Severity: i.severity, Status: i.status, CreatedAt: i.createdAt, VisibleAt: i.visibleAt}
		if i.statusChangedAt != nil {
			t := *i.statusChangedAt
			st.StatusChangedAt = &t
		}
		for _, p := range i.projects {
			st.ProjectIDs = append(st.ProjectIDs, p.id)
		}
		out = append(out, st)
	}
	return out
}

// live creates and changes issues at the configured rate until ctx ends: every tick one status change
// among open issues, every second tick a new issue. Their lag is below liveMaxLag.
func (s *Server) live(ctx context.Context) {
	t := time.NewTicker(time.Duration(float64(time.Second) / s.opts.Live))
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.liveStep(tick%2 == 1)
	}
}

func (s *Server) liveStep(create bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rng := s.world.rng
	now := micro(s.now())
	lag := func() time.Time { return now.Add(time.Duration(rng.Int64N(int64(liveMaxLag)))) }
	if create {
		iss := s.world.newIssue("", "", now, nil)
		iss.visibleAt = lag()
		s.addLocked(iss)
	}
	all := s.idx[orderCreatedAt]
	for try := 0; try < 64 && len(all) > 0; try++ {
		iss := all[rng.IntN(len(all))]
		var next string
		switch iss.status {
		case wizdef.StatusOpen:
			next = pickStatus(rng, []string{wizdef.StatusInProgress, wizdef.StatusRejected, wizdef.StatusResolved})
		case wizdef.StatusInProgress:
			next = pickStatus(rng, []string{wizdef.StatusRejected, wizdef.StatusResolved, wizdef.StatusOpen})
		default:
			if try < 60 { // prefer open issues; reopen only when few are left
				continue
			}
			next = wizdef.StatusOpen
		}
		if next == wizdef.StatusResolved && !wizdef.Resolvable(iss.typ) && rng.IntN(2) == 0 {
			next = wizdef.StatusRejected
		}
		s.changeStatusLocked(iss, next, "", now, lag())
		iss.updatedAt = now
		s.serialize(iss)
		return
	}
}

func pickStatus(rng *rand.Rand, xs []string) string { return xs[rng.IntN(len(xs))] }
