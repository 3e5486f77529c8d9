package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// mirrorYAML is a valid config whose xsoar sink carries the given mirror block (indented for it).
func mirrorYAML(mirror string) string {
	return `wiz:
  api_url: https://api.us1.app.wiz.io/graphql
  client_id: id
  client_secret: secret
sinks:
  - name: soar
    type: xsoar
    url: https://xsoar.example.com
    api_key: key
` + mirror
}

func TestMirrorBlock(t *testing.T) {
	tests := []struct {
		name   string
		mirror string
		check  func(t *testing.T, m *XSOARMirror)
		want   []string // problem lines; nil: loads
	}{
		{name: "absent is off", check: func(t *testing.T, m *XSOARMirror) {
			if m != nil {
				t.Fatalf("mirror = %+v, want nil", m)
			}
		}},
		{name: "issue example", mirror: `    mirror:
      close_incidents: true
      from_xsoar: true
      notes: true
      interval: 1m
      close_reasons:
        False Positive: FALSE_POSITIVE
        Resolved: ISSUE_FIXED
        Duplicate: WONT_FIX
        Other: WONT_FIX
`, check: func(t *testing.T, m *XSOARMirror) {
			if m == nil || !m.CloseIncidents || !m.FromXSOAR || !m.Notes || m.EffectiveInterval() != time.Minute {
				t.Fatalf("mirror = %+v", m)
			}
			if got := m.EffectiveCloseReasons()["False Positive"]; got != "FALSE_POSITIVE" {
				t.Fatalf("False Positive maps to %q (keys must keep their case and spaces)", got)
			}
		}},
		{name: "defaults and overlay", mirror: `    mirror:
      from_xsoar: true
      close_reasons: {Duplicate: exception, Benign: FALSE_POSITIVE}
`, check: func(t *testing.T, m *XSOARMirror) {
			r := m.EffectiveCloseReasons()
			want := map[string]string{"Duplicate": "EXCEPTION", "Benign": "FALSE_POSITIVE", "Resolved": "ISSUE_FIXED", "Other": "WONT_FIX", "False Positive": "FALSE_POSITIVE"}
			for k, v := range want {
				if r[k] != v {
					t.Errorf("close_reasons[%q] = %q, want %q", k, r[k], v)
				}
			}
			if m.EffectiveInterval() != DefaultMirrorInterval.D() {
				t.Errorf("interval %s, want the default", m.EffectiveInterval())
			}
		}},
		{name: "bad reason and interval", mirror: `    mirror:
      from_xsoar: true
      interval: 2s
      close_reasons: {Other: DETECTION_EXPIRED}
`, want: []string{
			"sinks[0].mirror.interval: 2s is below the minimum of 10s (every poll searches XSOAR)",
			"sinks[0].mirror.close_reasons.Other: \"DETECTION_EXPIRED\" is not a resolution reason Wiz accepts (one of OBJECT_DELETED, ISSUE_FIXED, FALSE_POSITIVE, EXCEPTION, WONT_FIX)",
		}},
		{name: "unknown key", mirror: "    mirror: {close_incident: true}\n",
			want: []string{"sinks[0].mirror.close_incident: unknown key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := LoadBytes([]byte(mirrorYAML(tc.mirror)))
			if tc.want != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want a validation error", err)
				}
				got := strings.Split(strings.TrimSpace(err.Error()), "\n")
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg.Sinks[0].Mirror)
		})
	}
}

func TestMirrorOnlyOnXSOARSinks(t *testing.T) {
	_, _, err := LoadBytes([]byte(`wiz: {api_url: https://api.us1.app.wiz.io/graphql, client_id: id, client_secret: s}
sinks:
  - {name: file, type: jsonl, path: /tmp/x.jsonl, mirror: {notes: true}}
`))
	if err == nil || !strings.Contains(err.Error(), "sinks[0].mirror: does not apply to a jsonl sink") {
		t.Fatalf("err = %v, want the mirror key refused on a jsonl sink", err)
	}
}
