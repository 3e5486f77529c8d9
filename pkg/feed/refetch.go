package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/classify"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Outcomes of processing one pushed issue.
const (
	PushCreated     = "created"
	PushUpdated     = "updated"
	PushUnchanged   = "unchanged"    // known issue, same status as its last event
	PushNotMatching = "not_matching" // unknown issue outside the created feed's filters or window
	PushNotFound    = "not_found"    // Wiz does not return the issue (deleted, or not visible to us)
	PushRejected    = "rejected"     // the issue cannot be an incident (guard.go): recorded, no event
)

// IssueGetter fetches one issue by id.
type IssueGetter interface {
	Issue(ctx context.Context, id string) (*wiz.Issue, json.RawMessage, error)
}

// IssueLister fetches many issues by id with one request (wiz.Client.IssuesByID): the issues found,
// each with its raw node; an id with no issue in the answer is not found. A Source that implements
// it lets ProcessBatch read a whole batch at once; any other is asked one id at a time.
type IssueLister interface {
	IssuesByID(ctx context.Context, ids []string) ([]wiz.Issue, []json.RawMessage, error)
}

// PushResult is the decision on one issue of a batch: Outcome is a Push* value, or Err says this
// issue could not be decided (its read was refused, or its commit failed) and must be tried again.
type PushResult struct {
	IssueID string
	Outcome string
	Err     error
	// Lagging is true when the outcome may only mean that Wiz does not show the pushed issue yet
	// (ingestion lag, WIZ_API.md §3): it is not found. The push worker reads it again a few times
	// before it lets the push go. (An issue found unchanged is not retried: a repeated push looks
	// the same, and the push carries no trustworthy status to tell them apart; on an instance with
	// an updates feed, that feed sees a change Wiz shows late.)
	Lagging bool
}

// RefetcherOptions configure the push pipeline of one instance.
type RefetcherOptions struct {
	Instance   string
	Fetch      config.Fetch
	Sinks      []string
	Source     IssueGetter
	Store      *store.Store
	Classifier *classify.Classifier
	Mapper     *incident.Mapper
	Now        func() time.Time
	Logger     *slog.Logger
}

// Refetcher turns a Wiz push into events: a push is only a notification (its fields are operator-edited
// strings), so the issue is fetched again by id and run through the same in-transaction decisions as
// the feeds. A repeated push, or a pull of the same change, finds the incident already at that status
// and emits nothing. It is the decision step of the push flow, whose home is pkg/push: push.Worker
// drains the refetch queue and calls Process, and nothing else does.
type Refetcher struct {
	opt RefetcherOptions
}

// NewRefetcher returns the push pipeline of one instance.
func NewRefetcher(opt RefetcherOptions) *Refetcher {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Refetcher{opt: opt}
}

// Process fetches the issue and commits what it means. An error means "try again later"; the caller
// keeps the queue item.
func (r *Refetcher) Process(ctx context.Context, issueID string) (string, error) {
	res, err := r.ProcessBatch(ctx, []string{issueID})
	if err != nil {
		return "", err
	}
	return res[0].Outcome, res[0].Err
}

