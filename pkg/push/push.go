// Package push is the home of Wiz pushes: everything a push does, from the POST to the committed
// event, starts here.
//
//  1. The receiver (push.go, payload.go): each POST of a Wiz automation rule (/v1/wiz/webhook, or
//     /v1/wiz/webhook/{instance} with several tenants) is authenticated, bounded and parsed, and its
//     issue id is stored on the durable refetch queue (Worker.Queue). It answers 202 as soon as the
//     queue has committed the item, so a push survives a crash or a Wiz outage.
//  2. The worker (worker.go): drains the queue, hands each item to its instance's Refetcher, removes
//     it once decided, and retries a failure with backoff.
//  3. The decision (feed.Refetcher, behind the Refetcher interface): a push is only a notification
//     (WIZ_API.md §7), so the issue is re-fetched by id over GraphQL and run, in one store
//     transaction, through the same guards, dedup marks and created/updated rules as the feeds. It
//     lives in pkg/feed because it shares their internals; only the worker calls it.
package push

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// MaxBodyBytes is the largest push body accepted (DESIGN.md §7); larger ones answer 413.
const MaxBodyBytes = 1 << 20

// Path is the URL path of the receiver; with several instances pushes go to Path + "/{instance}".
const Path = "/v1/wiz/webhook"

// Results passed to Options.Observe: ResultAccepted, or the reason a push was rejected. The set is
// fixed, so it is safe as a metric label.
const (
	ResultAccepted         = "accepted"
	ResultUnauthorized     = "unauthorized"
	ResultMethodNotAllowed = "method_not_allowed"
	ResultTooLarge         = "too_large"
	ResultReadError        = "read_error"
	ResultBadJSON          = "bad_json"
	ResultNoIssueID        = "no_issue_id"
	ResultUnknownInstance  = "unknown_instance"
	ResultQueueError       = "queue_error"
	ResultQueueFull        = "queue_full"
)

// MaxQueuedPerInstance bounds one instance's refetch queue. A push beyond it is answered 429 with
// Retry-After (QueueFullRetryAfter) and counted: a flood of pushes, or of random ids, cannot grow the
// store without bound, and Wiz's webhook retries deliver the push later. Ten thousand issues is
// over an hour of single re-fetches at the default 2 requests/s.
const MaxQueuedPerInstance = 10000

// QueueFullRetryAfter is the Retry-After (seconds) of a 429 for a full queue.
const QueueFullRetryAfter = "60"

// Auth is the resolved push credentials (server.webhook). A push must match the Bearer token or
// the Basic pair, whichever are set; when all three are empty the receiver is disabled and
// answers 404.
type Auth struct {
	BearerToken string
	Username    string
	Password    string
}

// AuthFromConfig takes the push credentials from a config whose secrets are resolved
// (config.Config.ResolveSecrets).
func AuthFromConfig(w config.Webhook) Auth {
	return Auth{
		BearerToken: w.BearerToken.Reveal(),
		Username:    w.Basic.Username,
		Password:    w.Basic.Password.Reveal(),
	}
}

// Enabled reports whether any credential is configured.
func (a Auth) Enabled() bool { return a.BearerToken != "" || a.basicEnabled() }

func (a Auth) basicEnabled() bool { return a.Username != "" || a.Password != "" }

// Queue is where accepted pushes go; *store.Store satisfies it. EnqueueRefetch must be durable
// when it returns nil, and return an error wrapping store.ErrQueueFull when the instance's queue is
// at its cap (the handler then answers 429).
type Queue interface {
	EnqueueRefetch(item store.RefetchItem) error
}

// Options configures the handler.
type Options struct {
	// Auth is the push credentials; all empty disables the receiver (404).
	Auth Auth
	// Instances is the configured instance names. With one instance the bare path routes to it
	// (and /{name} too); with several the bare path answers 400 and pushes must name one.
	Instances []string
	// Queue receives accepted pushes.
	Queue Queue
	// Now stamps RefetchItem.ReceivedAt; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per push (instance, issue id, trigger; never the body or headers);
	// nil discards.
	Logger *slog.Logger
	// Observe, when set, is called once per push with the instance ("" when the path names no
	// configured one) and a Result* value, for metrics.
	Observe func(instance, result string)
}

// NewHandler returns the receiver. It serves POST on Path and Path/{instance} wherever it is
// mounted (it reads the instance from the {instance} path wildcard when the mux set one, else from
// the path after Path); other methods answer 405. Checks run in DESIGN.md §7's order: auth (401),
// size (413, before any parsing), JSON and issue id (400); the Content-Type is not checked. An
// accepted push is answered 202 {"status":"accepted","issue_id":...,"instance":...} once it is
// queued; a queue failure answers 503 so that Wiz retries.
func NewHandler(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observe == nil {
		o.Observe = func(string, string) {}
	}
	h := &handler{
		o:   o,
		log: o.Logger.With("component", "push"),
	}
	if o.Auth.BearerToken != "" {
		h.bearer = digest(o.Auth.BearerToken)
	}
	if o.Auth.basicEnabled() {
		h.user, h.pass = digest(o.Auth.Username), digest(o.Auth.Password)
	}
	return h
}

type handler struct {
	o      Options
	log    *slog.Logger
	bearer *[sha256.Size]byte
	user   *[sha256.Size]byte
	pass   *[sha256.Size]byte
}

