package xsoarsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// client posts JSON to a test XSOAR as XSOAR 6 with key.
type client struct {
	t   *testing.T
	url string
	key string
}

func start(t *testing.T, o Options) (*Server, *client) {
	t.Helper()
	s := New(o)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, &client{t: t, url: srv.URL + s.Prefix(), key: o.Key}
}

// post sends body to path and returns the status and the decoded answer.
func (c *client) post(path string, body any, header map[string]string) (int, map[string]any) {
	c.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, c.url+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", c.key)
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func (c *client) create(mirrorID string, investigate bool) string {
	c.t.Helper()
	status, out := c.post("/incident", map[string]any{"name": "n", "dbotMirrorId": mirrorID, "createInvestigation": investigate,
		"customFields": map[string]any{"wizissueid": mirrorID}}, nil)
	if status != http.StatusOK {
		c.t.Fatalf("create: HTTP %d %v", status, out)
	}
	return out["id"].(string)
}

func (c *client) search(filter map[string]any) (int, []any) {
	c.t.Helper()
	status, out := c.post("/incidents/search", map[string]any{"filter": filter}, nil)
	data, _ := out["data"].([]any)
	return status, data
}

func TestXSOARSearchNeedsSize(t *testing.T) {
	s, c := start(t, Options{Key: "k"})
	id := c.create("issue-1", false)
	if _, data := c.search(map[string]any{"id": []string{id}}); len(data) != 0 {
		t.Errorf("a search without size returned %d incidents, want none (XSOAR defaults size to 0)", len(data))
	}
	if _, data := c.search(map[string]any{"id": []string{id}, "size": 0}); len(data) != 0 {
		t.Errorf("a search with size 0 returned %d incidents, want none", len(data))
	}
	if _, data := c.search(map[string]any{"id": []string{id}, "page": 0, "size": 10}); len(data) != 1 {
		t.Errorf("a search with size 10 returned %d incidents, want 1", len(data))
	}
	if st := s.Stats(); st.Searches != 3 || st.SearchesWithoutSize != 2 {
		t.Errorf("stats %+v, want 3 searches, 2 without size", st)
	}
}

func TestXSOARSearchQuery(t *testing.T) {
	_, c := start(t, Options{Key: "k"})
	odd := `a "quoted" \ id`
	for _, m := range []string{"issue-1", "issue-2", odd, "issue-1"} {
		c.create(m, false)
	}
	tests := []struct {
		query   string
		status  int
		wantIDs []string
	}{
		{`dbotMirrorId:"issue-1"`, 200, []string{"1", "4"}},
		{`dbotmirrorid:issue-2`, 200, []string{"2"}},
		{`dbotMirrorId:"a \"quoted\" \\ id"`, 200, []string{"3"}},
		{`wizissueid:"issue-2"`, 200, []string{"2"}},
		{`dbotMirrorId:"issue-1" and name:"n"`, 200, []string{"1", "4"}},
		{`dbotMirrorId:"issue-1" AND name:"other"`, 200, nil},
		{`dbotMirrorId:"nope"`, 200, nil},
		{`dbotMirrorId:"issue-1" or dbotMirrorId:"issue-2"`, 400, nil},
		{`issue-1`, 400, nil},
	}
	for _, tc := range tests {
		status, data := c.search(map[string]any{"query": tc.query, "size": 100})
		var ids []string
		for _, d := range data {
			ids = append(ids, d.(map[string]any)["id"].(string))
		}
		if status != tc.status || strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
			t.Errorf("query %s: HTTP %d ids %v, want HTTP %d ids %v", tc.query, status, ids, tc.status, tc.wantIDs)
		}
	}
	_, data := c.search(map[string]any{"query": `dbotMirrorId:"issue-1"`, "size": 1, "page": 1,
		"sort": []map[string]any{{"field": "created", "asc": false}}})
	if len(data) != 1 || data[0].(map[string]any)["id"] != "1" {
		t.Errorf("page 1 of size 1, newest first: %v, want incident 1", data)
	}
}