// ProcessBatch is Process for many pushed issues of the instance at once: they are read with one
// request when the Source is an IssueLister (at most wiz.MaxIDsPerRequest ids), and every decision
// is committed in one store transaction, like a page's, each issue decided exactly as Process would
// decide it alone. The results follow ids (a repeated id shares its first occurrence's result). An
// error means the whole batch must be tried again (the read failed: network, throttling, 5xx after
// the client's retries); an issue that alone cannot be decided has its own PushResult.Err, so it
// never holds back the others: a batch whose commit fails is committed again one issue per
// transaction.
func (r *Refetcher) ProcessBatch(ctx context.Context, ids []string) ([]PushResult, error) {
	if len(ids) > wiz.MaxIDsPerRequest {
		return nil, fmt.Errorf("refetch %d issues of %s: at most %d at once", len(ids), r.opt.Instance, wiz.MaxIDsPerRequest)
	}
	uniq := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if key := strings.ToLower(id); !seen[key] {
			seen[key] = true
			uniq = append(uniq, id)
		}
	}
	found, err := r.fetch(ctx, uniq)
	if err != nil {
		if len(uniq) == 1 {
			return nil, fmt.Errorf("refetch issue %s of %s: %w", uniq[0], r.opt.Instance, err)
		}
		return nil, fmt.Errorf("refetch %d issues of %s: %w", len(uniq), r.opt.Instance, err)
	}
	pending := make([]*pushed, 0, len(uniq))
	byKey := make(map[string]*pushed, len(uniq))
	for _, id := range uniq {
		p := &pushed{id: id}
		byKey[strings.ToLower(id)] = p
		f, ok := found[strings.ToLower(id)]
		switch {
		case !ok:
			p.outcome = PushNotFound
		case f.err != nil:
			p.err = fmt.Errorf("refetch issue %s of %s: %w", id, r.opt.Instance, f.err)
		default:
			p.is, p.raw = f.is, f.raw
			if p.rej = checkIssue(p.is); p.rej == nil {
				p.incJSON, p.clipped, p.rej = encodeIncident(r.opt.Mapper, r.opt.Classifier, p.is, p.raw)
			}
			pending = append(pending, p)
		}
	}
	r.commit(pending)
	out := make([]PushResult, len(ids))
	for i, id := range ids {
		p := byKey[strings.ToLower(id)]
		out[i] = PushResult{IssueID: id, Outcome: p.outcome, Err: p.err, Lagging: p.err == nil && p.outcome == PushNotFound}
	}
	return out, nil
}

// pushed is one issue of a batch on its way through ProcessBatch.
type pushed struct {
	id      string
	is      *wiz.Issue
	raw     json.RawMessage
	incJSON []byte
	clipped int
	rej     *rejection
	outcome string
	err     error
}

// fetched is one issue read by id, or the refusal of its read (err).
type fetched struct {
	is  *wiz.Issue
	raw json.RawMessage
	err error
}

// fetch reads the issues by id, keyed by lower-cased id; an id absent from the map is not found. A
// batch goes out as one request when the Source can (IssueLister); a lone id, or a Source that
// cannot, is read with the one-issue query. If Wiz refuses the id-list read itself (bad request, or
// a not-found answer to the whole list), each id is read alone, so that one id Wiz refuses costs
// only its own push what it would cost alone.
func (r *Refetcher) fetch(ctx context.Context, ids []string) (map[string]fetched, error) {
	if lister, ok := r.opt.Source.(IssueLister); ok && len(ids) > 1 {
		issues, raws, err := lister.IssuesByID(ctx, ids)
		if err == nil {
			out := make(map[string]fetched, len(issues))
			for i := range issues {
				out[strings.ToLower(issues[i].ID)] = fetched{is: &issues[i], raw: raws[i]}
			}
			return out, nil
		}
		if !errors.Is(err, wiz.ErrBadRequest) && !errors.Is(err, wiz.ErrNotFound) {
			return nil, err
		}
		r.opt.Logger.Warn("id-list read refused: reading the batch one issue at a time", "instance", r.opt.Instance,
			"issues", len(ids), "err", err)
	}
	out := make(map[string]fetched, len(ids))
	for _, id := range ids {
		is, raw, err := r.opt.Source.Issue(ctx, id)
		if ue, ok := errors.AsType[*wiz.UndecodableError](err); ok {
			// Rejected (its Defects say why) and recorded, as a page's node would be: retrying
			// the push would read the same node for good.
			is, raw, err = &ue.Issue, ue.Raw, nil
		}
		switch {
		case errors.Is(err, wiz.ErrNotFound):
		case errors.Is(err, wiz.ErrBadRequest) && len(ids) > 1:
			out[strings.ToLower(id)] = fetched{err: err}
		case err != nil:
			return nil, err
		default:
			out[strings.ToLower(id)] = fetched{is: is, raw: raw}
		}
	}
	return out, nil
}

