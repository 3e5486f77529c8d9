package sink

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
)

func TestNewTarget(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		typ       string
		mod       func(*config.Sink)
		wantBatch int
		wantType  any
	}{
		{config.SinkJSONL, func(c *config.Sink) { c.Path = filepath.Join(t.TempDir(), "out.jsonl") }, 500, (*JSONL)(nil)},
		{config.SinkXSOAR, func(c *config.Sink) { c.APIKey = "k" }, 50, (*XSOAR)(nil)},
		{config.SinkWebhook, func(c *config.Sink) { c.Secret = testWebhookSecret }, 50, (*Webhook)(nil)},
		{config.SinkSplunkHEC, func(c *config.Sink) { c.Token = "t" }, 100, (*SplunkHEC)(nil)},
		{config.SinkSplunkHEC, func(c *config.Sink) { c.Token, c.Batch = "t", 7 }, 7, (*SplunkHEC)(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			cfg := config.DefaultSink(tc.typ)
			cfg.Name, cfg.URL, cfg.RetryFor = "s1", "https://example.com", config.Duration(time.Hour)
			tc.mod(&cfg)
			tg, err := NewTarget(cfg, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Sink.Close()
			if tg.Batch != tc.wantBatch || tg.RetryFor != time.Hour || tg.Sink.Name() != "s1" {
				t.Errorf("target batch %d retry_for %v name %s, want %d 1h s1", tg.Batch, tg.RetryFor, tg.Sink.Name(), tc.wantBatch)
			}
			switch tc.wantType.(type) {
			case *JSONL:
				_, ok := tg.Sink.(*JSONL)
				checkType(t, ok)
			case *XSOAR:
				_, ok := tg.Sink.(*XSOAR)
				checkType(t, ok)
			case *Webhook:
				_, ok := tg.Sink.(*Webhook)
				checkType(t, ok)
			case *SplunkHEC:
				_, ok := tg.Sink.(*SplunkHEC)
				checkType(t, ok)
			}
		})
	}
}

func checkType(t *testing.T, ok bool) {
	t.Helper()
	if !ok {
		t.Error("wrong sink type")
	}
}

func TestNewErrorsAreNilSinks(t *testing.T) {
	st := openStore(t)
	for _, cfg := range []config.Sink{
		{Name: "pigeon", Type: "carrier-pigeon"},
		{Name: "hookbad", Type: config.SinkWebhook, URL: "https://example.com", Secret: "whsec_%%%"},
		{Name: "xsoarnokey", Type: config.SinkXSOAR, URL: "https://example.com"},
		{Name: "hecnotoken", Type: config.SinkSplunkHEC, URL: "https://example.com"},
		{Name: "filebad", Type: config.SinkJSONL, Path: filepath.Join(t.TempDir(), "f", "\x00")},
	} {
		t.Run(cfg.Name, func(t *testing.T) {
			s, err := New(cfg, st, nil)
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want a nil Sink and an error", s, err)
			}
			if !strings.Contains(err.Error(), cfg.Name) {
				t.Errorf("error %q does not name the sink", err)
			}
		})
	}
}
