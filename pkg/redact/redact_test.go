package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

const secret = "s3cr3t+/=&%\"value-0123456789"

func TestEveryEncodingIsMasked(t *testing.T) {
	r := New(secret, Basic("wizfetch", secret))
	jsonEscaped, _ := json.Marshal(secret)
	cases := map[string]string{
		"raw":                 "token " + secret + " rejected",
		"form body":           "client_id=x&client_secret=" + url.QueryEscape(secret) + "&audience=wiz-api",
		"path escape":         "/v1/" + url.PathEscape(secret) + "/x",
		"json":                `{"echo":` + string(jsonEscaped) + `}`,
		"base64 std":          "got " + base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 url raw":      "got " + base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"basic header":        "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("wizfetch:"+secret)),
		"inside base64 run 1": base64.StdEncoding.EncodeToString([]byte("x" + secret + "tail")),
		"inside base64 run 2": base64.StdEncoding.EncodeToString([]byte("xy" + secret + "tail")),
		"inside base64 run 3": base64.StdEncoding.EncodeToString([]byte("xyz" + secret)),
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			out := r.String(text)
			if !strings.Contains(out, Mask) {
				t.Fatalf("nothing masked in %q", out)
			}
			if leaks(out, secret) {
				t.Fatalf("the secret survives in %q", out)
			}
		})
	}
	if got := r.String("nothing secret here"); got != "nothing secret here" {
		t.Fatalf("ordinary text changed: %q", got)
	}
	var zero *Redactor
	if zero.String(secret) != secret {
		t.Fatal("a nil Redactor changed its input")
	}
}

// leaks reports whether out still carries secret: raw, URL-decoded, JSON-unescaped, or base64-decoded
// from any base64 run at any alignment, in either alphabet.
func leaks(out, secret string) bool {
	if strings.Contains(out, secret) {
		return true
	}
	if u, err := url.QueryUnescape(out); err == nil && strings.Contains(u, secret) {
		return true
	}
	var js string
	if json.Unmarshal([]byte(`"`+strings.ReplaceAll(out, "\n", `\n`)+`"`), &js) == nil && strings.Contains(js, secret) {
		return true
	}
	isB64 := func(c rune) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("+/-_", c)
	}
	for _, run := range strings.FieldsFunc(out, func(c rune) bool { return !isB64(c) }) {
		for off := 0; off < 4 && off < len(run); off++ {
			chunk := run[off:]
			chunk = chunk[:len(chunk)/4*4]
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				if b, err := enc.DecodeString(chunk); err == nil && strings.Contains(string(b), secret) {
					return true
				}
			}
		}
	}
	return false
}

func TestURLSecretsAndURL(t *testing.T) {
	raw := "https://user:p%40ssw0rd@hec.example.com:8088/services?token=abcdef123456&x=1"
	got := URLSecrets(raw)
	want := []string{"p@ssw0rd", "user:p@ssw0rd", "abcdef123456"}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Fatalf("URLSecrets(%s) = %q, missing %q", raw, got, w)
		}
	}
	shown := URL(raw)
	for _, s := range []string{"p@ssw0rd", "p%40ssw0rd", "abcdef123456"} {
		if strings.Contains(shown, s) {
			t.Fatalf("URL shows %q: %s", s, shown)
		}
	}
	if !strings.Contains(shown, "hec.example.com:8088/services") || !strings.Contains(shown, "token=***") {
		t.Fatalf("URL lost the host and path, or garbled the mask: %s", shown)
	}
	if got := URL("https://tok3n@hooks.example/x"); got != "https://xxxxx@hooks.example/x" {
		t.Fatalf("URL of a token user name: %s", got)
	}
	if got := URL("user:s3cret@proxy.example:3128"); strings.Contains(got, "s3cret") || !strings.Contains(got, "@proxy.example:3128") {
		t.Fatalf("URL of a schemeless proxy: %s", got)
	}
}

// FuzzRedact: whatever the secret and the text around it, no encoding of the secret that wizfetch
// sends survives masking, and masking before cutting leaves no prefix of it.
func FuzzRedact(f *testing.F) {
	f.Add("s3cr3t-value-123", "before ", " after", uint8(0))
	f.Add("p@ss w+rd/=", "a", "b", uint8(3))
	f.Add("ünïcødé-sécret", "", "", uint8(5))
	f.Fuzz(func(t *testing.T, sec, before, after string, form uint8) {
		if len(sec) < 8 || strings.Contains(before+after, sec) {
			return
		}
		r := New(sec)
		var text string
		switch form % 6 {
		case 0:
			text = before + sec + after
		case 1:
			text = before + url.QueryEscape(sec) + after
		case 2:
			b, _ := json.Marshal(sec)
			text = before + string(b) + after
		case 3:
			text = base64.StdEncoding.EncodeToString([]byte(before + sec + after))
		case 4:
			text = base64.RawURLEncoding.EncodeToString([]byte(before + sec + after))
		case 5:
			text = before + url.PathEscape(sec) + after
		}
		out := r.String(text)
		if strings.Contains(out, sec) {
			t.Fatalf("raw secret survives: %q", out)
		}
		switch form % 6 {
		case 3, 4:
			if leaks(out, sec) {
				t.Fatalf("the secret decodes from %q", out)
			}
		}
	})
}
