// Package mirror is the XSOAR → Wiz half of bi-directional issue management (issue 20): every
// mirror.interval it asks XSOAR which of wizfetch's incidents changed since its checkpoint and, for
// each one an analyst closed or reopened, rejects, resolves or reopens the Wiz issue through the
// instance's Wiz client (its rate limiter) and pkg/writeback (its reason rules and audit lines).
// The Wiz → XSOAR half runs in the xsoar sink (pkg/sink, xsoar_mirror.go); both keep their state
// in the store (pkg/store, mirror.go).
//
// # What is mirrored
//
// An incident is acted on only when its state (closed or not) differs from the state wizfetch
// knows it in (store.MirrorIncident, see sink.KnownClosed) — someone else changed it — and differs
// from the issue's status as last delivered (its "status" label) — Wiz does not already show it.
// A change wizfetch made itself is known, so it never bounces back; a change Wiz already shows is
// simply taken as known.
//
// # Crash safety
//
// The decision (store.MirrorAction) is committed before Wiz is called and completed together with
// the new known state after the answer. A poll first finishes the decisions a crash left: it reads
// the issue and sends the change only if Wiz does not show it yet (a note is looked for by the
// token it carries), so a kill -9 at any point neither loses a close nor applies it twice. The
// checkpoint moves only after every incident of a page is settled.
package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/sink"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// XSOAR is what the poller needs of the xsoar sink; *sink.XSOAR satisfies it.
type XSOAR interface {
	Name() string
	ChangedIncidents(ctx context.Context, since time.Time, page, size int) ([]sink.XSOARIncident, error)
	MappedIncident(instance, issueID string) (string, error)
}

// Defaults.
const (
	// DefaultPageSize is how many incidents one search asks for (XSOAR allows up to 1000).
	DefaultPageSize = 200
	// Overlap is how far before the last change seen the next search starts: the search is
	// inclusive and decisions are idempotent, so re-reading costs little and covers a search index
	// that shows a change a moment late.
	Overlap = 30 * time.Second
	// GiveUpAfter bounds how long one decision is retried against a failing Wiz (timeouts, 5xx,
	// 429) before it is given up (logged, counted as refused): a mirrored change is never retried
	// forever, yet a Wiz outage of hours loses no analyst's close. A refusal (a change Wiz will
	// never take) is given up at once.
	GiveUpAfter = 24 * time.Hour
	// maxPages bounds one poll.
	maxPages = 1000
)

// ErrCrash is what Options.Crash returns to stop a poll where a kill -9 would (tests).
var ErrCrash = errors.New("simulated crash")

// Options configure a Poller.
type Options struct {
	XSOAR   XSOAR
	Store   *store.Store
	Clients map[string]writeback.Client // by instance name
	Mirror  config.XSOARMirror
	Logger  *slog.Logger
	// Observe, when set, is told of every action (direction sink.MirrorToWiz) and of each poll's
	// outcome (action "poll").
	Observe sink.MirrorObserver
	Now     func() time.Time
	// PageSize is the size of one search; 0 uses DefaultPageSize.
	PageSize int
	// Crash, when set (tests), is called at each point a kill -9 could interrupt ("decided",
	// "applied", "page"); a non-nil error stops the poll right there without another store write.
	Crash func(point string) error
}

// Poller mirrors XSOAR closes and reopens of one xsoar sink to Wiz. Run it; Poll is one pass.
type Poller struct {
	o       Options
	sink    string
	log     *slog.Logger
	reasons map[string]string
}

