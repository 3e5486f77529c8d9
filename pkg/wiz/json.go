package wiz

import (
	"errors"

	gojson "github.com/goccy/go-json"
)

// Issue pages are decoded with github.com/goccy/go-json rather than encoding/json. Both decode the
// same values, validate the whole input by the same grammar and nesting limit (json.Valid's), and
// treat unknown, repeated and case-folded keys alike (TestDecodeResponseAsStrictAsJSONValid and
// FuzzIssueUnmarshal hold the two together); go-json does it in one pass with fewer reflective steps,
// several times faster on a page of issues, the bulk of what wizfetch decodes (BENCHMARKS.md).
// The request of every page (its long query text, escaped) is encoded by go-json too: it was the
// largest single cost of an idle fetch after the round trip itself (issue 19). Everything else in
// the package uses encoding/json.

// encodeJSON encodes v as encoding/json's Marshal does.
func encodeJSON(v any) ([]byte, error) {
	return gojson.Marshal(v)
}

// decodeJSON decodes data into v as encoding/json's Unmarshal does.
func decodeJSON(data []byte, v any) error {
	return gojson.Unmarshal(data, v)
}

// wrongType reports whether err from decodeJSON is only a value of the wrong Go type: the input was
// valid JSON, and the rest of it was decoded.
func wrongType(err error) bool {
	_, ok := errors.AsType[*gojson.UnmarshalTypeError](err)
	return ok
}