// digest hashes a credential so that comparisons are constant-time regardless of length.
func digest(s string) *[sha256.Size]byte {
	d := sha256.Sum256([]byte(s))
	return &d
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.o.Auth.Enabled() {
		// No credentials configured: the endpoint does not exist (DESIGN.md §7).
		http.NotFound(w, r)
		return
	}
	name, routeErr := h.route(r)
	label := ""
	if routeErr == nil {
		label = name
	}
	reject := func(code int, result, msg string) {
		h.o.Observe(label, result)
		h.log.Warn("push rejected", "instance", label, "result", result, "status", code,
			"remote_addr", r.RemoteAddr, "reason", msg)
		writeJSON(w, code, map[string]string{"status": "rejected", "error": msg})
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reject(http.StatusMethodNotAllowed, ResultMethodNotAllowed, "method "+r.Method+" not allowed: use POST")
		return
	}
	if !h.authorized(r) {
		if h.bearer != nil {
			w.Header().Add("WWW-Authenticate", `Bearer realm="wizfetch"`)
		}
		if h.user != nil {
			w.Header().Add("WWW-Authenticate", `Basic realm="wizfetch", charset="UTF-8"`)
		}
		reject(http.StatusUnauthorized, ResultUnauthorized, "missing or wrong credentials")
		return
	}
	if routeErr != nil {
		reject(routeErr.code, ResultUnknownInstance, routeErr.msg)
		return
	}

	if r.ContentLength > MaxBodyBytes {
		reject(http.StatusRequestEntityTooLarge, ResultTooLarge,
			fmt.Sprintf("body of %d bytes is over the limit of %d bytes", r.ContentLength, MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reject(http.StatusRequestEntityTooLarge, ResultTooLarge,
				fmt.Sprintf("body is over the limit of %d bytes", MaxBodyBytes))
			return
		}
		reject(http.StatusBadRequest, ResultReadError, "read body: "+err.Error())
		return
	}

	p, err := ParsePayload(body)
	if err != nil {
		result := ResultBadJSON
		if errors.Is(err, ErrNoIssueID) || errors.Is(err, ErrBadIssueID) {
			result = ResultNoIssueID
		}
		reject(http.StatusBadRequest, result, err.Error())
		return
	}

	item := store.RefetchItem{Instance: name, IssueID: p.IssueID, ReceivedAt: h.o.Now().UTC()}
	if err := h.enqueue(item); err != nil {
		if errors.Is(err, store.ErrQueueFull) {
			w.Header().Set("Retry-After", QueueFullRetryAfter)
			reject(http.StatusTooManyRequests, ResultQueueFull,
				"the refetch queue of instance "+name+" is full; retry later")
			return
		}
		h.o.Observe(label, ResultQueueError)
		h.log.Error("push not queued", "instance", name, "issue_id", p.IssueID, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{
			"status": "rejected", "error": "the push could not be stored; retry later",
		})
		return
	}
	h.o.Observe(label, ResultAccepted)
	h.log.Info("push accepted", "instance", name, "issue_id", p.IssueID, "trigger", p.Trigger,
		"issue_status", p.Status, "remote_addr", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, map[string]string{
		"status": "accepted", "issue_id": p.IssueID, "instance": name,
	})
}

func (h *handler) enqueue(item store.RefetchItem) error {
	if h.o.Queue == nil {
		return errors.New("no refetch queue configured")
	}
	return h.o.Queue.EnqueueRefetch(item)
}

// authorized checks the Authorization header against every configured credential in constant
// time (over SHA-256 digests, so the lengths do not leak either).
func (h *handler) authorized(r *http.Request) bool {
	hdr := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(strings.TrimSpace(hdr), " ")
	switch {
	case h.bearer != nil && strings.EqualFold(scheme, "Bearer"):
		got := digest(strings.TrimSpace(cred))
		return subtle.ConstantTimeCompare(got[:], h.bearer[:]) == 1
	case h.user != nil && strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return false
		}
		u, p := digest(user), digest(pass)
		// Evaluate both comparisons: no early exit on a wrong username.
		okUser := subtle.ConstantTimeCompare(u[:], h.user[:])
		okPass := subtle.ConstantTimeCompare(p[:], h.pass[:])
		return okUser&okPass == 1
	}
	return false
}

type routeError struct {
	code int
	msg  string
}

// route finds the instance a push is for: the {instance} wildcard, else the path segment after
// Path. The bare path means the only instance; with several it is an error.
func (h *handler) route(r *http.Request) (string, *routeError) {
	name := r.PathValue("instance")
	if name == "" {
		rest := r.URL.Path
		if i := strings.Index(rest, Path); i >= 0 {
			rest = rest[i+len(Path):]
		}
		name = strings.Trim(rest, "/")
	}
	if name == "" {
		switch len(h.o.Instances) {
		case 0:
			return "", &routeError{http.StatusNotFound, "no instance is configured"}
		case 1:
			return h.o.Instances[0], nil
		default:
			return "", &routeError{http.StatusBadRequest,
				"several instances are configured: push to " + Path + "/{instance}"}
		}
	}
	if !slices.Contains(h.o.Instances, name) {
		return "", &routeError{http.StatusNotFound, fmt.Sprintf("unknown instance %q", clip(name, 64))}
	}
	return name, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