// New returns the poller of o.
func New(o Options) (*Poller, error) {
	if o.XSOAR == nil || o.Store == nil {
		return nil, errors.New("mirror: XSOAR and Store are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observe == nil {
		o.Observe = func(string, string, string, error) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Crash == nil {
		o.Crash = func(string) error { return nil }
	}
	return &Poller{o: o, sink: o.XSOAR.Name(), reasons: o.Mirror.EffectiveCloseReasons(),
		log: o.Logger.With("component", "mirror", "sink", o.XSOAR.Name())}, nil
}

// Run polls at once and then every mirror.interval until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	interval := p.o.Mirror.EffectiveInterval()
	for {
		err := p.Poll(ctx)
		switch {
		case err == nil:
			p.o.Observe(sink.MirrorToWiz, "poll", sink.MirrorOK, nil)
		case ctx.Err() == nil:
			p.log.Error("XSOAR mirror poll failed; retrying at the next interval", "err", err)
			p.o.Observe(sink.MirrorToWiz, "poll", sink.MirrorError, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Poll finishes decisions a crash left, then reads every incident changed since the checkpoint,
// page by page, mirrors what needs it, and moves the checkpoint after each settled page.
func (p *Poller) Poll(ctx context.Context) error {
	var pending []store.MirrorAction
	err := p.o.Store.View(func(tx *store.Tx) error {
		var err error
		pending, err = tx.MirrorActions(p.sink)
		return err
	})
	if err != nil {
		return fmt.Errorf("read pending mirror decisions: %w", err)
	}
	// One failing decision holds back no other; a failure ends the poll before new pages (Wiz is
	// likely failing for them too).
	var pendingErr error
	for _, a := range pending {
		if err := p.apply(ctx, a); err != nil {
			if errors.Is(err, ErrCrash) || ctx.Err() != nil {
				return err
			}
			pendingErr = cmp.Or(pendingErr, err)
		}
	}
	if pendingErr != nil {
		return pendingErr
	}
	var cp store.MirrorCheckpoint
	if err := p.o.Store.View(func(tx *store.Tx) error {
		var err error
		cp, err = tx.MirrorCheckpoint(p.sink)
		return err
	}); err != nil {
		return fmt.Errorf("read mirror checkpoint: %w", err)
	}
	// Within a poll each search starts at the last change seen (the query is inclusive, at second
	// precision), so a busy XSOAR costs one search a page; the checkpoint the next poll starts
	// from is Overlap before the newest change seen, for a search index that shows a change late.
	since, page := cp.Since, 0
	for range maxPages {
		incs, err := p.o.XSOAR.ChangedIncidents(ctx, since, page, p.o.PageSize)
		if err != nil {
			return err
		}
		for _, inc := range incs {
			if err := p.consider(ctx, inc); err != nil {
				return err
			}
		}
		if len(incs) == 0 {
			return nil
		}
		if err := p.o.Crash("page"); err != nil {
			return err
		}
		last := incs[len(incs)-1].Modified.UTC().Truncate(time.Second)
		if last.After(since) {
			since, page = last, 0
		} else {
			page++ // a page of ties (or of incidents without "modified"): read on at the same time
		}
		if next := last.Add(-Overlap); next.After(cp.Since) {
			cp = store.MirrorCheckpoint{Since: next, UpdatedAt: p.o.Now().UTC()}
			if err := p.o.Store.Update(func(tx *store.Tx) error { return tx.PutMirrorCheckpoint(p.sink, cp) }); err != nil {
				return fmt.Errorf("write mirror checkpoint: %w", err)
			}
		}
		if len(incs) < p.o.PageSize {
			return nil
		}
	}
	return fmt.Errorf("XSOAR mirror poll stopped after %d pages", maxPages)
}

// consider settles one changed incident: takes its state as known, or decides and applies a change
// of the Wiz issue.
func (p *Poller) consider(ctx context.Context, inc sink.XSOARIncident) error {
	if inc.MirrorID == "" {
		return nil
	}
	var rec *store.MirrorIncident
	err := p.o.Store.View(func(tx *store.Tx) error {
		var err error
		rec, err = tx.MirrorIncident(p.sink, inc.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("read mirror state of incident %s: %w", inc.ID, err)
	}
	if rec == nil {
		if rec, err = p.adopt(inc); err != nil || rec == nil {
			return err
		}
	}
	// Decide against the record as it is now (the sink changes it as it delivers), in the
	// transaction that writes the decision.
	var decided *store.MirrorAction
	err = p.o.Store.Update(func(tx *store.Tx) error {
		rec, err := tx.MirrorIncident(p.sink, inc.ID)
		if err != nil || rec == nil {
			return err
		}
		if inc.Version < rec.Version || sink.KnownClosed(rec, inc) == inc.Closed() {
			// A search answer older than wizfetch's own last change (the sink may have closed or
			// reopened the incident since), or nothing new.
			return nil
		}
		// The incident's status label is the issue's status as last delivered, which may lag
		// behind Wiz (most of all just after this poller changed the issue), so it does not say
		// whether Wiz shows the change: apply reads the issue and settles without writing when
		// it does.
		if !p.o.Mirror.FromXSOAR {
			// Not mirrored: the incident's state is known from now on.
			rec.Closed, rec.Version, rec.ByWizfetch, rec.UpdatedAt = inc.Closed(), inc.Version, false, p.o.Now().UTC()
			return tx.PutMirrorIncident(p.sink, *rec)
		}
		a := p.decide(inc, rec)
		decided = &a
		return tx.PutMirrorAction(p.sink, a)
	})
	if err != nil {
		return fmt.Errorf("write mirror decision for incident %s: %w", inc.ID, err)
	}
	if decided == nil {
		return nil
	}
	if err := p.o.Crash("decided"); err != nil {
		return err
	}
	return p.apply(ctx, *decided)
}

// adopt finds which issue incident inc is of, for an incident the mirror has no record of (made
// before mirroring was on, or by a store older than it), and records it as in step with the issue
// as last delivered. nil: not an incident of this sink.
func (p *Poller) adopt(inc sink.XSOARIncident) (*store.MirrorIncident, error) {
	instances := make([]string, 0, len(p.o.Clients))
	for name := range p.o.Clients {
		instances = append(instances, name)
	}
	slices.Sort(instances)
	for _, name := range instances {
		id, err := p.o.XSOAR.MappedIncident(name, inc.MirrorID)
		if err != nil {
			return nil, fmt.Errorf("look up the incident of issue %s: %w", inc.MirrorID, err)
		}
		if id != inc.ID {
			continue
		}
		rec := store.MirrorIncident{IncidentID: inc.ID, Instance: name, IssueID: inc.MirrorID,
			Closed: wizdef.Closed(inc.Labels["status"]), Version: inc.Version, UpdatedAt: p.o.Now().UTC()}
		err = p.o.Store.Update(func(tx *store.Tx) error {
			have, err := tx.MirrorIncident(p.sink, inc.ID)
			if err != nil {
				return err
			}
			if have != nil {
				rec = *have
				return nil
			}
			return tx.PutMirrorIncident(p.sink, rec)
		})
		if err != nil {
			return nil, fmt.Errorf("write mirror state of incident %s: %w", inc.ID, err)
		}
		return &rec, nil
	}
	return nil, nil
}

// decide builds the change of the Wiz issue that mirrors inc.
func (p *Poller) decide(inc sink.XSOARIncident, rec *store.MirrorIncident) store.MirrorAction {
	token := fmt.Sprintf("%s incident %s v%d]", sink.MirrorNoteMarker, inc.ID, inc.Version)
	a := store.MirrorAction{IncidentID: inc.ID, Instance: rec.Instance, IssueID: rec.IssueID, Token: token,
		Closed: inc.Closed(), Version: inc.Version, Actor: inc.ClosingUser, DecidedAt: p.o.Now().UTC()}
	if !inc.Closed() {
		a.Kind = sink.MirrorReopen
		a.Note = token + " Reopened in Cortex XSOAR."
		return a
	}
	a.Kind = sink.MirrorClose
	a.Reason = p.reasons[strings.TrimSpace(inc.CloseReason)]
	if a.Reason == "" {
		a.Reason = wizdef.ReasonWontFix
	}
	reason := inc.CloseReason
	if reason == "" {
		reason = "no close reason"
	}
	by := ""
	if inc.ClosingUser != "" {
		by = " by " + inc.ClosingUser
	}
	a.Note = fmt.Sprintf("%s Closed in Cortex XSOAR%s (%s).", token, by, reason)
	if p.o.Mirror.Notes && strings.TrimSpace(inc.CloseNotes) != "" {
		a.Note += " " + strings.TrimSpace(inc.CloseNotes)
	}
	return a
}

// apply sends decision a to Wiz unless Wiz already shows it, and completes it.
func (p *Poller) apply(ctx context.Context, a store.MirrorAction) error {
	client := p.o.Clients[a.Instance]
	if client == nil {
		p.log.Warn("dropping a mirror decision of an instance no longer configured", "instance", a.Instance, "incident_id", a.IncidentID)
		p.o.Observe(sink.MirrorToWiz, a.Kind, sink.MirrorRefused, fmt.Errorf("instance %s is not configured", a.Instance))
		return p.settleAction(a, "")
	}
	iss, _, err := client.Issue(ctx, a.IssueID)
	if err != nil {
		return p.failed(ctx, a, "read issue", err)
	}
	done := wizdef.Closed(iss.Status) == a.Closed
	var act writeback.Action
	switch {
	case done && a.Kind == sink.MirrorReopen && p.o.Mirror.Notes && !hasNote(iss, a.Token):
		// Reopened, but a crash came before its note (added after the status change) was sent.
		act = writeback.Action{Kind: writeback.KindNote, IssueID: a.IssueID, Text: a.Note}
	case done:
		p.log.Info("Wiz already shows the XSOAR change", "action", a.Kind, "issue_id", a.IssueID, "incident_id", a.IncidentID, "status", iss.Status)
		return p.settleAction(a, "")
	case a.Kind == sink.MirrorReopen:
		act = writeback.Action{Kind: writeback.KindReopen, IssueID: a.IssueID}
		if p.o.Mirror.Notes {
			act.Note = a.Note
		}
	default:
		act = closeAction(iss, a)
	}
	res, err := writeback.Do(ctx, client, act)
	writeback.Audit(ctx, p.o.Logger, "xsoar-mirror", actorOf(a), a.Instance, act, err)
	if cerr := p.o.Crash("applied"); cerr != nil {
		return cerr
	}
	if err != nil {
		return p.failed(ctx, a, act.Kind, err)
	}
	p.o.Observe(sink.MirrorToWiz, a.Kind, sink.MirrorOK, nil)
	p.log.Info("mirrored to Wiz", "action", act.Kind, "reason", act.Reason, "issue_id", a.IssueID, "incident_id", a.IncidentID, "status", res.Status)
	return p.settleAction(a, res.NoteID)
}

// closeAction is the write-back of an XSOAR close: resolve a THREAT_DETECTION issue, reject any
// other, with the mapped reason where Wiz accepts it for that action, else WONT_FIX.
func closeAction(iss *wiz.Issue, a store.MirrorAction) writeback.Action {
	kind := writeback.KindReject
	if wizdef.Resolvable(iss.Type) {
		kind = writeback.KindResolve
	}
	reason := a.Reason
	if !slices.Contains(writeback.Reasons(kind), reason) {
		reason = wizdef.ReasonWontFix
	}
	return writeback.Action{Kind: kind, IssueID: a.IssueID, Reason: reason, Note: a.Note}
}

func hasNote(iss *wiz.Issue, token string) bool {
	for _, n := range iss.Notes {
		if strings.Contains(n.Text, token) {
			return true
		}
	}
	return false
}

func actorOf(a store.MirrorAction) string {
	if a.Actor == "" {
		return "xsoar"
	}
	return "xsoar:" + a.Actor
}

// failed handles a failed decision: a refusal, or a failure GiveUpAfter after the decision, gives
// it up (logged, counted, the incident's state taken as known); anything else keeps it for the next
// poll.
func (p *Poller) failed(ctx context.Context, a store.MirrorAction, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	a.Attempts++
	if refused := refusedByWiz(err); refused || p.o.Now().Sub(a.DecidedAt) > GiveUpAfter {
		msg := "Wiz refused a mirrored XSOAR change; not retrying it"
		if !refused {
			msg = "giving up a mirrored XSOAR change after " + GiveUpAfter.String() + " of failures"
		}
		p.log.Warn(msg, "action", what, "issue_id", a.IssueID, "incident_id", a.IncidentID, "attempts", a.Attempts, "err", err)
		p.o.Observe(sink.MirrorToWiz, a.Kind, sink.MirrorRefused, err)
		return p.settleAction(a, "")
	}
	p.o.Observe(sink.MirrorToWiz, a.Kind, sink.MirrorError, err)
	if werr := p.o.Store.Update(func(tx *store.Tx) error { return tx.PutMirrorAction(p.sink, a) }); werr != nil {
		return errors.Join(err, fmt.Errorf("write mirror decision for incident %s: %w", a.IncidentID, werr))
	}
	return fmt.Errorf("mirror %s of incident %s to issue %s: %w", a.Kind, a.IncidentID, a.IssueID, err)
}

// refusedByWiz reports whether retrying err cannot help.
func refusedByWiz(err error) bool {
	for _, target := range []error{writeback.ErrInvalid, writeback.ErrNotAllowed, wiz.ErrBadRequest, wiz.ErrNotFound, wiz.ErrPermission} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// settleAction completes decision a: the incident is known in the state that prompted it.
func (p *Poller) settleAction(a store.MirrorAction, noteID string) error {
	return p.settle(a.IncidentID, a.Version, a.Closed, a.Instance, a.IssueID, noteID)
}

// settle records incident id as known closed (or not) at version, clears any decision about it
// and records noteID (a Wiz note wizfetch added, never to be mirrored back), in one transaction.
func (p *Poller) settle(id string, version int64, closed bool, instance, issueID, noteID string) error {
	err := p.o.Store.Update(func(tx *store.Tx) error {
		rec, err := tx.MirrorIncident(p.sink, id)
		if err != nil {
			return err
		}
		if rec == nil {
			rec = &store.MirrorIncident{IncidentID: id}
		}
		rec.Instance, rec.IssueID = instance, issueID
		rec.Closed, rec.Version, rec.ByWizfetch, rec.UpdatedAt = closed, max(rec.Version, version), false, p.o.Now().UTC()
		if noteID != "" {
			if err := tx.PutMirroredNote(p.sink, instance, issueID, noteID); err != nil {
				return err
			}
		}
		return tx.CompleteMirrorAction(p.sink, *rec)
	})
	if err != nil {
		return fmt.Errorf("write mirror state of incident %s: %w", id, err)
	}
	return nil
}
