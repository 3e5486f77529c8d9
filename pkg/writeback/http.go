package writeback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// PathPrefix is where the HTTP API is mounted.
const PathPrefix = "/v1/issues/"

// maxRequestBytes bounds an action's JSON body (a note is at most a few KiB).
const maxRequestBytes = 64 << 10

// Request is the JSON body of POST /v1/issues/{id}/{action}; every field is optional and applies
// as Action documents.
type Request struct {
	Reason  string `json:"reason"`
	Note    string `json:"note"`
	Text    string `json:"text"`
	DueDate string `json:"due_date"`
}

// Audit writes the audit line of one write: who (via and actor), what (instance, action, issue,
// reason, note length), the outcome, and when (the record's time). It never logs note text,
// credentials or headers.
func Audit(ctx context.Context, log *slog.Logger, via, actor, instance string, a Action, err error) {
	a = a.normalize()
	attrs := []slog.Attr{
		slog.String("via", via),
		slog.String("actor", actor),
		slog.String("instance", instance),
		slog.String("action", a.Kind),
		slog.String("issue_id", a.IssueID),
	}
	if a.Reason != "" {
		attrs = append(attrs, slog.String("reason", a.Reason))
	}
	if a.DueDate != "" {
		attrs = append(attrs, slog.String("due_date", a.DueDate))
	}
	if n := len([]rune(a.Note)) + len([]rune(a.Text)); n > 0 {
		attrs = append(attrs, slog.Int("note_chars", n))
	}
	if err != nil {
		attrs = append(attrs, slog.String("result", "error"), slog.String("err", err.Error()))
	} else {
		attrs = append(attrs, slog.String("result", "ok"))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// NewHandler serves the write-back API, to be mounted at PathPrefix behind the server's Bearer
// auth_token check:
//
//	GET  /v1/issues/{id}[?instance=I]           the issue JSON as Wiz returns it
//	POST /v1/issues/{id}/{action}[?instance=I]  body Request; answers Result
//
// where action is one of Kinds and the instance defaults to defaultInstance. Status codes: 200;
// 400 for a malformed request (answered before any call to Wiz; e.g. a reason the action does
// not take, see Reasons) or an action Wiz would refuse (resolving a non-THREAT_DETECTION issue);
// 404 for an unknown instance, action or issue; 405 for a wrong method; 502 for any other Wiz
// failure. Errors are {"error": "..."}. Every POST writes an audit line (Audit, via "http",
// actor the remote address).
func NewHandler(clients map[string]Client, defaultInstance string, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{clients: clients, def: defaultInstance, log: log.With("component", "writeback")}
}

type handler struct {
	clients map[string]Client
	def     string
	log     *slog.Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := r.URL.Path
	if i := strings.Index(rest, PathPrefix); i >= 0 {
		rest = rest[i+len(PathPrefix):]
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] != "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "use GET to read an issue")
			return
		}
		h.get(w, r, parts[0])
	case len(parts) == 2:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "use POST to change an issue")
			return
		}
		h.act(w, r, parts[0], parts[1])
	default:
		writeError(w, http.StatusNotFound, "not found: use /v1/issues/{id} or /v1/issues/{id}/{action}")
	}
}

// client picks the instance's client, or answers 404.
func (h *handler) client(w http.ResponseWriter, r *http.Request) (string, Client, bool) {
	name := r.URL.Query().Get("instance")
	if name == "" {
		name = h.def
	}
	c, ok := h.clients[name]
	if !ok {
		names := make([]string, 0, len(h.clients))
		for n := range h.clients {
			names = append(names, n)
		}
		sort.Strings(names)
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown instance %q (configured: %s)", clip(name, 64), strings.Join(names, ", ")))
		return "", nil, false
	}
	return name, c, true
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, id string) {
	if err := ValidateIssueID(id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	_, c, ok := h.client(w, r)
	if !ok {
		return
	}
	_, raw, err := c.Issue(r.Context(), strings.ToLower(id))
	if err != nil {
		writeError(w, statusFor(err), err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
}

func (h *handler) act(w http.ResponseWriter, r *http.Request, id, kind string) {
	if !slices.Contains(Kinds, kind) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown action %q (one of %s)", clip(kind, 32), strings.Join(Kinds, ", ")))
		return
	}
	a := Action{Kind: kind, IssueID: id}
	name, c, ok := h.client(w, r)
	if !ok {
		Audit(r.Context(), h.log, "http", r.RemoteAddr, r.URL.Query().Get("instance"), a, errors.New("unknown instance"))
		return
	}
	var req Request
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxRequestBytes))
		Audit(r.Context(), h.log, "http", r.RemoteAddr, name, a, err)
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			err = fmt.Errorf("body is not a valid request ({\"reason\",\"note\",\"text\",\"due_date\"}): %w", err)
			writeError(w, http.StatusBadRequest, err.Error())
			Audit(r.Context(), h.log, "http", r.RemoteAddr, name, a, err)
			return
		}
	}
	a.Reason, a.Note, a.Text, a.DueDate = req.Reason, req.Note, req.Text, req.DueDate

	res, err := Do(r.Context(), c, a)
	Audit(r.Context(), h.log, "http", r.RemoteAddr, name, a, err)
	if err != nil {
		writeError(w, statusFor(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// statusFor maps an action's error to an HTTP status.
func statusFor(err error) int {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotAllowed):
		return http.StatusBadRequest
	case errors.Is(err, wiz.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrOutcomeUnknown):
		// The change may be in Wiz already, with its note: a retry could add the note twice.
		return http.StatusFailedDependency
	case errors.Is(err, wiz.ErrPermission), errors.Is(err, wiz.ErrBadRequest):
		// Wiz refused for good (a missing write scope, a change it does not take): not a 502, which
		// playbooks retry.
		return http.StatusUnprocessableEntity
	default:
		// Wiz failed for now (wiz.ErrTransient), or wizfetch's credentials did (wiz.ErrAuth, which
		// the operator fixes): worth retrying.
		return http.StatusBadGateway
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
