package incident

import (
	gojson "github.com/goccy/go-json"
)

// Incidents and event lines are marshalled with github.com/goccy/go-json rather than encoding/json:
// it writes the same bytes (HTML-safe escaping, invalid UTF-8 as U+FFFD, U+2028 and U+2029
// escaped, map keys sorted, the same float formatting) several times faster on the long strings an
// incident carries — rawJSON above all (BENCHMARKS.md). The golden files, TestGolden and FuzzMap
// hold every incident and event line to encoding/json's bytes.

// marshalJSON marshals v as encoding/json's Marshal does.
func marshalJSON(v any) ([]byte, error) {
	return gojson.Marshal(v)
}