func TestXSOARPlaybookAndUpdates(t *testing.T) {
	s, c := start(t, Options{Key: "k", PlaybookEdits: 2})
	quiet := c.create("a", false)
	busy := c.create("b", true)
	if inc, _ := s.Incident(quiet); inc.Version != 1 {
		t.Errorf("incident without investigation at version %d, want 1", inc.Version)
	}
	if inc, _ := s.Incident(busy); inc.Version != 3 {
		t.Errorf("incident with investigation at version %d, want 3 (two playbook edits)", inc.Version)
	}
	if status, out := c.post("/incident", map[string]any{"id": busy, "version": 1, "name": "x"}, nil); status != http.StatusBadRequest ||
		out["id"] != "errOptimisticLock" || !strings.Contains(out["error"].(string), "DB Version '3' and Insert version '1'") {
		t.Errorf("stale update: HTTP %d %v, want 400 errOptimisticLock naming both versions", status, out)
	}
	if inc, _ := s.Incident(busy); inc.Version != 3 || inc.Body["phase"] != nil {
		t.Errorf("incident after a refused update: version %d, body %v; want version 3, unchanged", inc.Version, inc.Body)
	}
	status, out := c.post("/incident", map[string]any{"id": busy, "version": 3, "name": "x", "createInvestigation": true}, nil)
	if status != http.StatusOK || out["version"] != 4.0 {
		t.Errorf("update: HTTP %d %v, want 200 at version 4", status, out)
	}
	if status, _ := c.post("/incident", map[string]any{"id": "99", "version": 1}, nil); status != http.StatusBadRequest {
		t.Errorf("update of a missing incident: HTTP %d, want 400", status)
	}
	st := s.Stats()
	if st.Creates != 2 || st.Updates != 1 || st.Conflicts != 1 || st.UpdatesWithCreateInvestigation != 1 {
		t.Errorf("stats %+v, want 2 creates, 1 update, 1 conflict, 1 update with createInvestigation", st)
	}
	if inc, _ := s.Incident(busy); inc.Body["name"] != "x" {
		t.Errorf("incident body %v, want the update's", inc.Body)
	}
	if err := s.Edit("99", 1); err == nil {
		t.Errorf("Edit of a missing incident succeeded")
	}
}

func TestXSOARAuthAndFailures(t *testing.T) {
	s, c := start(t, Options{Key: "k"})
	c.key = "wrong"
	status, out := c.post("/incident", map[string]any{"name": "n"}, nil)
	if status != http.StatusUnauthorized || !strings.Contains(out["detail"].(string), "wrong") {
		t.Errorf("bad key: HTTP %d %v, want 401 echoing the key", status, out)
	}
	c.key = "k"
	s.FailNext(0, 429)
	if status, _ := c.post("/incident", map[string]any{"name": "n"}, nil); status != http.StatusOK {
		t.Errorf("a 0 in FailNext: HTTP %d, want the request through", status)
	}
	if status, _ := c.post("/incident", map[string]any{"name": "n"}, nil); status != http.StatusTooManyRequests {
		t.Errorf("injected: HTTP %d, want 429", status)
	}
	if n := len(s.Requests()); n != 3 {
		t.Errorf("%d requests recorded, want 3", n)
	}

	adv, ac := start(t, Options{Key: "adv", KeyID: "7", Advanced: true})
	nonce, ts := strings.Repeat("n", 64), "1700000000000"
	sum := sha256.Sum256([]byte("adv" + nonce + ts))
	h := map[string]string{"x-xdr-auth-id": "7", "x-xdr-nonce": nonce, "x-xdr-timestamp": ts}
	ac.key = hex.EncodeToString(sum[:])
	if status, _ := ac.post("/incident", map[string]any{"name": "n"}, h); status != http.StatusOK {
		t.Errorf("advanced key: HTTP %d, want 200", status)
	}
	if status, out := ac.post("/incident", map[string]any{"name": "n"}, h); status != http.StatusUnauthorized || out["detail"] != "nonce reused" {
		t.Errorf("reused nonce: HTTP %d %v, want 401 nonce reused", status, out)
	}
	if n := len(adv.Incidents()); n != 1 {
		t.Errorf("%d incidents, want 1", n)
	}
	if adv.Prefix() != Prefix8 {
		t.Errorf("XSOAR 8 prefix %q", adv.Prefix())
	}
}

