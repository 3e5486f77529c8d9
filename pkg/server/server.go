// Package server is wizfetch's HTTP listener (DESIGN.md §7): liveness and readiness probes,
// Prometheus metrics, the operator API (/v1/status, /v1/incidents), a small server-rendered status
// page, and the mount points of the Wiz push receiver and the write-back API.
//
// Auth, fixed by DESIGN.md §7:
//   - /healthz and /readyz never need it (orchestrator probes);
//   - /, /metrics and /v1/* need "Authorization: Bearer <server.auth_token>" when a token is set
//     (401 with WWW-Authenticate: Bearer otherwise), and are open when none is set — which New only
//     allows on a loopback listen address;
//   - /v1/wiz/webhook[/{instance}] uses only the push receiver's own auth, never the server token;
//   - write endpoints (/v1/issues/...) need the token and answer 403 when none is configured.
//
// The status page accepts the Bearer header only (no ?token= in URLs, which end up in logs and
// browser history): open it on loopback, or behind a reverse proxy that adds the header.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wizfetch/wizfetch/pkg/metrics"
	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// DefaultListen is server.listen's default.
const DefaultListen = "127.0.0.1:8080"

// Options configures a Server.
type Options struct {
	// Listen is host:port; "127.0.0.1:0" in tests. Empty means DefaultListen.
	Listen string
	// AuthToken is the resolved server.auth_token; "" means none (allowed only on loopback).
	AuthToken string
	// Store backs /v1/incidents and the pending/dead-letter figures of /v1/status.
	Store *store.Store
	// Tracker is the live per-feed and per-sink state shown by /v1/status and the status page.
	Tracker *status.Tracker
	// Metrics is served at /metrics (nil: 404).
	Metrics *metrics.Metrics
	// Logger receives server logs (nil: discard).
	Logger *slog.Logger
	// Webhook, when non-nil, is mounted at /v1/wiz/webhook and /v1/wiz/webhook/{instance} with its
	// own auth, never the server token. When nil those paths answer 404.
	Webhook http.Handler
	// Actions, when non-nil, is mounted at /v1/issues/ (the write-back API); it requires the server
	// token and answers 403 when no token is configured.
	Actions http.Handler
	// MaxConns caps the open connections (connlimit.go); zero means DefaultMaxConns.
	MaxConns int
	// MCP, when non-nil, is mounted at /mcp with its own per-user auth (mcp.go); nil: 404.
	MCP http.Handler
	// IssueContext, when non-nil, serves GET /v1/issues/{id}/context (mcp.go); nil: 404.
	IssueContext ContextSource
}

// Server is the HTTP listener. Its methods are safe for concurrent use.
type Server struct {
	opt      Options
	log      *slog.Logger
	loopback bool
	// listenHost is the host of Options.Listen, one of the Host values a tokenless loopback server
	// answers (hostcheck.go).
	listenHost string
	limiter    *connLimiter
	token      atomic.Pointer[[sha256.Size]byte] // digest of the auth token; nil = none
	ready      atomic.Bool
	closing    atomic.Bool
	handler    http.Handler
	page       *template.Template

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	served  chan struct{} // closed when Serve returns
	cancel  context.CancelFunc
	started bool
}

// New validates o and builds the server (nothing listens until Start). A non-loopback Listen without
// an AuthToken is refused, so the daemon never exposes its API unauthenticated.
func New(o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return nil, fmt.Errorf("server.listen %q is not host:port: %w", o.Listen, err)
	}
	host, _, _ := net.SplitHostPort(o.Listen)
	s := &Server{opt: o, log: o.Logger, loopback: IsLoopback(o.Listen), listenHost: host, limiter: newConnLimiter(o.MaxConns)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "server")
	if !s.loopback && o.AuthToken == "" {
		return nil, fmt.Errorf("server.auth_token is required when server.listen (%s) is not a loopback address", o.Listen)
	}
	s.storeToken(o.AuthToken)
	s.page = newPageTemplate()
	s.handler = s.guardHost(s.routes())
	return s, nil
}

// Handler is the server's complete handler (routes and auth), for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Options.Listen and serves in the background until Shutdown.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server already started")
	}
	ln, err := net.Listen("tcp", s.opt.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opt.Listen, err)
	}
	base, cancel := context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState:         s.limiter.connState,
	}
	s.ln, s.cancel, s.started = ln, cancel, true
	s.served = make(chan struct{})
	go func(srv *http.Server, done chan<- struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}(s.srv, s.served)
	s.log.Info("listening", "addr", ln.Addr().String(), "auth", s.token.Load() != nil)
	return nil
}

// Addr is the actual host:port after Start (Options.Listen before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.opt.Listen
}

