package push

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const seedDir = "../../testdata/push"

func TestParsePayloadFiles(t *testing.T) {
	tests := []struct {
		file    string
		want    Payload
		wantErr error
	}{
		{file: "default_template.json", want: Payload{
			IssueID: "5c2e3d4b-9b8a-4c1d-8e7f-0a1b2c3d4e5f", Status: "OPEN", Severity: "HIGH", Trigger: "Created",
			RuleName: "Publicly exposed VM with a critical vulnerability",
		}},
		{file: "source_rule.json", want: Payload{
			IssueID: "0f8fad5b-d9cb-469f-a165-70867728950e", Status: "IN_PROGRESS", Severity: "CRITICAL",
			Trigger: "REOPENED", RuleName: "Recon:EC2/PortProbeUnprotectedPort",
		}},
		{file: "legacy.json", want: Payload{
			IssueID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", Status: "RESOLVED", Severity: "LOW",
			Trigger: "UPDATED", RuleName: "Old template rule",
		}},
		{file: "edited_types.json", want: Payload{IssueID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", Trigger: "3"}},
		{file: "no_issue_id.json", wantErr: ErrNoIssueID},
		{file: "bad_uuid.json", wantErr: ErrBadIssueID},
		{file: "not_object.json", wantErr: ErrBadJSON},
		{file: "truncated.json", wantErr: ErrBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(seedDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParsePayload(body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePayload: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParsePayloadInline(t *testing.T) {
	const id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	tests := []struct {
		name    string
		body    string
		wantID  string
		wantErr error
		errText string
	}{
		{name: "issue id wins over top-level id", body: `{"id":"not-it","issue":{"id":"` + id + `"}}`, wantID: id},
		{name: "issueId key", body: `{"issueId":"` + id + `"}`, wantID: id},
		{name: "surrounding spaces", body: "\n {\"id\": \" " + id + " \"} \n", wantID: id},
		{name: "empty body", body: ``, wantErr: ErrBadJSON},
		{name: "null", body: `null`, wantErr: ErrBadJSON, errText: "null"},
		{name: "string", body: `"` + id + `"`, wantErr: ErrBadJSON, errText: "got string"},
		{name: "trailing garbage", body: `{"id":"` + id + `"} x`, wantErr: ErrBadJSON},
		{name: "empty object", body: `{}`, wantErr: ErrNoIssueID},
		{name: "issue not an object", body: `{"issue":"` + id + `"}`, wantErr: ErrNoIssueID},
		{name: "numeric id", body: `{"id": 12345}`, wantErr: ErrBadIssueID},
		{name: "braced uuid", body: `{"id":"{` + id + `}"}`, wantErr: ErrBadIssueID},
		{name: "urn uuid", body: `{"id":"urn:uuid:` + id + `"}`, wantErr: ErrBadIssueID},
		{name: "unhyphenated", body: `{"id":"` + strings.ReplaceAll(id, "-", "") + `"}`, wantErr: ErrBadIssueID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePayload([]byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("err = %q, want it to mention %q", err, tt.errText)
				}
				return
			}
			if err != nil || got.IssueID != tt.wantID {
				t.Fatalf("got %+v, %v; want id %s", got, err, tt.wantID)
			}
		})
	}
}

func FuzzParsePayload(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join(seedDir, "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in %s: %v", seedDir, err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePayload(body)
		if err != nil {
			n := 0
			for _, e := range []error{ErrBadJSON, ErrNoIssueID, ErrBadIssueID} {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q matches %d sentinels, want exactly 1", err, n)
			}
			if p.IssueID != "" {
				t.Fatalf("error %q with an issue id %q", err, p.IssueID)
			}
			return
		}
		if !isUUID(p.IssueID) || p.IssueID != strings.ToLower(p.IssueID) {
			t.Fatalf("accepted issue id %q is not a lower-case UUID", p.IssueID)
		}
	})
}
