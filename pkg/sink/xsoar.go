package sink

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// xsoar8Prefix is the public API path of XSOAR 8 / XSIAM, appended to the configured url when
// api_key_id is set.
const xsoar8Prefix = "/xsoar/public/v1"

// XSOAR creates and updates incidents through the XSOAR REST API (WIZ_API.md §8).
//
// Endpoints. With api_key_id empty it speaks XSOAR 6: url is the server base (e.g.
// https://xsoar.example.com), requests go to <url>/incident and <url>/incidents/search with
// "Authorization: <api_key>". With api_key_id set it speaks XSOAR 8 / XSIAM: url is the API base
// the operator copies from the API keys page (e.g. https://api-tenant.xdr.us.paloaltonetworks.com),
// "/xsoar/public/v1" is appended (unless url already ends with it), and every request carries
// "x-xdr-auth-id: <api_key_id>" and "Authorization: <api_key>"; with advanced_key the Authorization
// is hex(sha256(api_key + nonce + timestamp)) with "x-xdr-nonce" (64 random alphanumerics) and
// "x-xdr-timestamp" (unix ms), fresh for every request, retries included.
//
// Body of a create: the event's incident object, with "type" replaced by incident_type_override when
// set, plus "createInvestigation" (config, default true): it is documented for creation (XSOAR 6/8
// "Create or update an incident") and an update must not restart the playbook. Body of an update:
// the incident as XSOAR holds it with the event's incident set over it (updateBody).
//
// XSOAR does not deduplicate, so the sink keeps issue → {XSOAR id, version} in the store (sink state
// key "xsoar:<instance>:<issue id>"), written after each successful create or update:
//   - no entry (a new issue, or a new or lost store): search XSOAR for an incident of the issue
//     (query dbotMirrorId:"<issue id>", see findByIssue). Found: adopt it (save its id and version)
//     and update it in place. Not found: create it and remember the id and version XSOAR returns.
//   - an entry: update the incident by read-modify-write (update, updateBody). XSOAR's update
//     replaces the whole incident ("If you do not provide the field data for a specific field, it
//     will be wiped": the Palo Alto Networks answer xsoarsim's package doc quotes), so the sink
//     reads it with POST <base>/incidents/search {"filter":{"id":[id],"page":0,"size":N}}, sets the
//     event's incident over it, keeps the rest (owner, phase, close fields, the custom fields of
//     analysts and playbooks) and posts it back with the version it read. The dispatcher delivers a
//     sink's events in order, so the issue's create is acknowledged before its update is tried; a
//     created event for an issue already mapped (a replay) updates that incident instead of
//     creating a duplicate. A version conflict (HTTP 400 errOptimisticLock, or a 400 or 409 naming
//     the version: an edit between the read and the write) reads again and retries once; an
//     incident no longer found is created anew.
//
// Every search sends "size": XSOAR returns no incident at all without it (it defaults to 0; max
// 1000: demisto-py docs/IncidentFilter.md).
//
// A crash between XSOAR's answer to a create and the store write leaves an incident the store does
// not know; the retry finds it by dbotMirrorId and adopts it. Should XSOAR's search not show it yet,
// a second incident is created: delivery stays at-least-once.
type XSOAR struct {
	name         string
	incidentURL  string
	searchURL    string
	key          string
	keyID        string
	advanced     bool
	createInv    bool
	typeOverride string
	st           *store.Store
	http         *httpSender
	log          *slog.Logger
	now          func() time.Time
	random       io.Reader
	mirror       *xsoarMirror // bi-directional mirroring (xsoar_mirror.go); nil: off
}

// xsoarRef is the XSOAR incident an issue maps to.
type xsoarRef struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	// Extra lists, comma-separated and sorted, the custom fields other than the built-in ones
	// (incident.BuiltinCustomFields) that the last create or update sent: mapping.fields that
	// matched. They are wizfetch's like the built-in ones, so an update whose event no longer has
	// one removes it from the incident (updateBody).
	Extra string `json:"extra,omitempty"`
}