// URL is "http://" + Addr().
func (s *Server) URL() string { return "http://" + s.Addr() }

// SetReady sets what /readyz answers: 200 when ready, 503 otherwise. A new server is not ready.
// After Shutdown began, readiness stays 503 whatever is set.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// SetAuthToken swaps the server token (after a config reload). An empty token is refused (the old
// one stays, with an error log) when the server listens on a non-loopback address.
func (s *Server) SetAuthToken(tok string) {
	if tok == "" && !s.loopback {
		s.log.Error("refusing to remove the auth token of a non-loopback listener; keeping the previous one",
			"listen", s.opt.Listen)
		return
	}
	s.storeToken(tok)
}

func (s *Server) storeToken(tok string) {
	if tok == "" {
		s.token.Store(nil)
		return
	}
	d := sha256.Sum256([]byte(tok))
	s.token.Store(&d)
}

// Shutdown makes /readyz answer 503 at once, then stops accepting connections and waits for in-flight
// requests until ctx ends; requests still running then are cancelled and their connections closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	srv, served, cancel := s.srv, s.served, s.cancel
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		cancel()
		_ = srv.Close()
		err = fmt.Errorf("shut down http server on %s: %w", s.Addr(), err)
	}
	cancel()
	<-served
	return err
}

// IsLoopback reports whether the host of listen ("host:port", or a bare host) is a loopback address
// or "localhost". An empty host (":8080") listens on every interface and is not loopback.
func IsLoopback(listen string) bool {
	host := listen
	if h, _, err := net.SplitHostPort(listen); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // zone, e.g. ::1%lo
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// routes builds the mux with each endpoint's auth rule.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.handleReady)

	var metricsHandler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "metrics are not enabled", "")
	})
	if s.opt.Metrics != nil {
		metricsHandler = promhttp.HandlerFor(s.opt.Metrics.Registry(), promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError,
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		})
	}
	mux.Handle("GET /metrics", s.requireToken(metricsHandler))
	mux.Handle("GET /{$}", s.requireToken(http.HandlerFunc(s.handlePage)))
	mux.Handle("GET /v1/status", s.requireToken(http.HandlerFunc(s.handleStatus)))
	mux.Handle("GET /v1/incidents", s.requireToken(http.HandlerFunc(s.handleIncidents)))
	mux.Handle("GET /v1/incidents/{issue_id}", s.requireToken(http.HandlerFunc(s.handleIncident)))
	mux.Handle("GET /v1/dead-letters", s.requireToken(http.HandlerFunc(s.handleDeadLetters)))
	mux.Handle("GET /v1/rejected-issues", s.requireToken(http.HandlerFunc(s.handleRejectedIssues)))
	mux.Handle("GET /v1/checkpoints", s.requireToken(http.HandlerFunc(s.handleCheckpoints)))

	// The push receiver authenticates pushes itself (server.webhook), never with the server token.
	webhook := s.opt.Webhook
	if webhook == nil {
		webhook = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "the Wiz push receiver is not configured", "")
		})
	}
	mux.Handle("/v1/wiz/webhook", webhook)
	mux.Handle("/v1/wiz/webhook/{instance}", webhook)

	actions := s.opt.Actions
	if actions == nil {
		actions = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "the write-back API is not available", "")
		})
	}
	mux.Handle("/v1/issues/", s.requireWriteToken(actions))
	s.mcpRoutes(mux)
	return mux
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.closing.Load():
		writeText(w, http.StatusServiceUnavailable, "shutting down\n")
	case !s.ready.Load():
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
	case s.opt.Store != nil && s.opt.Store.WriteHealth() != nil:
		// A store that takes no writes (a full disk) can neither commit pages nor queue pushes.
		s.log.Warn("not ready: the store takes no writes", "err", s.opt.Store.WriteHealth())
		writeText(w, http.StatusServiceUnavailable, "store writes fail\n")
	default:
		writeText(w, http.StatusOK, "ready\n")
	}
}

// requireToken lets a request through when no token is configured or when it carries the right one.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := s.token.Load()
		if want != nil && !bearerMatches(r, want) {
			unauthorized(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireWriteToken is requireToken for write endpoints: with no token configured they are closed.
func (s *Server) requireWriteToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := s.token.Load()
		if want == nil {
			writeError(w, http.StatusForbidden, "write endpoints are disabled: set server.auth_token to enable them", "")
			return
		}
		if !bearerMatches(r, want) {
			unauthorized(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerMatches compares the request's Bearer token with the configured one in constant time.
// Comparing SHA-256 digests keeps the time independent of the token's length too.
func bearerMatches(r *http.Request, want *[sha256.Size]byte) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="wizfetch"`)
	writeError(w, http.StatusUnauthorized, "missing or wrong bearer token", "")
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
