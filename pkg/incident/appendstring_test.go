package incident

import (
	"encoding/json"
	"testing"
)

// FuzzAppendString checks the hand-written string quoting against encoding/json byte for byte.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "plain", `{"id":"x","a":[1,2]}`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x1f",
		"caf\u00e9 \u2028 \u2029 \U0001F600", "bad \xff\xfe utf8", "\\\"", "ends with <",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
