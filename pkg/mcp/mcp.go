// Package mcp serves wizfetch to AI clients over the Model Context Protocol, on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk): incidents from the store, issues and their context
// fresh from Wiz, the daemon's status, and write-back to Wiz.
//
// Governance follows the hosted pattern SOC teams know: AI clients only ever see MCP tools; one
// service account (the instance's Wiz client, its token and rate limiter) calls Wiz for everyone;
// every call is attributed to the individual user; a tool is served only when it is bound to an
// access profile (config `mcp.profiles`), and a user lists and calls only the tools of their
// profile. Listing tools proves nothing about credentials: service_status reports whether the last
// real Wiz call succeeded.
//
// Each request carries "Authorization: Bearer <user token>" (compared in constant time over SHA-256
// digests; 401 otherwise). The transport is Streamable HTTP in stateless mode: every request is
// authenticated and served by the server of the user it authenticates, so no session can be
// carried from one user's token to another's. Every tools/call — allowed, refused, invalid, rate
// limited or unauthenticated — writes one `audit` log line (user, tool, arguments without note
// text, outcome, duration) and counts in wizfetch_mcp_calls_total{tool,result}.
package mcp

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/time/rate"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/status"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// Call results, the values of the metric's result label and of the audit line's result.
const (
	ResultOK           = "ok"
	ResultError        = "error"        // the tool ran and failed (Wiz error, store error)
	ResultInvalid      = "invalid"      // arguments refused before any Wiz call
	ResultNotFound     = "not_found"    // no such incident or issue
	ResultRefused      = "refused"      // the tool is not in the user's profile
	ResultRateLimited  = "rate_limited" // the user's rate limit refused the call
	ResultUnauthorized = "unauthorized" // no or wrong token (401)
)

// Per-user rate limit on the tools that call Wiz (DefaultUserRate): the tenant's Wiz budget (about
// 3 requests/s per service account) is shared with the feeds, which must keep priority, so one
// user gets at most a fraction of it, with a small burst for a burst of questions.
const (
	DefaultUserRate  = rate.Limit(0.2) // 12 Wiz-calling tools a minute
	DefaultUserBurst = 6
)

// The limit of all MCP users together (per Handler's UserLimiters): per-user limits alone let
// fifteen users take the whole budget the feeds need. A sixth of the ~3 requests/s, with a burst
// for a few users' questions at once.
const (
	TotalRate  = rate.Limit(0.5)
	TotalBurst = 30
)

// maxRequestBytes bounds one MCP request body (a note is at most a few KiB).
const maxRequestBytes = 1 << 20

// Client is what the tools need of one tenant's Wiz client; *wiz.Client satisfies it.
type Client interface {
	writeback.Client
	IssueContext(ctx context.Context, issueID string) (*wiz.IssueContext, error)
}

// Calls counts tool calls by tool and result (metrics.MCPCalls).
type Calls interface {
	Call(tool, result string)
}

