package config

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// XSOARMirror is the `mirror:` block of an xsoar sink: bi-directional issue management (issue 20).
// A sink without the block (nil) mirrors nothing.
type XSOARMirror struct {
	// CloseIncidents closes the XSOAR incident when its Wiz issue is RESOLVED or REJECTED, and
	// reopens it when the issue is OPEN or IN_PROGRESS again.
	CloseIncidents bool `mapstructure:"close_incidents" yaml:"close_incidents"`
	// FromXSOAR mirrors analysts' closes and reopens in XSOAR to Wiz (reject/resolve/reopen).
	FromXSOAR bool `mapstructure:"from_xsoar" yaml:"from_xsoar"`
	// Notes turns Wiz notes into war-room entries and XSOAR close notes into Wiz notes.
	Notes bool `mapstructure:"notes" yaml:"notes"`
	// Interval is how often XSOAR is asked what changed (from_xsoar); 0 means DefaultMirrorInterval.
	Interval Duration `mapstructure:"interval" yaml:"interval"`
	// CloseReasons maps an XSOAR close reason to a Wiz resolution reason; keys given here replace
	// the defaults of the same name (DefaultCloseReasons), the other defaults stay.
	CloseReasons map[string]string `mapstructure:"close_reasons" yaml:"close_reasons,omitempty"`
}

// DefaultMirrorInterval is how often XSOAR is polled for changes when mirror.interval is unset.
const DefaultMirrorInterval = Duration(time.Minute)

// MinMirrorInterval is the shortest mirror.interval accepted: each poll costs at least one search.
const MinMirrorInterval = Duration(10 * time.Second)

// DefaultCloseReasons returns XSOAR's stock close reasons mapped to Wiz resolution reasons, in a
// fresh map. "Resolved" maps to ISSUE_FIXED, which only a THREAT_DETECTION issue can take (it is
// resolved); any other issue is rejected, and a reason Wiz does not accept for a rejection becomes
// WONT_FIX.
func DefaultCloseReasons() map[string]string {
	return map[string]string{
		"False Positive": wizdef.ReasonFalsePositive,
		"Resolved":       wizdef.ReasonIssueFixed,
		"Duplicate":      wizdef.ReasonWontFix,
		"Other":          wizdef.ReasonWontFix,
	}
}

// EffectiveInterval returns Interval, or DefaultMirrorInterval when it is unset.
func (m *XSOARMirror) EffectiveInterval() time.Duration {
	if m == nil || m.Interval <= 0 {
		return DefaultMirrorInterval.D()
	}
	return m.Interval.D()
}

// EffectiveCloseReasons returns the defaults overlaid with CloseReasons (values upper-cased), in a
// fresh map.
func (m *XSOARMirror) EffectiveCloseReasons() map[string]string {
	out := DefaultCloseReasons()
	if m == nil {
		return out
	}
	for k, v := range m.CloseReasons {
		out[strings.TrimSpace(k)] = strings.ToUpper(strings.TrimSpace(v))
	}
	return out
}

// validateMirror checks the mirror block of sinks[i] (p is "sinks[i]").
func validateMirror(v *validator, p string, s Sink) {
	m := s.Mirror
	if m == nil {
		return
	}
	if s.Type != SinkXSOAR {
		return // the schema check already says the key does not apply
	}
	if m.Interval < 0 {
		v.add(p+".mirror.interval", "%s must not be negative", m.Interval)
	} else if m.Interval > 0 && m.Interval < MinMirrorInterval {
		v.add(p+".mirror.interval", "%s is below the minimum of %s (every poll searches XSOAR)", m.Interval, MinMirrorInterval)
	}
	accepted := wizdef.ResolveReasons() // a superset of the reject reasons
	keys := make([]string, 0, len(m.CloseReasons))
	for k := range m.CloseReasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := p + ".mirror.close_reasons." + k
		if strings.TrimSpace(k) == "" {
			v.add(p+".mirror.close_reasons", "an XSOAR close reason must not be empty")
			continue
		}
		val := strings.ToUpper(strings.TrimSpace(m.CloseReasons[k]))
		if !slices.Contains(accepted, val) {
			v.add(key, "%q is not a resolution reason Wiz accepts (one of %s)", m.CloseReasons[k], strings.Join(accepted, ", "))
		}
	}
	if !m.CloseIncidents && !m.FromXSOAR && !m.Notes {
		v.warn(p+".mirror", "close_incidents, from_xsoar and notes are all false: nothing is mirrored")
	}
}
