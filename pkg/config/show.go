package config

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// ShowYAML renders the effective typed config as YAML with the file's snake_case keys: secrets as
// "***" ("" when unset), credentials inside URLs too (showURL: wiz.proxy, the Wiz URLs and sink
// URLs), durations in their friendly form ("7d", "5m"), and the normalised instances list. It is
// what `config show` prints.
func (c *Config) ShowYAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c.shown()); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return buf.Bytes(), nil
}

// shown returns a copy of c whose URLs show no credentials (showURL); c is not changed.
func (c *Config) shown() *Config {
	out := *c
	out.Wiz = c.Wiz.shown()
	out.Instances = slices.Clone(c.Instances)
	for i := range out.Instances {
		out.Instances[i].Wiz = out.Instances[i].Wiz.shown()
	}
	out.Sinks = slices.Clone(c.Sinks)
	for i := range out.Sinks {
		out.Sinks[i].URL = showURL(out.Sinks[i].URL)
	}
	return &out
}

func (w Wiz) shown() Wiz {
	w.APIURL, w.AuthURL, w.Proxy = showURL(w.APIURL), showURL(w.AuthURL), showURL(w.Proxy)
	return w
}

// showURL renders a URL for `config show` with its credentials as "***": the password of its user
// info (a user without a password is shown as "***" too: tokens are passed that way) and the value
// of every query parameter (where receivers put tokens). A URL without either is shown as written;
// one that does not parse (validation rejects it) is shown as "***" if it may hold credentials.
func showURL(raw string) string {
	if !strings.ContainsAny(raw, "@?") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return secretMask
	}
	userinfo := ""
	if u.User != nil {
		userinfo = secretMask + "@"
		if _, ok := u.User.Password(); ok {
			userinfo = url.User(u.User.Username()).String() + ":" + secretMask + "@"
		}
		u.User = nil
	}
	if u.RawQuery != "" {
		var parts []string
		for part := range strings.SplitSeq(u.RawQuery, "&") {
			if k, _, ok := strings.Cut(part, "="); ok {
				part = k + "=" + secretMask
			}
			parts = append(parts, part)
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	s := u.String() // url.URL would escape the secretMask's "*" in user info: it is put back by hand
	if userinfo != "" {
		if i := strings.Index(s, "//"); i >= 0 {
			s = s[:i+2] + userinfo + s[i+2:]
		}
	}
	return s
}

// secretMask is how `config show` renders a secret.
const secretMask = "***"

// Instance returns the instance with the given name (a pointer into c.Instances).
func (c *Config) Instance(name string) (*Instance, bool) {
	for i := range c.Instances {
		if c.Instances[i].Name == name {
			return &c.Instances[i], true
		}
	}
	return nil, false
}
