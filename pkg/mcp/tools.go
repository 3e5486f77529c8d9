package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/time/rate"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"github.com/wizfetch/wizfetch/pkg/writeback"
)

// MaxResultBytes bounds the JSON of one tool result: an answer an AI client can take in whole. A
// larger one is an error that says how to narrow the request.
const MaxResultBytes = 256 << 10

// issueArgs names one issue, in one instance.
type issueArgs struct {
	IssueID  string `json:"issue_id" jsonschema:"the Wiz issue id, a UUID such as 5c2e3d4b-9b8a-4c1d-8e7f-0a1b2c3d4e5f"`
	Instance string `json:"instance,omitempty" jsonschema:"the Wiz tenant (instance) name; omit when only one is configured"`
}

type statusArgs struct {
	Instance      string `json:"instance,omitempty" jsonschema:"only this Wiz tenant (instance)"`
	OnlyUnhealthy bool   `json:"only_unhealthy,omitempty" jsonschema:"only instances with a failing feed, a backlog or retried Wiz requests"`
}

// tool is one tool's definition and its registration on a server.
type tool struct {
	def *sdk.Tool
	add func(s *sdk.Server, t *sdk.Tool, u *user)
}

func boolPtr(b bool) *bool { return &b }

// addTools registers the tools of u's profile on s; a tool in no profile is never registered.
func (h *Handler) addTools(s *sdk.Server, u *user) {
	all := h.tools()
	for _, name := range u.tools {
		if t, ok := all[name]; ok {
			t.add(s, t.def, u)
		}
	}
}

// reg adapts a typed tool function: it registers it with the SDK (which derives the input schema
// from In and validates arguments against it) and bounds its result.
func reg[In any](fn func(ctx context.Context, u *user, in In) (any, error)) func(*sdk.Server, *sdk.Tool, *user) {
	return func(s *sdk.Server, t *sdk.Tool, u *user) {
		sdk.AddTool(s, t, func(ctx context.Context, _ *sdk.CallToolRequest, in In) (*sdk.CallToolResult, any, error) {
			out, err := fn(ctx, u, in)
			if err != nil {
				return nil, nil, err
			}
			b, err := json.Marshal(out)
			if err != nil {
				report(ctx, ResultError, err)
				return nil, nil, fmt.Errorf("encode result: %w", err)
			}
			if len(b) > MaxResultBytes {
				err := fmt.Errorf("the answer is %d bytes, over the %d an MCP answer may carry: narrow the request (a smaller limit, a filter)", len(b), MaxResultBytes)
				report(ctx, ResultError, err)
				return nil, nil, err
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(b)}}}, json.RawMessage(b), nil
		})
	}
}

