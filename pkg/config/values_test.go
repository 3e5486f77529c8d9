package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "7d", want: 7 * day},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "168h", want: 168 * time.Hour},
		{in: "30m", want: 30 * time.Minute},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "0", want: 0},
		{in: "0d", want: 0},
		{in: "-3d", want: -3 * day},
		{in: "+2d", want: 2 * day},
		{in: "-1d1h", want: -25 * time.Hour},
		{in: "365d", want: 365 * day},
		{in: "", wantErr: true},
		{in: "d", wantErr: true},
		{in: "30", wantErr: true},
		{in: "1.5d", wantErr: true},
		{in: "1d2d", wantErr: true},
		{in: "1d-2h", wantErr: true},
		{in: "1w", wantErr: true},
		{in: "seven days", wantErr: true},
		{in: "--3d", wantErr: true},
		{in: "999999999999d", wantErr: true},
		{in: "106751d23h47m16.854775807s", want: time.Duration(1<<63 - 1)},
		{in: "106751d23h47m16.854775808s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{7 * day, "7d"},
		{36 * time.Hour, "1d12h"},
		{2 * time.Minute, "2m"},
		{30 * time.Second, "30s"},
		{90 * time.Second, "1m30s"},
		{time.Hour, "1h"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{500 * time.Millisecond, "500ms"},
		{-3 * day, "-3d"},
		{day + time.Nanosecond, "1d1ns"},
		{time.Duration(-1 << 63), "-106751d23h47m16.854775808s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatDuration(tt.in); got != tt.want {
				t.Fatalf("FormatDuration(%d) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.in == time.Duration(-1<<63) {
				return // the one value whose magnitude does not fit
			}
			back, err := ParseDuration(tt.want)
			if err != nil || back != tt.in {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.want, back, err, tt.in)
			}
		})
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "1d12h", "168h", "30m", "90s", "-3d", "0", "1.5h", "1d0.5s", "+0d", "9223372036s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		text := FormatDuration(d)
		back, err := ParseDuration(text)
		if err != nil || back != d {
			t.Fatalf("%q parsed to %d, formatted %q, parsed back to %d, %v", s, d, text, back, err)
		}
	})
}