// TestXSOARUpdateReplacesTheIncident: an update keeps only what its body carries (the Palo Alto
// Networks answer the package doc quotes), incidents are answered with "CustomFields", and the
// changes of analysts and playbooks show in the answers.
func TestXSOARUpdateReplacesTheIncident(t *testing.T) {
	s, c := start(t, Options{Key: "k", PlaybookEdits: 1})
	id := c.create("a", true)
	if err := s.SetFields(id, map[string]any{"owner": "alice"}, map[string]any{"verdict": "true positive"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(id, "Resolved", "done", "alice"); err != nil {
		t.Fatal(err)
	}
	_, out := c.post("/incidents/search", map[string]any{"filter": map[string]any{"id": []string{id}, "page": 0, "size": 10}}, nil)
	data, _ := out["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("search answered %v", out)
	}
	inc := data[0].(map[string]any)
	custom, _ := inc["CustomFields"].(map[string]any)
	if inc["owner"] != "alice" || inc["phase"] != PlaybookPhase || custom["verdict"] != "true positive" || custom["wizissueid"] != "a" ||
		inc["customFields"] != nil || inc["status"] != 2.0 || inc["version"] != 4.0 {
		t.Fatalf("incident as searched: %v; want owner, phase, CustomFields (not customFields), closed, at version 4", inc)
	}

	// An update that leaves fields out wipes them, close fields and status included.
	status, out := c.post("/incident", map[string]any{"id": id, "version": 4, "name": "renamed"}, nil)
	if status != http.StatusOK || out["owner"] != nil || out["phase"] != nil || out["CustomFields"] != nil ||
		out["status"] != 0.0 || out["closeReason"] != "" || out["closingUserId"] != "" || out["investigationId"] != id {
		t.Errorf("update with a partial body: HTTP %d %v; want only name, id, version, created, modified and the war room left", status, out)
	}
	// The read-modify-write the answer recommends keeps everything.
	inc["version"], inc["name"] = out["version"], "again"
	inc["owner"], inc["status"], inc["closeReason"] = "bob", 2, "Resolved"
	inc["customFields"] = inc["CustomFields"]
	delete(inc, "CustomFields")
	status, out = c.post("/incident", inc, nil)
	custom, _ = out["CustomFields"].(map[string]any)
	if status != http.StatusOK || out["owner"] != "bob" || out["phase"] != PlaybookPhase || custom["verdict"] != "true positive" ||
		out["status"] != 2.0 || out["closeReason"] != "Resolved" || out["name"] != "again" {
		t.Errorf("full update: HTTP %d %v", status, out)
	}

	// A race: the edit lands right after the search answered.
	s.RaceAfterSearch(id, 2)
	_, out = c.post("/incidents/search", map[string]any{"filter": map[string]any{"id": []string{id}, "page": 0, "size": 10}}, nil)
	seen := out["data"].([]any)[0].(map[string]any)["version"]
	if after, _ := s.Incident(id); float64(after.Version) != seen.(float64)+2 {
		t.Errorf("after a raced search: version %d, the search answered %v; want 2 more", after.Version, seen)
	}
	if err := s.SetFields("99", nil, nil); err == nil {
		t.Errorf("SetFields of a missing incident succeeded")
	}
}
