// Package redact masks secrets in text that came from elsewhere — an error body, a server's echo of
// a request — before it reaches a log, an error, the status page or a dead letter. A server can echo
// a secret in any encoding the request carried it in, so a Redactor masks each secret in every form
// wizfetch ever sends one: raw, URL-encoded (form bodies, query strings), JSON-escaped, and base64
// (HTTP Basic credentials, in standard and URL alphabets, padded or not, and inside a longer base64
// run). Callers mask first and truncate afterwards, so no prefix of a secret survives a cut.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// Mask is what a secret is replaced with.
const Mask = "***"

// minLen is the shortest secret masked in its derived forms: masking the encodings of a 1- or
// 2-byte value would garble ordinary text. Such values are still masked raw.
const minLen = 4

// minInner is the shortest base64 fragment masked on its own (a secret inside a longer base64 run):
// shorter fragments would match ordinary words.
const minInner = 8

// Redactor masks a fixed set of secrets. The zero value masks nothing. It is safe for concurrent use.
type Redactor struct {
	forms []string // every form of every secret, longest first
}

// New returns a Redactor for secrets (empty ones are ignored). Basic credentials are covered by
// passing the pair as Basic(user, password) too.
func New(secrets ...string) *Redactor {
	seen := map[string]bool{}
	var forms []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			forms = append(forms, s)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		add(s)
		if len(s) < minLen {
			continue
		}
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		add(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"))
		if b, err := json.Marshal(s); err == nil {
			add(string(b[1 : len(b)-1]))
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			add(enc.EncodeToString([]byte(s)))
			raw := enc.WithPadding(base64.NoPadding)
			add(raw.EncodeToString([]byte(s)))
			// Inside a longer base64 run the secret starts at one of three byte alignments; the
			// characters that depend on its bytes alone are the same at every position.
			for shift := 1; shift <= 2; shift++ {
				pre := make([]byte, shift)
				enc := raw.EncodeToString(append(pre, s...))
				first := (shift*8 + 5) / 6         // the first character without prefix bits
				last := ((shift + len(s)) * 8) / 6 // characters wholly inside the secret
				if last-first >= minInner {
					add(enc[first:last])
				}
			}
			if last := (len(s) * 8) / 6; last >= minInner {
				add(raw.EncodeToString([]byte(s))[:last])
			}
		}
	}
	// Longest first, so that a form containing another is masked whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return &Redactor{forms: forms}
}

// Basic returns the user:password pair an HTTP Basic header encodes, for New: the pair's base64
// differs from the password's own.
func Basic(user, password string) string {
	if password == "" {
		return ""
	}
	return user + ":" + password
}

// URLSecrets returns the secrets a URL carries: its password (and user:password pair) and the value
// of every query parameter, since query strings are where receivers put tokens.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p, Basic(u.User.Username(), p))
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= minLen {
				out = append(out, v)
			}
		}
	}
	return out
}

// String masks every form of every secret in s.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, Mask)
		}
	}
	return s
}

// URL renders a URL for humans: url.URL.Redacted semantics (the password shown as xxxxx), with a
// user name that comes without a password (often a token) shown as xxxxx too, and every query
// value shown as ***. A URL without a scheme ("user:pass@proxy:3128") parses as an opaque URL
// whose user info Redacted does not see: everything before its last "@" is masked instead. An
// unparsable URL is shown as "(invalid URL)".
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); !hasPassword {
			u.User = url.User("xxxxx") // a user name alone is often a token; Redacted's own mark
		}
	}
	if u.Opaque != "" {
		if i := strings.LastIndexByte(u.Opaque, '@'); i >= 0 {
			u.Opaque = "xxxxx" + u.Opaque[i:]
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, _ := strings.Cut(p, "=")
			parts[i] = k + "=" + Mask
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.Redacted()
}