// tools defines every tool wizfetch can serve, by name (config.MCPTools).
func (h *Handler) tools() map[string]tool {
	read := &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: boolPtr(false)}
	readWiz := &sdk.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: boolPtr(true)}
	return map[string]tool{
		config.ToolListIncidents: {&sdk.Tool{Name: config.ToolListIncidents, Annotations: read,
			Description: fmt.Sprintf("List the incidents wizfetch holds (Wiz issues it fetched), newest issue creation last within each instance. "+
				"Filters: instance, status (OPEN, IN_PROGRESS, RESOLVED, REJECTED), severity (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL), "+
				"type (TOXIC_COMBINATION, THREAT_DETECTION, CLOUD_CONFIGURATION), since (RFC 3339: updated at or after). "+
				"limit is 1 to %d (default %d). Returns summaries (issue id, status, severity, type, rule name, resource) and "+
				"next, a cursor to pass as after for the following page (empty on the last). Reads wizfetch's store only; no Wiz call.",
				MaxListLimit, DefaultListLimit)},
			reg(h.listIncidents)},
		config.ToolGetIncident: {&sdk.Tool{Name: config.ToolGetIncident, Annotations: read,
			Description: "Show one stored incident by its Wiz issue id: the XSOAR-style incident wizfetch delivered (name, type, " +
				"severity, details, labels, custom fields) with its status and timestamps, without the raw issue (use get_issue). " +
				"Reads wizfetch's store only; no Wiz call."},
			reg(h.getIncident)},
		config.ToolGetIssue: {&sdk.Tool{Name: config.ToolGetIssue, Annotations: readWiz,
			Description: "Read one issue fresh from Wiz by id (the issue JSON as Wiz returns it: status, severity, rule, " +
				"resource, projects, notes, due date). Calls Wiz; counts against your rate limit."},
			reg(h.getIssue)},
		config.ToolIssueContext: {&sdk.Tool{Name: config.ToolIssueContext, Annotations: readWiz,
			Description: "Gather an issue's context from Wiz: the cloud resource behind it (graph entity with properties and " +
				"public exposures), the owners and security champions of each of its projects, and its evidence (threat " +
				"detection details, or the graph entities of its evidence query). Takes several Wiz calls; counts against your rate limit."},
			reg(h.issueContext)},
		config.ToolServiceStatus: {&sdk.Tool{Name: config.ToolServiceStatus, Annotations: read,
			Description: "Report wizfetch's health: per instance its feeds (watermark, lag, last success, last error, backlog) " +
				"and whether the last real Wiz call succeeded; per sink its pending and dead-lettered events and last error. " +
				"With many instances, narrow it with instance or only_unhealthy (instances_total always counts them all). No Wiz call."},
			reg(func(ctx context.Context, _ *user, in statusArgs) (any, error) { return h.serviceStatus(ctx, in) })},
		config.ToolAddNote: {&sdk.Tool{Name: config.ToolAddNote, Annotations: writeAnnotations(false, false),
			Description: fmt.Sprintf("WRITES TO WIZ: add a note to an issue, visible to everyone in Wiz, signed \"— <you> via wizfetch\". "+
				"text is cut to fit %d characters with the signature. Not idempotent: calling twice adds two notes.", wiz.MaxNoteLen)},
			reg(h.addNote)},
		config.ToolResolveIssue: {&sdk.Tool{Name: config.ToolResolveIssue, Annotations: writeAnnotations(true, true),
			Description: "WRITES TO WIZ: set a THREAT_DETECTION issue to RESOLVED (other issue types cannot be resolved: reject them). " +
				"reason is one of " + strings.Join(writeback.Reasons(writeback.KindResolve), ", ") + "; the optional note is stored with " +
				"the change, signed with your name. Closes the issue for everyone."},
			reg(h.resolveIssue)},
		config.ToolRejectIssue: {&sdk.Tool{Name: config.ToolRejectIssue, Annotations: writeAnnotations(true, true),
			Description: "WRITES TO WIZ: set an issue to REJECTED (not a real risk, or accepted). reason is one of " +
				strings.Join(writeback.Reasons(writeback.KindReject), ", ") + " and a note saying why is required; it is stored " +
				"with the change, signed with your name. Closes the issue for everyone."},
			reg(h.rejectIssue)},
		config.ToolReopenIssue: {&sdk.Tool{Name: config.ToolReopenIssue, Annotations: writeAnnotations(true, true),
			Description: "WRITES TO WIZ: set an issue back to OPEN, then add a note (yours, or just your signature) saying who reopened it."},
			reg(h.reopenIssue)},
		config.ToolSetDueDate: {&sdk.Tool{Name: config.ToolSetDueDate, Annotations: writeAnnotations(false, true),
			Description: "WRITES TO WIZ: set an issue's due date (due_date as YYYY-MM-DD, midnight UTC), or remove it with clear: true."},
			reg(h.setDueDate)},
	}
}

func writeAnnotations(destructive, idempotent bool) *sdk.ToolAnnotations {
	return &sdk.ToolAnnotations{DestructiveHint: boolPtr(destructive), IdempotentHint: idempotent, OpenWorldHint: boolPtr(true)}
}

// invalid reports an argument problem found before any Wiz call.
func invalid(ctx context.Context, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	report(ctx, ResultInvalid, err)
	return err
}

// client picks the instance's Wiz client.
func (h *Handler) client(ctx context.Context, instance string) (string, Client, error) {
	name := strings.TrimSpace(instance)
	if name == "" {
		name = h.opt.DefaultInstance
	}
	c, ok := h.opt.Clients[name]
	if !ok {
		return "", nil, invalid(ctx, "unknown instance %q (configured: %s)", clip(name, 64), strings.Join(h.instances(), ", "))
	}
	return name, c, nil
}