// NewXSOAR builds the xsoar sink of cfg (secrets already resolved); st holds the issue → incident
// map.
func NewXSOAR(cfg config.Sink, st *store.Store, log *slog.Logger) (*XSOAR, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if st == nil {
		return nil, fmt.Errorf("xsoar sink %s: no store", cfg.Name)
	}
	if cfg.APIKey.Reveal() == "" {
		return nil, fmt.Errorf("xsoar sink %s: api_key is not set", cfg.Name)
	}
	keyID := strings.TrimSpace(cfg.APIKeyID)
	if cfg.AdvancedKey && keyID == "" {
		return nil, fmt.Errorf("xsoar sink %s: advanced_key needs api_key_id", cfg.Name)
	}
	base := strings.TrimRight(strings.TrimSpace(cfg.URL), "/")
	if keyID != "" && !strings.HasSuffix(base, xsoar8Prefix) {
		base += xsoar8Prefix
	}
	incidentURL, err := joinURL(base, "/incident")
	if err != nil {
		return nil, fmt.Errorf("xsoar sink %s: %w", cfg.Name, err)
	}
	searchURL, err := joinURL(base, "/incidents/search")
	if err != nil {
		return nil, fmt.Errorf("xsoar sink %s: %w", cfg.Name, err)
	}
	hs, err := newHTTPSender(cfg, log, cfg.APIKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("xsoar sink %s: %w", cfg.Name, err)
	}
	createInv := true
	if cfg.CreateInvestigation != nil {
		createInv = *cfg.CreateInvestigation
	}
	mirror, err := newXSOARMirror(cfg, base)
	if err != nil {
		return nil, fmt.Errorf("xsoar sink %s: %w", cfg.Name, err)
	}
	return &XSOAR{
		mirror:       mirror,
		name:         cfg.Name,
		incidentURL:  incidentURL,
		searchURL:    searchURL,
		key:          cfg.APIKey.Reveal(),
		keyID:        keyID,
		advanced:     cfg.AdvancedKey,
		createInv:    createInv,
		typeOverride: cfg.IncidentTypeOverride,
		st:           st,
		http:         hs,
		log:          log.With("component", "sink", "sink", cfg.Name),
		now:          time.Now,
		random:       rand.Reader,
	}, nil
}

// Name implements Sink.
func (x *XSOAR) Name() string { return x.name }

// Close implements Sink.
func (x *XSOAR) Close() error {
	x.http.close()
	return nil
}

// Deliver implements Sink, in order: a create is one request (after a search when the store has no
// record of the issue), an update a search and a post (twice on a version conflict).
func (x *XSOAR) Deliver(ctx context.Context, items []store.OutboxItem) (int, error) {
	for i, it := range items {
		if err := x.deliver(ctx, it); err != nil {
			return i, fmt.Errorf("xsoar sink %s: %w", x.name, err)
		}
	}
	return len(items), nil
}

func (x *XSOAR) deliver(ctx context.Context, it store.OutboxItem) error {
	ev, err := parseEvent(it)
	if err != nil {
		return err
	}
	if ev.IssueID == "" || len(ev.Incident) == 0 || ev.Incident[0] != '{' {
		return Permanent(fmt.Errorf("event %s has no issue_id or incident object", ev.EventID))
	}
	stateKey := "xsoar:" + ev.Instance + ":" + ev.IssueID
	ref, err := x.loadRef(stateKey)
	if err != nil {
		return err
	}
	switch ev.Kind {
	case "created", "updated":
	default:
		return Permanent(fmt.Errorf("event %s: unknown kind %q", ev.EventID, ev.Kind))
	}
	var current json.RawMessage // the incident as XSOAR holds it, when a search just answered it
	if ref == nil {
		found, obj, err := x.findByIssue(ctx, ev.IssueID)
		if err != nil {
			return fmt.Errorf("look for an XSOAR incident of issue %s: %w", ev.IssueID, err)
		}
		if found == nil {
			got, answer, err := x.create(ctx, ev)
			if err != nil {
				return fmt.Errorf("create incident for issue %s: %w", ev.IssueID, err)
			}
			if got.Extra, err = extraCustomFields(ev); err != nil {
				return err
			}
			if err := x.saveRef(stateKey, got); err != nil {
				return err
			}
			return x.mirrorAfter(ctx, ev, got, answer, true)
		}
		// The store lost (or never had) the mapping: adopt XSOAR's incident and update it in place.
		x.log.Info("adopting an existing XSOAR incident", "issue_id", ev.IssueID, "incident_id", found.ID)
		if err := x.saveRef(stateKey, found); err != nil {
			return err
		}
		ref, current = found, obj
	}
	got, answer, err := x.update(ctx, ev, ref, current)
	if err != nil {
		return fmt.Errorf("update incident %s for issue %s: %w", ref.ID, ev.IssueID, err)
	}
	if got.Extra, err = extraCustomFields(ev); err != nil {
		return err
	}
	if err := x.saveRef(stateKey, got); err != nil {
		return err
	}
	return x.mirrorAfter(ctx, ev, got, answer, false)
}

