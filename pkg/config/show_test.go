package config

import (
	"strings"
	"testing"
)

// TestShowURL pins how `config show` renders URLs that may carry credentials.
func TestShowURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://user:pa55word@proxy.internal:3128", "http://user:***@proxy.internal:3128"},
		{"socks5://u%40corp:p%3Ass@proxy:1080", "socks5://u%40corp:***@proxy:1080"},
		{"https://tok3n@hooks.example.com/in", "https://***@hooks.example.com/in"},
		{"https://hooks.example.com/in?token=abc123&v=2&flag", "https://hooks.example.com/in?token=***&v=***&flag"},
		{"https://u:p@h.example.com/?t=1#frag", "https://u:***@h.example.com/?t=***#frag"},
		{"https://api.us1.app.wiz.io/graphql", "https://api.us1.app.wiz.io/graphql"},
		{"http://proxy.internal:3128", "http://proxy.internal:3128"},
		{"", ""},
		{"https://u:p@h/%zz", "***"}, // does not parse: shown as a whole secret
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := showURL(tt.in); got != tt.want {
				t.Errorf("showURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// `config show` prints no credential that sits inside a URL: wiz.proxy's password (top level and
// per instance), sink URL user info and query tokens. The config itself is left as it was.
func TestShowYAMLMasksURLCredentials(t *testing.T) {
	secrets := []string{"pr0xyPa55", "hookUs3rTok", "qu3ryT0ken", "instPr0xy"}
	c := validBase()
	c.Wiz.Proxy = "http://alice:pr0xyPa55@proxy.internal:3128"
	c.Instances = []Instance{c.topLevelInstance(DefaultInstanceName)}
	c.Instances[0].Wiz.Proxy = "http://bob:instPr0xy@proxy.internal:3128"
	s := sinkOf(SinkWebhook, "https://hookUs3rTok@hooks.example.com/in?token=qu3ryT0ken")
	c.Sinks = []Sink{s}

	out, err := c.ShowYAML()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, secret := range secrets {
		if strings.Contains(text, secret) {
			t.Errorf("config show prints %q:\n%s", secret, text)
		}
	}
	for _, want := range []string{
		"proxy: http://alice:***@proxy.internal:3128",
		"proxy: http://bob:***@proxy.internal:3128",
		"url: https://***@hooks.example.com/in?token=***",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config show lacks %q:\n%s", want, text)
		}
	}
	if c.Wiz.Proxy != "http://alice:pr0xyPa55@proxy.internal:3128" || c.Sinks[0].URL != s.URL ||
		c.Instances[0].Wiz.Proxy != "http://bob:instPr0xy@proxy.internal:3128" {
		t.Errorf("ShowYAML changed the config: %+v", c)
	}
}