// commit decides the pending issues in one write transaction (a page's commit); should it fail,
// each is decided again in a transaction of its own, so one issue that cannot be committed fails
// alone. Each issue ends with an outcome or an error, and its rejection or clipping logged.
func (r *Refetcher) commit(pending []*pushed) {
	if len(pending) == 0 {
		return
	}
	err := r.opt.Store.Update(func(tx *store.Tx) error {
		for _, p := range pending {
			var err error
			if p.outcome, err = r.decideOne(tx, p); err != nil {
				return fmt.Errorf("issue %s: %w", p.id, err)
			}
		}
		return nil
	})
	if err != nil && len(pending) > 1 {
		r.opt.Logger.Warn("commit of a batch of pushed issues failed: committing them one by one", "instance", r.opt.Instance,
			"issues", len(pending), "err", err)
		for _, p := range pending {
			p.err = r.opt.Store.Update(func(tx *store.Tx) error {
				var err error
				p.outcome, err = r.decideOne(tx, p)
				return err
			})
		}
	} else if err != nil {
		pending[0].err = err
	}
	for _, p := range pending {
		if p.err != nil {
			p.outcome = ""
			p.err = fmt.Errorf("commit pushed issue %s of %s: %w", p.id, r.opt.Instance, p.err)
			continue
		}
		switch {
		case p.rej != nil:
			r.opt.Logger.Warn("pushed issue rejected: not an incident (recorded with its raw node)", "instance", r.opt.Instance,
				"issue_id", clipID(p.id), "reason", p.rej.reason, "detail", p.rej.detail)
		case p.clipped > 0:
			r.opt.Logger.Warn("incident clipped: strings over the size bound cut (the full issue: wizfetch issue get)",
				"instance", r.opt.Instance, "issue_id", clipID(p.id), "clipped_strings", p.clipped, "node_bytes", len(p.raw))
		}
	}
}

// decideOne takes the decision on one fetched issue in tx: a rejected issue is recorded, any other
// decided by decide.
func (r *Refetcher) decideOne(tx *store.Tx, p *pushed) (string, error) {
	if p.rej != nil {
		_, err := recordRejected(tx, r.opt.Instance, "push", p.is, p.raw, p.rej, r.opt.Now().UTC())
		return PushRejected, err
	}
	return r.decide(tx, p.is, p.incJSON)
}

func (r *Refetcher) decide(tx *store.Tx, is *wiz.Issue, incJSON []byte) (string, error) {
	now := r.opt.Now().UTC()
	horizon := now.Add(MaxClockSkew)
	inst := r.opt.Instance
	rec, known, err := tx.FindIncident(inst, is.ID, is.CreatedAt)
	if err != nil {
		return "", err
	}
	if _, err := tx.DeleteRejected(inst, is.ID); err != nil {
		return "", err
	}
	kind := ""
	switch {
	case known && isStale(rec, is, horizon):
		return PushUnchanged, nil
	case known && rec.Status != is.Status:
		kind = incident.KindUpdated
	case known:
		rec.Incident = incJSON
		rec.UpdatedAt = now
		return PushUnchanged, tx.PutIncident(rec)
	case !MatchesCreated(r.opt.Fetch, is):
		return PushNotMatching, nil
	default:
		start, err := r.windowStart(tx, now)
		if err != nil {
			return "", err
		}
		if !is.CreatedAt.After(start) {
			return PushNotMatching, nil
		}
		kind = incident.KindCreated
	}
	// Leave the mark a pull of the same change would leave, so the updates feed skips it cleanly (the
	// created feed skips it because the incident now exists).
	if is.StatusChangedAt != nil {
		if err := tx.PutMark(inst, Updates, markKey(is), notLater(*is.StatusChangedAt, horizon)); err != nil {
			return "", err
		}
	}
	if err := Emit(tx, EmitInput{
		Instance: inst, Kind: kind, Issue: is, Incident: incJSON, Previous: rec, Sinks: r.opt.Sinks, Now: now,
	}); err != nil {
		return "", err
	}
	return kind, nil
}

// windowStart is the created feed's first-run start; in push-only mode (no created feed) it is
// now - lookback.
func (r *Refetcher) windowStart(tx *store.Tx, now time.Time) (time.Time, error) {
	cp, ok, err := tx.Checkpoint(r.opt.Instance, Created)
	if err != nil {
		return time.Time{}, err
	}
	if ok && !cp.FirstStart.IsZero() {
		return cp.FirstStart, nil
	}
	return now.Add(-r.opt.Fetch.Lookback.D()), nil
}