// create creates the incident of ev and returns XSOAR's id and version, and the incident as XSOAR
// answered it.
func (x *XSOAR) create(ctx context.Context, ev eventLine) (*xsoarRef, []byte, error) {
	body, err := x.createBody(ev)
	if err != nil {
		return nil, nil, err
	}
	return x.send(ctx, body)
}

// send posts body to <base>/incident and returns XSOAR's id and version, and the incident as XSOAR
// answered it.
func (x *XSOAR) send(ctx context.Context, body []byte) (*xsoarRef, []byte, error) {
	resp, err := x.http.do(ctx, http.MethodPost, x.incidentURL, x.headers(), body)
	if err != nil {
		return nil, nil, err
	}
	got, err := parseRef(resp.body)
	if err != nil {
		// XSOAR may have stored the incident: don't retry into a duplicate, show it instead.
		return nil, nil, Permanent(fmt.Errorf("XSOAR answered HTTP %d without a usable incident: %w", resp.status, err))
	}
	return got, resp.body, nil
}

// createBody renders the body of a create: the incident, "type" replaced by
// incident_type_override when set, and createInvestigation. Keys come out sorted; the values are
// the event's bytes (rawJSON stays a string).
func (x *XSOAR) createBody(ev eventLine) ([]byte, error) {
	var inc map[string]json.RawMessage
	if err := json.Unmarshal(ev.Incident, &inc); err != nil || inc == nil {
		return nil, Permanent(fmt.Errorf("event %s: incident is not a JSON object", ev.EventID))
	}
	if x.typeOverride != "" {
		inc["type"] = json.RawMessage(appendJSONString(nil, x.typeOverride))
	}
	inc["createInvestigation"] = json.RawMessage(strconv.FormatBool(x.createInv))
	b, err := json.Marshal(inc)
	if err != nil {
		return nil, Permanent(fmt.Errorf("event %s: render incident: %w", ev.EventID, err))
	}
	return b, nil
}

// headers returns the authentication headers of one request (a fresh nonce and timestamp for an
// advanced key).
func (x *XSOAR) headers() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	if x.keyID == "" {
		h.Set("Authorization", x.key)
		return h
	}
	h["x-xdr-auth-id"] = []string{x.keyID}
	if !x.advanced {
		h.Set("Authorization", x.key)
		return h
	}
	nonce := randomAlphanumeric(x.random, 64)
	ts := strconv.FormatInt(x.now().UnixMilli(), 10)
	h["x-xdr-nonce"] = []string{nonce}
	h["x-xdr-timestamp"] = []string{ts}
	h.Set("Authorization", advancedAuth(x.key, nonce, ts))
	return h
}

// advancedAuth is the Authorization value of an XSOAR 8 advanced API key.
func advancedAuth(key, nonce, ts string) string {
	sum := sha256.Sum256([]byte(key + nonce + ts))
	return hex.EncodeToString(sum[:])
}

// randomAlphanumeric returns n characters from [A-Za-z0-9], uniformly (rejection sampling).
func randomAlphanumeric(r io.Reader, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			// crypto/rand does not fail on supported platforms (it panics inside if it must).
			panic(fmt.Sprintf("read random bytes: %v", err))
		}
		for _, b := range buf {
			if b < 248 && len(out) < n { // 248 = 4·62: keeps the draw uniform
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out)
}

func (x *XSOAR) loadRef(key string) (*xsoarRef, error) {
	var raw []byte
	err := x.st.View(func(tx *store.Tx) error {
		var err error
		raw, err = tx.SinkState(x.name, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read incident map: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	var ref xsoarRef
	if err := json.Unmarshal(raw, &ref); err != nil || ref.ID == "" {
		x.log.Warn("ignoring a corrupt incident map entry", "key", key)
		return nil, nil
	}
	return &ref, nil
}

func (x *XSOAR) saveRef(key string, ref *xsoarRef) error {
	b, err := json.Marshal(ref)
	if err != nil {
		return fmt.Errorf("encode incident map entry: %w", err)
	}
	err = x.st.Update(func(tx *store.Tx) error { return tx.PutSinkState(x.name, key, b) })
	if err != nil {
		return fmt.Errorf("write incident map: %w", err)
	}
	return nil
}

var _ Sink = (*XSOAR)(nil)
