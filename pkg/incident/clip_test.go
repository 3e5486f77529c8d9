package incident

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// clipCheck decodes raw and its clipped form and checks what clipJSONStrings promises: valid JSON,
// every long string cut to a prefix of itself plus the marker, short ones untouched.
func clipCheck(t testing.TB, raw []byte, limit int) {
	t.Helper()
	out, n, fits := clipJSONStrings(raw, limit, 1<<30, "id")
	if !fits {
		t.Fatal("no room")
	}
	if !json.Valid(out) {
		t.Fatalf("clipped JSON is invalid:\n%s\nfrom\n%s", out, raw)
	}
	// Numbers stay json.Number: valid JSON such as 1E700 does not fit a float64.
	decode := func(b []byte) any {
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before, after := decode(raw), decode(out)
	clipped := 0
	var walk func(b, a any)
	walk = func(b, a any) {
		switch b := b.(type) {
		case string:
			a := a.(string)
			if a == b {
				return
			}
			clipped++
			i := strings.LastIndex(a, "…[clipped by wizfetch: ")
			if i < 0 || !strings.HasPrefix(b, a[:i]) || !strings.HasSuffix(a, "; full issue: wizfetch issue get id]") {
				t.Fatalf("%q is not a clip of %q", a, b)
			}
		case []any:
			for i := range b {
				walk(b[i], a.([]any)[i])
			}
		case map[string]any:
			am := a.(map[string]any)
			if len(am) != len(b) {
				t.Fatalf("keys %d -> %d", len(b), len(am))
			}
			for k, v := range b {
				av, ok := am[k]
				if !ok { // a clipped key
					continue
				}
				walk(v, av)
			}
		default: // numbers (json.Number), booleans and null: never clipped, so never changed
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%v became %v", b, a)
			}
		}
	}
	walk(before, after)
	if n < clipped {
		t.Fatalf("%d strings clipped, %d counted", clipped, n)
	}
}

func TestClipJSONStrings(t *testing.T) {
	long := strings.Repeat("a", 40)
	for _, raw := range []string{
		`{"a":"` + long + `","b":"short","c":["` + long + `",1,null]}`,
		`{"` + long + `":1}`,
		`"` + strings.Repeat(`\"`, 30) + `"`,                // escapes across the cut
		`"` + strings.Repeat(`\u00e9`, 12) + `"`,            // \u escapes across the cut
		`"` + strings.Repeat(`\ud83d\ude00`, 6) + `"`,       // surrogate pairs across the cut
		`"` + strings.Repeat("é", 25) + `"`,                 // two-byte characters across the cut
		`"` + strings.Repeat("😀", 15) + `"`,                 // four-byte characters
		`{"x":"` + strings.Repeat(`a\\`, 20) + `","y":"z"}`, // a backslash pair before the quote
	} {
		clipCheck(t, []byte(raw), 32)
	}
	// Nothing to clip: the input itself.
	raw := []byte(`{"a":"short"}`)
	if out, n, fits := clipJSONStrings(raw, 32, 100, "id"); n != 0 || !fits || &out[0] != &raw[0] {
		t.Fatalf("n %d fits %v", n, fits)
	}
	// No room: stops.
	if out, _, fits := clipJSONStrings([]byte(`["`+long+`","`+long+`"]`), 32, 40, "id"); fits || out != nil {
		t.Fatalf("fits %v", fits)
	}
}

func FuzzClipJSONStrings(f *testing.F) {
	f.Add([]byte(`{"a":"`+strings.Repeat(`\u00e9x\"`, 20)+`"}`), uint8(17))
	f.Add([]byte(`["😀😀😀😀😀😀","\ud83d\ude00\ud83d\ude00\ud83d\ude00"]`), uint8(9))
	f.Fuzz(func(t *testing.T, raw []byte, limit uint8) {
		if !json.Valid(raw) {
			return
		}
		clipCheck(t, raw, int(limit)+1)
	})
}

