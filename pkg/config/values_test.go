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
