package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Format makes every fmt verb (%v, %s, %q, %#v, %x, ...) render the secret redacted, so a Secret
// inside a struct printed with %+v or %#v never leaks.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		_, _ = io.WriteString(f, strconv.Quote(s.String()))
	default:
		_, _ = io.WriteString(f, s.String())
	}
}

// LogValue renders the secret redacted in log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON renders the secret redacted ("***", or "" when empty).
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML renders the secret redacted ("***", or "" when empty).
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText renders the secret redacted ("***", or "" when empty).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String renders the duration in the friendliest form ParseDuration reads back: "7d", "1d12h",
// "5m", "30s", "1h30m", "500ms", "0s".
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// LogValue renders the duration like String in log/slog output.
func (d Duration) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalYAML renders the duration like String.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText renders the duration like String (JSON and other text encoders use it).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses the duration with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a YAML scalar with ParseDuration (a bare 0 is accepted as zero).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a scalar such as 30s, 5m or 7d", n.Line)
	}
	return d.UnmarshalText([]byte(n.Value))
}

const day = 24 * time.Hour

// errDurationSyntax is wrapped by every ParseDuration failure.
var errDurationSyntax = errors.New("not a duration (examples: 90s, 30m, 168h, 7d, 1d12h)")

// ParseDuration parses a Go duration ("90s", "30m", "168h", "1h30m", "500ms") that may start with
// a whole number of days ("7d", "1d12h"). A sign is allowed ("-3d") so that validation, not the
// parser, names the key of a negative value. "0" is zero; any other bare number is an error.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("%q is %w", orig, errDurationSyntax)
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		digits := s[:i]
		if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
			return 0, fmt.Errorf("%q is %w", orig, errDurationSyntax)
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || n > int64(math.MaxInt64/day) {
			return 0, fmt.Errorf("%q is out of range", orig)
		}
		days = time.Duration(n) * day
		s = s[i+1:]
	}
	var rest time.Duration
	if s != "" {
		if s[0] == '-' || s[0] == '+' {
			return 0, fmt.Errorf("%q is %w", orig, errDurationSyntax)
		}
		var err error
		rest, err = time.ParseDuration(s)
		if err != nil {
			// time.ParseDuration reports overflow as an invalid duration too.
			return 0, fmt.Errorf("%q is %w", orig, errDurationSyntax)
		}
	}
	if days > 0 && rest > math.MaxInt64-days {
		return 0, fmt.Errorf("%q is out of range", orig)
	}
	total := days + rest
	if neg {
		total = -total
	}
	return total, nil
}

// FormatDuration renders d in the form ParseDuration reads back, using days when d holds whole
// days: 168h → "7d", 36h → "1d12h", 2m → "2m", 90s → "1m30s", 0 → "0s".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	// math.MinInt64 cannot be negated; work on the unsigned magnitude.
	mag := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		mag = uint64(-(d + 1)) + 1
	}
	days := mag / uint64(day)
	rem := time.Duration(mag % uint64(day))
	if days > 0 {
		b.WriteString(strconv.FormatUint(days, 10))
		b.WriteByte('d')
	}
	if rem > 0 {
		s := rem.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		b.WriteString(s)
	}
	return b.String()
}