// Options configure a Handler.
type Options struct {
	// Config is the mcp block with its tokens resolved (config.ResolveSecrets).
	Config config.MCP
	// Clients are the Wiz clients by instance; DefaultInstance answers when a call names none.
	Clients         map[string]Client
	DefaultInstance string
	// Store holds the incidents (list_incidents, get_incident) and the sinks' outboxes.
	Store *store.Store
	// Tracker is the daemon's live status (service_status); Sinks names the configured sinks.
	Tracker *status.Tracker
	Version string
	Logger  *slog.Logger
	Calls   Calls
	// UserRate and UserBurst override DefaultUserRate and DefaultUserBurst (tests).
	UserRate  rate.Limit
	UserBurst int
	// Limiters, when set, keeps each user's rate limiter across the handlers built for successive
	// configs (a reload must not hand every user a full burst again); nil: this handler's own.
	Limiters *UserLimiters
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Handler serves /mcp. It is safe for concurrent use.
type Handler struct {
	opt   Options
	log   *slog.Logger
	users []*user
	http  http.Handler
	wiz   *wizHealth
	// total is the limit of all users together (TotalRate).
	total *rate.Limiter
}

// user is one configured user with their profile's server.
type user struct {
	name    string
	profile string
	tools   []string
	digest  [sha256.Size]byte
	limiter *rate.Limiter
	server  *sdk.Server
}

type ctxKey int

const (
	userKey ctxKey = iota
	outcomeKey
)

// outcome is what a tool handler reports to the audit middleware about its call.
type outcome struct {
	result string
	err    string
}

// NewHandler builds the handler of one config: a server per user holding exactly the tools of the
// user's profile.
func NewHandler(o Options) (*Handler, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UserRate == 0 {
		o.UserRate, o.UserBurst = DefaultUserRate, DefaultUserBurst
	}
	if o.Calls == nil {
		o.Calls = nopCalls{}
	}
	h := &Handler{opt: o, log: o.Logger.With("component", "mcp"), wiz: &wizHealth{last: map[string]wizCall{}},
		total: o.Limiters.get("", TotalRate, TotalBurst)} // "" names no user (names are validated)
	for _, u := range o.Config.Users {
		if u.Token.Reveal() == "" {
			return nil, fmt.Errorf("mcp user %s: no token (resolve the config's secrets first)", u.Name)
		}
		usr := &user{name: u.Name, profile: u.Profile, tools: o.Config.ProfileTools(u.Profile),
			digest: sha256.Sum256([]byte(u.Token.Reveal())), limiter: o.Limiters.get(u.Name, o.UserRate, o.UserBurst)}
		usr.server = h.newServer(usr)
		h.users = append(h.users, usr)
	}
	streamable := sdk.NewStreamableHTTPHandler(func(r *http.Request) *sdk.Server {
		u, _ := r.Context().Value(userKey).(*user)
		if u == nil {
			return nil
		}
		return u.server
	}, &sdk.StreamableHTTPOptions{
		Stateless: true, JSONResponse: true, Logger: h.log, MaxRequestBodyBytes: maxRequestBytes,
		// The SDK's localhost protection refuses a loopback request whose Host is not a loopback
		// name, which would refuse a reverse proxy on the same host. It defends against DNS
		// rebinding, which cannot reach /mcp: every request needs a user's bearer token, which a
		// browser cannot add across origins (and pkg/server guards the Host of a tokenless listener).
		DisableLocalhostProtection: true,
	})
	h.http = streamable
	return h, nil
}

// UserLimiters holds the users' rate limiters by user name, for Options.Limiters.
type UserLimiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewUserLimiters returns an empty set.
func NewUserLimiters() *UserLimiters { return &UserLimiters{m: map[string]*rate.Limiter{}} }

// get returns user's limiter at r and b: the one it had (with what it has spent), else a new one;
// with a nil set, always a new one.
func (l *UserLimiters) get(user string, r rate.Limit, b int) *rate.Limiter {
	if l == nil {
		return rate.NewLimiter(r, b)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.m[user]
	if lim == nil {
		lim = rate.NewLimiter(r, b)
		l.m[user] = lim
	}
	if lim.Limit() != r {
		lim.SetLimit(r)
	}
	if lim.Burst() != b {
		lim.SetBurst(b)
	}
	return lim
}

type nopCalls struct{}

func (nopCalls) Call(string, string) {}

// ServeHTTP authenticates the request's user and hands it to the user's server.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u := h.authenticate(r)
	if u == nil {
		// Every refused request is audited: each tools/call with the tool it names (a JSON-RPC
		// batch may hold several), anything else as "(other)".
		calls := peekCalls(r)
		if len(calls) == 0 {
			calls = []peekedCall{{tool: "(other)"}}
		}
		// A refused batch is audited call by call up to maxRefusedAudits, then in one line: anyone
		// can send a 1 MiB batch of tiny calls, which must not become 20,000 log lines.
		for i, c := range calls {
			if i == maxRefusedAudits {
				h.audit(r.Context(), nil, "(batch)", nil, ResultUnauthorized,
					fmt.Sprintf("missing or wrong bearer token; %d more calls in the batch", len(calls)-i), 0)
				break
			}
			h.audit(r.Context(), nil, c.tool, c.args, ResultUnauthorized, "missing or wrong bearer token", 0)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="wizfetch-mcp"`)
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	// A tool call may wait on Wiz longer than the daemon's 60 s write timeout (wiz.timeout is 115 s,
	// plus the rate limit): the connection would be cut while a write went through in Wiz, and the
	// assistant, seeing no answer, would repeat it. This response may take as long as a call may.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(MaxCallTime + 15*time.Second))
	audited := new(atomic.Bool)
	ctx := context.WithValue(context.WithValue(r.Context(), userKey, u), auditedKey{}, audited)
	rec := &statusRecorder{ResponseWriter: w}
	h.http.ServeHTTP(rec, r.WithContext(ctx))
	if rec.status >= 400 && !audited.Load() {
		// The SDK's transport refused the request before any tool saw it (a body over the limit, a
		// body that is not JSON-RPC): audited all the same, as every call must be.
		h.audit(ctx, u, "(request)", nil, ResultInvalid, fmt.Sprintf("refused by the MCP transport: HTTP %d", rec.status), 0)
	}
}

// auditedKey holds, in a request's context, the flag audit sets: whether the request was audited.
type auditedKey struct{}

// statusRecorder remembers the status of the response it writes.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// MaxCallTime bounds one tool call, Wiz requests included: past it the call fails with a
// deadline error (for a write, its outcome in Wiz unknown), and the answer still reaches the client.
const MaxCallTime = 3 * time.Minute

// maxRefusedAudits is how many calls of one refused request are audited one by one.
const maxRefusedAudits = 8

// authenticate returns the user whose token the request carries, comparing against every user's
// digest in constant time (no early exit), or nil.
func (h *Handler) authenticate(r *http.Request) *user {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return nil
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	var found *user
	for _, u := range h.users {
		if subtle.ConstantTimeCompare(got[:], u.digest[:]) == 1 {
			found = u
		}
	}
	return found
}

// peekedCall is a tools/call found in a request body.
type peekedCall struct {
	tool string
	args json.RawMessage
}

// peekCalls reads the tools/call messages of a request body (one message, or a JSON-RPC batch),
// restoring the body.
func peekCalls(r *http.Request) []peekedCall {
	if r.Method != http.MethodPost || r.Body == nil {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil
	}
	type message struct {
		Method string `json:"method"`
		Params struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	var msgs []message
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		if json.Unmarshal(trimmed, &msgs) != nil {
			return nil
		}
	} else {
		var m message
		if json.Unmarshal(body, &m) != nil {
			return nil
		}
		msgs = []message{m}
	}
	var out []peekedCall
	for _, m := range msgs {
		if m.Method == "tools/call" {
			out = append(out, peekedCall{tool: cmp.Or(m.Params.Name, "(unnamed)"), args: m.Params.Arguments})
		}
	}
	return out
}

// newServer builds the MCP server of one user: the tools of the user's profile, behind the
// governance middleware.
func (h *Handler) newServer(u *user) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "wizfetch", Version: h.opt.Version}, &sdk.ServerOptions{
		Instructions: "wizfetch holds the Wiz security issues of this SOC as incidents. Read them with list_incidents and " +
			"get_incident; get_issue and issue_context ask Wiz itself. Write tools change the issue in Wiz for everyone, " +
			"under your name; ask the analyst before calling one.",
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{}},
	})
	h.addTools(s, u)
	s.AddReceivingMiddleware(h.govern(u))
	return s
}

// govern is the middleware of every tools/call: a tool outside the user's profile is refused
// (before the SDK looks it up), and every call is audited and counted with its outcome.
func (h *Handler) govern(u *user) sdk.Middleware {
	return func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			call, ok := req.(*sdk.CallToolRequest)
			if method != "tools/call" || !ok {
				return next(ctx, method, req)
			}
			start := time.Now()
			name, args := call.Params.Name, call.Params.Arguments
			if !slices.Contains(u.tools, name) {
				msg := fmt.Sprintf("tool %q is not available to %s (profile %s); available: %s",
					clip(name, 64), u.name, u.profile, strings.Join(u.tools, ", "))
				h.audit(ctx, u, name, args, ResultRefused, msg, time.Since(start))
				// As the SDK answers a tool it does not know: invalid params (the MCP spec's
				// "Unknown tools" error), not the code 0 of a plain error.
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: msg}
			}
			oc := &outcome{}
			ctx, cancel := context.WithTimeout(ctx, MaxCallTime)
			defer cancel()
			res, err := next(context.WithValue(ctx, outcomeKey, oc), method, req)
			result, reason := oc.result, oc.err
			switch {
			case err != nil:
				// The SDK refused the call before the tool ran (arguments against its schema).
				result, reason = ResultInvalid, err.Error()
			case result == "":
				result = ResultOK
				if r, ok := res.(*sdk.CallToolResult); ok && r.IsError {
					result = ResultInvalid // the SDK's argument validation, reported as a tool error
					reason = toolErrorText(r)
				}
			}
			h.audit(ctx, u, name, args, result, reason, time.Since(start))
			return res, err
		}
	}
}

func toolErrorText(r *sdk.CallToolResult) string {
	for _, c := range r.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			return clip(t.Text, 300)
		}
	}
	return ""
}

// audit writes the audit line of one call and counts it. Arguments are logged without note
// texts (their length instead), and never a token.
func (h *Handler) audit(ctx context.Context, u *user, tool string, args json.RawMessage, result, reason string, d time.Duration) {
	if flag, ok := ctx.Value(auditedKey{}).(*atomic.Bool); ok {
		flag.Store(true)
	}
	name, profile := "", ""
	if u != nil {
		name, profile = u.name, u.profile
	}
	attrs := []slog.Attr{
		slog.String("via", "mcp"),
		slog.String("user", name),
		slog.String("profile", profile),
		slog.String("tool", clip(tool, 64)),
		slog.Any("args", auditArgs(args)),
		slog.String("result", result),
		slog.Int64("duration_ms", d.Milliseconds()),
	}
	if reason != "" {
		attrs = append(attrs, slog.String("err", reason))
	}
	level := slog.LevelInfo
	if result != ResultOK {
		level = slog.LevelWarn
	}
	h.log.LogAttrs(ctx, level, "audit", attrs...)
	h.opt.Calls.Call(tool, result)
}

// auditedArgs are the tool arguments whose values the audit line shows (every tool's arguments
// but the note and the text). Any other argument, a note or a text under any spelling or type
// included, is shown as its size only: "<name>_chars" for a string, "<name>_bytes" for anything
// else, so that no note's words reach the log.
var auditedArgs = map[string]bool{"after": true, "clear": true, "due_date": true, "instance": true, "issue_id": true,
	"limit": true, "only_unhealthy": true, "reason": true, "severity": true, "since": true, "status": true, "type": true}

// auditArgs renders call arguments for the audit line: known arguments as given (clipped), others as
// their size (auditedArgs).
func auditArgs(raw json.RawMessage) map[string]any {
	var args map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &args) != nil {
		return map[string]any{}
	}
	out := make(map[string]any, len(args))
	// Known arguments first, so that padding a call with others cannot push them out of the line.
	keys := slices.SortedFunc(maps.Keys(args), func(a, b string) int {
		if auditedArgs[a] != auditedArgs[b] {
			if auditedArgs[a] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		v := args[k]
		k = clip(k, 32)
		if !auditedArgs[k] {
			if x, ok := v.(string); ok {
				out[k+"_chars"] = len([]rune(x))
			} else {
				b, _ := json.Marshal(v)
				out[k+"_bytes"] = len(b)
			}
			if len(out) >= 12 {
				break
			}
			continue
		}
		switch x := v.(type) {
		case string:
			out[k] = clip(x, 80)
		case float64, bool, nil:
			out[k] = x
		default:
			b, _ := json.Marshal(x)
			out[k] = clip(string(b), 120)
		}
		if len(out) >= 12 {
			break
		}
	}
	return out
}

// report records the tool's own outcome for the audit middleware.
func report(ctx context.Context, result string, err error) {
	if oc, ok := ctx.Value(outcomeKey).(*outcome); ok {
		oc.result = result
		if err != nil {
			oc.err = clip(err.Error(), 300)
		}
	}
}

// wizHealth remembers the last real Wiz call of each instance made through MCP.
type wizHealth struct {
	mu   sync.Mutex
	last map[string]wizCall
}

type wizCall struct {
	at  time.Time
	err string
}

// record notes a Wiz call of instance that ended with err. What it keeps is seen by every user
// (service_status), so it is Wiz's health, not the call: an answer about the caller's own request
// (no such issue, a refused argument) is a Wiz that answered, and a failure is kept as its class
// and code alone ("permission denied (FORBIDDEN)"), never its message, which may name what
// another user asked for.
func (w *wizHealth) record(instance string, at time.Time, err error) {
	c := wizCall{at: at}
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, wiz.ErrNotFound), errors.Is(err, wiz.ErrBadRequest):
	default:
		c.err = wizFailure(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[instance] = c
}

// wizFailure describes a failed Wiz call by its class and code only.
func wizFailure(err error) string {
	for _, class := range []error{wiz.ErrAuth, wiz.ErrPermission, wiz.ErrTransient} {
		if !errors.Is(err, class) {
			continue
		}
		if apiErr, ok := errors.AsType[*wiz.APIError](err); ok && apiErr.Code != "" {
			return class.Error() + " (" + clip(apiErr.Code, 64) + ")"
		}
		return class.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return "failed"
}

func (w *wizHealth) get(instance string) (wizCall, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.last[instance]
	return c, ok
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
