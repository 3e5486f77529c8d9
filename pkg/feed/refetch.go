package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	is, raw, err := r.opt.Source.Issue(ctx, issueID)
	if errors.Is(err, wiz.ErrNotFound) {
		return PushNotFound, nil
	}
	if err != nil {
		return "", fmt.Errorf("refetch issue %s of %s: %w", issueID, r.opt.Instance, err)
	}
	rej := checkIssue(is)
	var incJSON []byte
	clipped := 0
	if rej == nil {
		incJSON, clipped, rej = encodeIncident(r.opt.Mapper, r.opt.Classifier, is, raw)
	}
	var outcome string
	err = r.opt.Store.Update(func(tx *store.Tx) error {
		if rej != nil {
			outcome = PushRejected
			_, err := recordRejected(tx, r.opt.Instance, "push", is, raw, rej, r.opt.Now().UTC())
			return err
		}
		outcome, err = r.decide(tx, is, incJSON)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("commit pushed issue %s of %s: %w", issueID, r.opt.Instance, err)
	}
	switch {
	case rej != nil:
		r.opt.Logger.Warn("pushed issue rejected: not an incident (recorded with its raw node)", "instance", r.opt.Instance,
			"issue_id", clipID(issueID), "reason", rej.reason, "detail", rej.detail)
	case clipped > 0:
		r.opt.Logger.Warn("incident clipped: strings over the size bound cut (the full issue: wizfetch issue get)",
			"instance", r.opt.Instance, "issue_id", clipID(issueID), "clipped_strings", clipped, "node_bytes", len(raw))
	}
	return outcome, nil
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