func TestDurationEncoding(t *testing.T) {
	type doc struct {
		D Duration `yaml:"d" json:"d"`
	}
	out, err := yaml.Marshal(doc{D: Duration(7 * day)})
	if err != nil || string(out) != "d: 7d\n" {
		t.Fatalf("yaml.Marshal = %q, %v", out, err)
	}
	var back doc
	if err := yaml.Unmarshal([]byte("d: 1d12h\n"), &back); err != nil || back.D.D() != 36*time.Hour {
		t.Fatalf("yaml.Unmarshal = %v, %v", back.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: [1]\n"), &back); err == nil {
		t.Fatal("yaml.Unmarshal of a list into a Duration succeeded")
	}
	js, err := json.Marshal(doc{D: Duration(90 * time.Second)})
	if err != nil || string(js) != `{"d":"1m30s"}` {
		t.Fatalf("json.Marshal = %s, %v", js, err)
	}
	if err := json.Unmarshal([]byte(`{"d":"30m"}`), &back); err != nil || back.D.D() != 30*time.Minute {
		t.Fatalf("json.Unmarshal = %v, %v", back.D, err)
	}
	if got := fmt.Sprint(Duration(5 * time.Minute)); got != "5m" {
		t.Fatalf("fmt.Sprint = %q", got)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const value = "s3cr3t-value"
	type holder struct {
		Token Secret `json:"token" yaml:"token"`
	}
	h := holder{Token: Secret(value)}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "secret", h.Token, "holder", h)
	js, _ := json.Marshal(h)
	ym, _ := yaml.Marshal(h)
	renderings := map[string]string{
		"%v": fmt.Sprintf("%v", h), "%+v": fmt.Sprintf("%+v", h), "%#v": fmt.Sprintf("%#v", h),
		"%s": fmt.Sprintf("%s", h.Token), "%q": fmt.Sprintf("%q", h.Token), "%x": fmt.Sprintf("%x", h.Token),
		"%d": fmt.Sprintf("%d", h.Token), "json": string(js), "yaml": string(ym), "slog": logBuf.String(),
	}
	for name, got := range renderings {
		if strings.Contains(got, value) || !strings.Contains(got, "***") {
			t.Errorf("%s rendering %q: want *** and no secret", name, got)
		}
	}
	if h.Token.Reveal() != value {
		t.Fatalf("Reveal = %q", h.Token.Reveal())
	}
	if Secret("").String() != "" {
		t.Fatal("an empty secret must render empty")
	}
}

func TestAudienceFor(t *testing.T) {
	tests := []struct {
		url      string
		audience string
		known    bool
	}{
		{"https://auth.app.wiz.io/oauth/token", "wiz-api", true},
		{"HTTPS://Auth.App.Wiz.IO/oauth/token/", "wiz-api", true},
		{"auth.app.wiz.io/oauth/token", "wiz-api", true},
		{"https://auth.app.wiz.io:443/oauth/token", "wiz-api", true},
		{"https://auth.app.wiz.io./oauth/token", "wiz-api", true},
		{"https://auth.app.wiz.us/oauth/token", "wiz-api", true},
		{"https://auth.gov.wiz.io/oauth/token", "wiz-api", true},
		{"https://auth.test.wiz.io/oauth/token", "wiz-api", true},
		{"https://auth.demo.wiz.io/oauth/token", "wiz-api", true},
		// The Wiz XSOAR pack's Cognito allow-list is {auth.app, auth.gov, auth.test} × {wiz.io, wiz.us}.
		{"https://auth.gov.wiz.us/oauth/token", "wiz-api", true},
		{"https://auth.test.wiz.us/oauth/token", "wiz-api", true},
		{"https://auth.demo.wiz.us/oauth/token", "", false},
		{"https://auth.wiz.io/oauth/token", "beyond-api", true},
		{"https://auth0.gov.wiz.io/oauth/token", "beyond-api", true},
		{"https://auth0.test.wiz.io/oauth/token", "beyond-api", true},
		{"https://evil-auth.app.wiz.io.example.com/oauth/token", "", false},
		{"http://127.0.0.1:8080/oauth/token", "", false},
		{"", "", false},
		{"::::", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			aud, known := AudienceFor(tt.url)
			if aud != tt.audience || known != tt.known {
				t.Fatalf("AudienceFor(%q) = %q, %v; want %q, %v", tt.url, aud, known, tt.audience, tt.known)
			}
		})
	}
}

func TestDefaultAuthURL(t *testing.T) {
	tests := []struct{ api, want string }{
		{"https://api.us1.app.wiz.io/graphql", DefaultAuthURLCommercial},
		{"https://api.us1.app.wiz.us/graphql", DefaultAuthURLFedRAMP},
		{"API.US1.APP.WIZ.US", DefaultAuthURLFedRAMP},
		{"https://api.eu1.app.wiz.io", DefaultAuthURLCommercial},
		{"https://api.app.wiz.us.example.com", DefaultAuthURLCommercial},
		// Commercial tenants hosted in AWS GovCloud (Sekoia token_refresher.py, Wiz pack get_token).
		{"https://api.usgov1.gov.wiz.io/graphql", DefaultAuthURLGov},
		{"API.USGOV2.GOV.WIZ.IO.", DefaultAuthURLGov},
		{"https://api.gov.wiz.io.example.com", DefaultAuthURLCommercial},
		{"http://127.0.0.1:9000/graphql", DefaultAuthURLCommercial},
		{"", DefaultAuthURLCommercial},
	}
	for _, tt := range tests {
		t.Run(tt.api, func(t *testing.T) {
			if got := DefaultAuthURL(tt.api); got != tt.want {
				t.Fatalf("DefaultAuthURL(%q) = %q, want %q", tt.api, got, tt.want)
			}
		})
	}
}