func TestClipString(t *testing.T) {
	s := strings.Repeat("é", MaxFieldBytes) // 2 bytes each
	got, ok := clipString(s, "id-1")
	if !ok || !utf8.ValidString(got) || !strings.HasSuffix(got, ClipMarker(len(s), "id-1")) ||
		len(got) != MaxFieldBytes+len(ClipMarker(len(s), "id-1")) {
		t.Fatalf("clipped to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got, ok := clipString("short", "id"); ok || got != "short" {
		t.Fatal("a short string was clipped")
	}
}

// Every string of a mapped incident stays within MaxFieldBytes (plus the marker), whatever the
// issue holds.
func TestMapClipsEveryString(t *testing.T) {
	big := strings.Repeat("<big>", MaxFieldBytes) // 5× the bound
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	issue := &wiz.Issue{
		ID: "id-1", Type: "CLOUD_CONFIGURATION", Status: "OPEN", Severity: "HIGH", CreatedAt: created,
		SourceRule: &wiz.SourceRule{Typename: "Control", Name: big, Description: big, ResolutionRecommendation: big},
		Projects:   []wiz.Project{{ID: "p", Name: big, ProjectOwners: []wiz.Person{{Name: big}}}},
		EntitySnapshot: &wiz.Entity{ID: big, Region: big, Tags: json.RawMessage(`{"k":"` + big + `"}`),
			SubscriptionExternalID: big},
		Notes: []wiz.Note{{Text: big}, {Text: big}},
	}
	raw, err := json.Marshal(issue)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMapper(config.Mapping{Fields: map[string]string{"wiztags": "entitySnapshot.tags", "wizall": "@this"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	bound := MaxFieldBytes + len(ClipMarker(len(raw), issue.ID))
	inc := m.Map(issue, raw, "Wiz Issue")
	b, err := json.Marshal(&inc)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case string:
			if len(v) > bound && path != ".name" && path != ".rawJSON" {
				t.Fatalf("%s: %d bytes", path, len(v))
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		case map[string]any:
			for k, x := range v {
				walk(path+"."+k, x)
			}
		}
	}
	walk("", back)
	if n := len(back["name"].(string)); n > bound+len(" - id-1") {
		t.Fatalf("name: %d bytes", n)
	}
	if inc.Clipped() == 0 || !json.Valid([]byte(inc.RawJSON)) || len(inc.RawJSON) > MaxRawJSONBytes {
		t.Fatalf("clipped %d, rawJSON %d bytes", inc.Clipped(), len(inc.RawJSON))
	}
}

// A node above MaxRawJSONBytes once its strings are clipped gets the stub as rawJSON.
func TestRawJSONStub(t *testing.T) {
	issue := &wiz.Issue{ID: "id-1", Type: "T", Status: "OPEN", Severity: "LOW", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	for i := 0; i < 40000; i++ {
		issue.ServiceTickets = append(issue.ServiceTickets, wiz.Ticket{ExternalID: "t"})
	}
	raw, err := json.Marshal(issue)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) <= MaxRawJSONBytes {
		t.Fatalf("test node of %d bytes is too small", len(raw))
	}
	m, _ := NewMapper(config.Mapping{}, "")
	inc := m.Map(issue, raw, "Wiz Issue")
	var stub map[string]string
	if err := json.Unmarshal([]byte(inc.RawJSON), &stub); err != nil {
		t.Fatal(err)
	}
	if stub["id"] != "id-1" || stub["status"] != "OPEN" || stub["createdAt"] != "2026-01-02T03:04:05.000006Z" ||
		stub["wizfetchClipped"] != ClipMarker(len(raw), "id-1") || inc.Clipped() != 1 {
		t.Fatalf("stub %v, clipped %d", stub, inc.Clipped())
	}
}

// MapJSON keeps the incident within MaxIncidentBytes, with the stub as rawJSON if need be, and
// refuses one that stays larger.
func TestMapJSONBounds(t *testing.T) {
	m, _ := NewMapper(config.Mapping{}, "")
	issue := &wiz.Issue{ID: "id-1", Type: "T", Status: "OPEN", Severity: "LOW", CreatedAt: time.Now()}
	// 60000 labels of ~60 bytes: the incident is over the bound with or without its rawJSON.
	for i := 0; i < 60000; i++ {
		issue.ServiceTickets = append(issue.ServiceTickets, wiz.Ticket{URL: "https://tickets.example.com/" + strings.Repeat("t", 20)})
	}
	raw, _ := json.Marshal(issue)
	out, _, err := m.MapJSON(issue, raw, "Wiz Issue")
	if !errors.Is(err, ErrTooLarge) || out != nil {
		t.Fatalf("err %v, %d bytes", err, len(out))
	}
	// 12000 of them: too large with the rawJSON (escaped, ~1 MiB), fine with the stub.
	issue.ServiceTickets = issue.ServiceTickets[:12000]
	raw, _ = json.Marshal(issue)
	out, clipped, err := m.MapJSON(issue, raw, "Wiz Issue")
	if err != nil || len(out) > MaxIncidentBytes || clipped == 0 || !strings.Contains(string(out), "wizfetchClipped") {
		t.Fatalf("err %v, %d bytes, clipped %d", err, len(out), clipped)
	}
	// A small issue: whole, as json.Marshal encodes Map's incident.
	issue.ServiceTickets = nil
	raw, _ = json.Marshal(issue)
	out, clipped, err = m.MapJSON(issue, raw, "Wiz Issue")
	whole := m.Map(issue, raw, "Wiz Issue")
	want, _ := json.Marshal(&whole)
	if err != nil || clipped != 0 || string(out) != string(want) {
		t.Fatalf("err %v clipped %d:\n%s\n%s", err, clipped, out, want)
	}
}

// A timestamp "as sent" with a fraction of a second thousands of digits long is formatted instead.
func TestOccurredIsBounded(t *testing.T) {
	sent := "2026-01-02T03:04:05." + strings.Repeat("1", 5000) + "Z"
	var created time.Time
	if err := created.UnmarshalJSON([]byte(`"` + sent + `"`)); err != nil {
		t.Skipf("time does not accept it: %v", err)
	}
	m, _ := NewMapper(config.Mapping{}, "")
	raw := []byte(`{"id":"x","createdAt":"` + sent + `"}`)
	inc := m.Map(&wiz.Issue{ID: "x", CreatedAt: created}, raw, "Wiz Issue")
	if inc.Occurred != "2026-01-02T03:04:05.111111Z" {
		t.Fatalf("occurred %q", inc.Occurred)
	}
}
