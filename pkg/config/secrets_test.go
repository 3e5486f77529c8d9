package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveSecrets(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	wizFile := writeSecret(t, dir, "wiz", "wiz-secret-from-file\n")
	hookFile := writeSecret(t, dir, "hook", "whsec_c2VjcmV0LWtleQ==\n")
	tokenFile := writeSecret(t, dir, "token", "  api-token-from-file  \n")
	t.Setenv("XSOAR_KEY_VAR", "xsoar-key-from-env")
	t.Setenv("WIZFETCH_WIZ_CLIENT_ID", "client-id-from-env")
	y := fmt.Sprintf(`
wiz: {api_url: "https://api.us1.app.wiz.io", client_secret_file: %q}
sinks:
  - {name: x, type: xsoar, url: "https://x.example.com", api_key_env: XSOAR_KEY_VAR}
  - {name: h, type: webhook, url: "https://h.example.com", secret_file: %q, bearer_token: literal-bearer}
server: {listen: "0.0.0.0:8080", auth_token_file: %q}
`, wizFile, hookFile, tokenFile)
	cfg, _, err := LoadBytes([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ResolveSecrets(); err != nil {
		t.Fatalf("ResolveSecrets: %v", err)
	}
	checks := map[string][2]string{
		"wiz":          {cfg.Wiz.ClientSecret.Reveal(), "wiz-secret-from-file"},
		"instance wiz": {cfg.Instances[0].Wiz.ClientSecret.Reveal(), "wiz-secret-from-file"},
		"client id":    {cfg.Instances[0].Wiz.ClientID, "client-id-from-env"},
		"xsoar":        {cfg.Sinks[0].APIKey.Reveal(), "xsoar-key-from-env"},
		"hook":         {cfg.Sinks[1].Secret.Reveal(), "whsec_c2VjcmV0LWtleQ=="},
		"bearer":       {cfg.Sinks[1].BearerToken.Reveal(), "literal-bearer"},
		"server":       {cfg.Server.AuthToken.Reveal(), "api-token-from-file"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	// Validate still passes on the resolved config, and the instance still mirrors the top level.
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate after ResolveSecrets: %v", err)
	}
	if !cfg.singleTenant() {
		t.Fatal("resolving broke the single-tenant form")
	}
	// Re-callable: a rotated file is re-read, a literal kept.
	writeSecret(t, dir, "wiz", "rotated")
	t.Setenv("XSOAR_KEY_VAR", "rotated-env")
	if err := cfg.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	if cfg.Instances[0].Wiz.ClientSecret.Reveal() != "rotated" || cfg.Sinks[0].APIKey.Reveal() != "rotated-env" ||
		cfg.Sinks[1].BearerToken.Reveal() != "literal-bearer" {
		t.Fatalf("after rotation: %q %q", cfg.Instances[0].Wiz.ClientSecret.Reveal(), cfg.Sinks[0].APIKey.Reveal())
	}
}

func TestResolveSecretsErrors(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	empty := writeSecret(t, dir, "empty", "\n")
	missing := filepath.Join(dir, "missing")
	badHook := writeSecret(t, dir, "hook", "not-a-standard-secret-value")
	y := fmt.Sprintf(`
instances:
  - name: a
    wiz: {api_url: "https://api.us1.app.wiz.io", client_id: id, client_secret_file: %q}
  - name: b
    wiz: {api_url: "https://api.us1.app.wiz.io"}
  - name: c
    wiz: {api_url: "https://api.us1.app.wiz.io", client_id: id, client_secret_env: UNSET_VAR_FOR_TEST}
sinks:
  - {name: h, type: webhook, url: "https://h.example.com", secret_file: %q}
  - {name: s, type: splunk_hec, url: "https://s.example.com", token_file: %q}
server: {auth_token_file: %q}
`, missing, badHook, empty, dir)
	cfg, _, err := LoadBytes([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.ResolveSecrets()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ResolveSecrets = %v", err)
	}
	want := []string{
		"instances[0].wiz.client_secret_file: open " + missing + ": no such file or directory",
		"instances[1].wiz.client_id: not set (set client_id)",
		"instances[1].wiz.client_secret: not set (set client_secret, client_secret_file or client_secret_env)",
		"instances[2].wiz.client_secret_env: environment variable UNSET_VAR_FOR_TEST is not set",
		"sinks[0].secret: must be whsec_ followed by a base64 key (Standard Webhooks)",
		"sinks[1].token_file: " + empty + " is empty",
		"server.auth_token_file: read " + dir + ": is a directory",
	}
	if !slices.Equal(ve.Problems, want) {
		t.Fatalf("problems:\n%s\nwant:\n%s", ve.Error(), strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "not-a-standard-secret-value") {
		t.Fatal("an error leaks a secret")
	}
}

func TestResolveSecretsTopLevelHints(t *testing.T) {
	clearEnv(t)
	cfg, _, err := LoadBytes([]byte("wiz: {api_url: https://api.us1.app.wiz.io}\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.ResolveSecrets()
	want := "wiz.client_id: not set (set client_id or WIZFETCH_WIZ_CLIENT_ID)\n" +
		"wiz.client_secret: not set (set client_secret, client_secret_file or WIZFETCH_WIZ_CLIENT_SECRET)"
	if err == nil || err.Error() != want {
		t.Fatalf("ResolveSecrets = %v\nwant:\n%s", err, want)
	}
}

// TestNoSecretInOutput: `config show`, %+v, JSON and slog of a config holding every kind of secret
// (literal, env, file) show none of them.
func TestNoSecretInOutput(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	secrets := []string{"S-literal-client", "S-env-token", "S-file-bearer", "S-sink-key", "S-basic-pw", "whsec_U0VDUkVU", "S-inst-secret", "S-hec"}
	t.Setenv("WIZFETCH_SERVER_AUTH_TOKEN", secrets[1])
	bearerFile := writeSecret(t, dir, "bearer", secrets[2])
	y := fmt.Sprintf(`
wiz: {api_url: "https://api.us1.app.wiz.io", client_id: id, client_secret: %s}
sinks:
  - {name: x, type: xsoar, url: "https://x.example.com", api_key: %s}
  - {name: h, type: webhook, url: "https://h.example.com", secret: %s}
  - {name: s, type: splunk_hec, url: "https://s.example.com", token: %s}
server:
  listen: 0.0.0.0:8080
  webhook: {bearer_token_file: %q, basic: {username: u, password: %s}}
instances:
  - name: one
  - name: two
    wiz: {client_secret: %s}
`, secrets[0], secrets[3], secrets[5], secrets[7], bearerFile, secrets[4], secrets[6])
	cfg, _, err := LoadBytes([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Webhook.BearerToken.Reveal() != secrets[2] || cfg.Instances[1].Wiz.ClientSecret.Reveal() != secrets[6] {
		t.Fatal("secrets not loaded: the test would prove nothing")
	}
	show, err := cfg.ShowYAML()
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg, "server", cfg.Server)
	outputs := map[string]string{"show": string(show), "json": string(js), "slog": logs.String(),
		"%+v": fmt.Sprintf("%+v", *cfg), "%#v": fmt.Sprintf("%#v", *cfg)}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output contains secret %q", name, s)
			}
		}
	}
	if n := strings.Count(string(show), "'***'"); n < 9 {
		t.Errorf("show has %d redacted secrets, want at least 9:\n%s", n, show)
	}
}
