package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/wizfetch/wizfetch/pkg/incident"
)

// How the xsoar sink updates an incident: read it, set wizfetch's fields over it, post it back
// (XSOAR's update replaces the whole incident; see the XSOAR type's doc).

// update brings XSOAR's incident ref up to ev by reading it, changing it and posting it back (a
// read-modify-write): XSOAR's update replaces the whole incident, so a body of wizfetch's fields
// alone would wipe what analysts and playbooks set (owner, phase, their custom fields, the close
// fields; see updateBody). current is the incident as a search just answered it, nil to read it
// first. A refused write (a version conflict: an edit between the read and the write; or another
// 400, such as an incident deleted meanwhile) reads it again and retries once; conflicting again,
// it is left to the dispatcher's retry. An incident no longer found is created anew.
func (x *XSOAR) update(ctx context.Context, ev eventLine, ref *xsoarRef, current json.RawMessage) (*xsoarRef, []byte, error) {
	for attempt := 0; ; attempt++ {
		if current == nil {
			var err error
			if current, err = x.readCurrent(ctx, ref.ID); err != nil {
				return nil, nil, fmt.Errorf("read the incident: %w", err)
			}
			if current == nil {
				x.log.Info("XSOAR no longer has the incident; creating it anew", "issue_id", ev.IssueID, "incident_id", ref.ID)
				return x.create(ctx, ev)
			}
		}
		body, err := x.updateBody(ev, ref, current)
		if err != nil {
			return nil, nil, err
		}
		got, answer, err := x.send(ctx, body)
		var he *HTTPError
		if err == nil || !errors.As(err, &he) || he.Status != http.StatusBadRequest && !versionConflict(err) {
			return got, answer, err
		}
		if attempt == 1 {
			if versionConflict(err) {
				return nil, nil, he // conflicting again (a busy incident): not permanent, retry later
			}
			return nil, nil, err
		}
		x.log.Debug("update refused; reading the incident again", "issue_id", ev.IssueID, "incident_id", ref.ID, "status", he.Status)
		current = nil
	}
}

// versionConflict reports whether XSOAR refused an update for a stale version: HTTP 400
// {"id": "errOptimisticLock", …, "error": "DB Version '4' and Insert version '10' do not match …"}
// (a Palo Alto Networks answer on LIVE, message 436126), or a 400 or 409 naming the version.
func versionConflict(err error) bool {
	var he *HTTPError
	if !errors.As(err, &he) || (he.Status != http.StatusBadRequest && he.Status != http.StatusConflict) {
		return false
	}
	body := strings.ToLower(he.body)
	return strings.Contains(body, "erroptimisticlock") || strings.Contains(body, "version")
}

// updateBody renders the update of current (an incident as XSOAR answered a search) to ev's
// incident: current as it is, with every field of ev's incident set over it, "type" replaced by
// incident_type_override when set, and the custom fields merged: current's, then ev's over them.
// The custom fields that are wizfetch's (the built-in ones, and the extra ones the last update sent,
// ref.Extra) but that ev no longer has (the mapper leaves an empty one out: a due date cleared, a
// note removed) are removed, so XSOAR does not keep a stale value. XSOAR answers custom fields under
// "CustomFields" and takes them as "customFields" (xsoarsim's package doc gives the sources), so they
// go back under "customFields" alone. Everything else an analyst or a playbook set (owner, phase,
// status and close fields, their own custom fields) goes back as XSOAR answered it, with the
// version the update must carry; the id goes back as the string ref holds. Values stay the bytes
// XSOAR and the event hold (no float round trip).
func (x *XSOAR) updateBody(ev eventLine, ref *xsoarRef, current json.RawMessage) ([]byte, error) {
	var inc map[string]json.RawMessage
	if err := json.Unmarshal(ev.Incident, &inc); err != nil || inc == nil {
		return nil, Permanent(fmt.Errorf("event %s: incident is not a JSON object", ev.EventID))
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(current, &out); err != nil || out == nil {
		return nil, fmt.Errorf("event %s: XSOAR's incident is not a JSON object", ev.EventID)
	}
	custom := map[string]json.RawMessage{}
	for _, raw := range []json.RawMessage{out["CustomFields"], out["customFields"]} {
		fields, err := jsonObject(raw)
		if err != nil {
			return nil, fmt.Errorf("event %s: XSOAR's custom fields are not a JSON object", ev.EventID)
		}
		maps.Copy(custom, fields)
	}
	ours, err := jsonObject(inc["customFields"])
	if err != nil {
		return nil, Permanent(fmt.Errorf("event %s: customFields is not a JSON object", ev.EventID))
	}
	for _, name := range slices.Concat(incident.BuiltinCustomFields(), strings.Split(ref.Extra, ",")) {
		if _, ok := ours[name]; !ok {
			delete(custom, name)
		}
	}
	maps.Copy(custom, ours)
	delete(out, "CustomFields")
	delete(out, "createInvestigation") // for creation only
	for k, v := range inc {
		out[k] = v
	}
	merged, err := json.Marshal(custom)
	if err != nil {
		return nil, Permanent(fmt.Errorf("event %s: render custom fields: %w", ev.EventID, err))
	}
	out["customFields"] = merged
	out["id"] = json.RawMessage(appendJSONString(nil, ref.ID))
	if x.typeOverride != "" {
		out["type"] = json.RawMessage(appendJSONString(nil, x.typeOverride))
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, Permanent(fmt.Errorf("event %s: render incident: %w", ev.EventID, err))
	}
	return b, nil
}

// jsonObject decodes raw, a JSON object, null or nothing, into its members (nil for null or
// nothing).
func jsonObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// extraCustomFields returns, comma-separated and sorted, the custom fields of ev's incident that are
// not built-in (xsoarRef.Extra).
func extraCustomFields(ev eventLine) (string, error) {
	var inc struct {
		CustomFields map[string]json.RawMessage `json:"customFields"`
	}
	if err := json.Unmarshal(ev.Incident, &inc); err != nil {
		return "", Permanent(fmt.Errorf("event %s: incident is not a JSON object", ev.EventID))
	}
	builtin := incident.BuiltinCustomFields()
	var extra []string
	for name := range inc.CustomFields {
		if !slices.Contains(builtin, name) {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	return strings.Join(extra, ","), nil
}
