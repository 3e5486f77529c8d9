package config_test

import (
	"log/slog"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/sink"
)

// TestWebhookSecretRuleAgreesWithSink holds `config validate` (Validate) and `run` (Validate,
// ResolveSecrets, then the sink factory) to one rule for the webhook sink's signing secret: what
// validate accepts, run accepts too, unless a secret's *value* is wrong (validate checks values
// present in the file but no secret formats, DESIGN.md §5). Before the rule moved into Validate, a
// webhook sink without a secret passed validate and made run exit 2.
func TestWebhookSecretRuleAgreesWithSink(t *testing.T) {
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	t.Setenv("WIZFETCH_TEST_HOOK_SECRET", good)
	tests := []struct {
		name         string
		mutate       func(s *config.Sink)
		wantValidate bool // config validate accepts it
		wantRun      bool // run accepts it: Validate, ResolveSecrets and sink.New all succeed
	}{
		{"no secret", func(*config.Sink) {}, false, false},
		{"bearer token only", func(s *config.Sink) { s.BearerToken = "bearer" }, false, false},
		{"bearer token env only", func(s *config.Sink) { s.BearerTokenEnv = "WIZFETCH_TEST_HOOK_SECRET" }, false, false},
		{"literal secret", func(s *config.Sink) { s.Secret = good }, true, true},
		{"secret from env", func(s *config.Sink) { s.SecretEnv = "WIZFETCH_TEST_HOOK_SECRET" }, true, true},
		{"secret and bearer token", func(s *config.Sink) { s.Secret, s.BearerToken = good, "bearer" }, true, true},
		// A value validate does not read: ResolveSecrets and the sink both refuse it.
		{"secret not whsec_", func(s *config.Sink) { s.Secret = "plain" }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Wiz.APIURL = "https://api.us1.app.wiz.io/graphql"
			cfg.Wiz.ClientID, cfg.Wiz.ClientSecret = "client", "secret"
			s := config.DefaultSink(config.SinkWebhook)
			s.Name, s.URL = "hook", "https://hooks.example.com/in"
			tt.mutate(&s)
			cfg.Sinks = []config.Sink{s}

			validateErr := cfg.Validate()
			if got := validateErr == nil; got != tt.wantValidate {
				t.Fatalf("Validate accepts: %v, want %v (err %v)", got, tt.wantValidate, validateErr)
			}
			resolveErr := cfg.ResolveSecrets()
			_, sinkErr := sink.New(cfg.Sinks[0], nil, slog.New(slog.DiscardHandler))
			if got := validateErr == nil && resolveErr == nil && sinkErr == nil; got != tt.wantRun {
				t.Fatalf("run accepts: %v, want %v (resolve: %v; sink: %v)", got, tt.wantRun, resolveErr, sinkErr)
			}
			// The factory never refuses what validate and ResolveSecrets accepted, nor the reverse.
			if (resolveErr == nil && validateErr == nil) != (sinkErr == nil) {
				t.Errorf("config accepts: %v, sink factory accepts: %v (%v)", resolveErr == nil && validateErr == nil, sinkErr == nil, sinkErr)
			}
		})
	}
}