func (h *Handler) instances() []string {
	names := make([]string, 0, len(h.opt.Clients))
	for n := range h.opt.Clients {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Wiz requests a tool may make, charged to the user's rate limit before it runs: the limit is on
// the tenant's Wiz budget, not on tool calls.
const (
	costIssue   = 1
	costContext = 3 + wiz.MaxContextProjects // the issue, its resource, its evidence, its projects' teams
)

// allow takes cost tokens (Wiz requests) of u's rate limit, or refuses the call saying when to try
// again.
func (h *Handler) allow(ctx context.Context, u *user, cost int) error {
	r := u.limiter.ReserveN(h.opt.Now(), cost)
	if !r.OK() {
		err := fmt.Errorf("rate limit: this tool needs up to %d Wiz requests, more than the %d at once your limit allows", cost, u.limiter.Burst())
		report(ctx, ResultRateLimited, err)
		return err
	}
	if d := r.DelayFrom(h.opt.Now()); d > 0 {
		r.CancelAt(h.opt.Now())
		err := fmt.Errorf("rate limit: you may make %d Wiz calls at once and one more every %s; try again in %s "+
			"(the tenant's Wiz budget is shared with wizfetch's feeds)", u.limiter.Burst(), every(u.limiter), d.Round(time.Second))
		report(ctx, ResultRateLimited, err)
		return err
	}
	if t := h.total.ReserveN(h.opt.Now(), cost); !t.OK() || t.DelayFrom(h.opt.Now()) > 0 {
		d := t.DelayFrom(h.opt.Now())
		t.CancelAt(h.opt.Now())
		r.CancelAt(h.opt.Now())
		err := fmt.Errorf("rate limit: the MCP users together have used their share of the tenant's Wiz budget "+
			"(the rest is the feeds'); try again in %s", max(d, time.Second).Round(time.Second))
		report(ctx, ResultRateLimited, err)
		return err
	}
	return nil
}

// every renders the interval between two tokens of l.
func every(l *rate.Limiter) string {
	if l.Limit() <= 0 || l.Limit() == rate.Inf {
		return "0s"
	}
	return (time.Duration(float64(time.Second) / float64(l.Limit()))).Round(time.Second).String()
}

// wizFailed classifies a Wiz error for the audit line.
func wizFailed(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, wiz.ErrNotFound):
		report(ctx, ResultNotFound, err)
	case errors.Is(err, writeback.ErrInvalid), errors.Is(err, writeback.ErrNotAllowed), errors.Is(err, wiz.ErrBadRequest):
		report(ctx, ResultInvalid, err)
	default:
		report(ctx, ResultError, err)
	}
	return err
}

// issueCall is what a tool that reads one issue from Wiz does first: check the issue id, pick the
// instance's client and take the user's turn of the rate limit. It returns the instance's name, its
// client and the issue id as Wiz is asked for it.
func (h *Handler) issueCall(ctx context.Context, u *user, in issueArgs, cost int) (string, Client, string, error) {
	if err := writeback.ValidateIssueID(in.IssueID); err != nil {
		return "", nil, "", invalid(ctx, "%s", err.Error())
	}
	name, c, err := h.client(ctx, in.Instance)
	if err != nil {
		return "", nil, "", err
	}
	if err := h.allow(ctx, u, cost); err != nil {
		return "", nil, "", err
	}
	return name, c, strings.ToLower(strings.TrimSpace(in.IssueID)), nil
}

func (h *Handler) getIssue(ctx context.Context, u *user, in issueArgs) (any, error) {
	name, c, id, err := h.issueCall(ctx, u, in, costIssue)
	if err != nil {
		return nil, err
	}
	_, raw, err := c.Issue(ctx, id)
	h.wiz.record(name, h.opt.Now(), err)
	if err != nil {
		return nil, wizFailed(ctx, err)
	}
	return raw, nil
}

func (h *Handler) issueContext(ctx context.Context, u *user, in issueArgs) (any, error) {
	name, c, id, err := h.issueCall(ctx, u, in, costContext)
	if err != nil {
		return nil, err
	}
	ic, err := c.IssueContext(ctx, id)
	if err != nil {
		h.wiz.record(name, h.opt.Now(), err)
		return nil, wizFailed(ctx, err)
	}
	// A lookup that failed leaves the rest of the context useful, so the tool answers; but a
	// failure that is Wiz's or the account's (a missing scope) shows in the audit line and in
	// last_wiz_call as it would had the lookup been the whole call.
	var failed error
	for _, f := range ic.Failures {
		if errors.Is(f, wiz.ErrPermission) || errors.Is(f, wiz.ErrAuth) || errors.Is(f, wiz.ErrTransient) {
			failed = f
			break
		}
	}
	h.wiz.record(name, h.opt.Now(), failed)
	if failed != nil {
		report(ctx, ResultError, fmt.Errorf("partial context: %w", failed))
	}
	return ic, nil
}

// checkEnum validates list against the allowed values (upper-casing them), naming the argument.
func checkEnum(ctx context.Context, arg string, list, allowed []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, v := range list {
		v = strings.ToUpper(strings.TrimSpace(v))
		if !slices.Contains(allowed, v) {
			return nil, invalid(ctx, "%s: %q is not one of %s", arg, clip(v, 32), strings.Join(allowed, ", "))
		}
		out = append(out, v)
	}
	return out, nil
}
