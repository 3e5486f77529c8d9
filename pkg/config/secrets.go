package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// ResolveSecrets reads every *_file and *_env source (top-level wiz, every instance, every sink,
// server) into its Secret field, then checks what run and check need: each tenant's client_id and
// client secret, each xsoar api_key and splunk_hec token, a webhook signing secret in the Standard
// Webhooks form (whsec_ + base64). A file's surrounding whitespace (the trailing newline) is
// trimmed; an empty file or unset variable is an error. Problems come back together as a
// *ValidationError; they name the key and the file or variable, never a value.
//
// A secret with a *_file or *_env is re-read on every call (so it is re-callable, e.g. on the
// config built for a SIGHUP reload); a literal secret is kept. It mutates c: call it on a fresh
// config before sharing it.
func (c *Config) ResolveSecrets() error {
	var v validator
	single := c.singleTenant()
	if single {
		resolveWiz(&v, "wiz", &c.Wiz, true)
		for i := range c.Instances {
			c.Instances[i].Wiz = c.Wiz
		}
	} else {
		for i := range c.Instances {
			resolveWiz(&v, fmt.Sprintf("instances[%d].wiz", i), &c.Instances[i].Wiz, false)
		}
	}

	for i := range c.Sinks {
		s := &c.Sinks[i]
		p := fmt.Sprintf("sinks[%d]", i)
		resolve(&v, p, "api_key", &s.APIKey, s.APIKeyFile, s.APIKeyEnv)
		resolve(&v, p, "secret", &s.Secret, s.SecretFile, s.SecretEnv)
		resolve(&v, p, "bearer_token", &s.BearerToken, s.BearerTokenFile, s.BearerTokenEnv)
		resolve(&v, p, "token", &s.Token, s.TokenFile, s.TokenEnv)
		switch s.Type {
		case SinkXSOAR:
			if s.APIKey == "" && s.APIKeyFile == "" && s.APIKeyEnv == "" {
				v.add(p+".api_key", "not set (set api_key, api_key_file or api_key_env)")
			}
		case SinkSplunkHEC:
			if s.Token == "" && s.TokenFile == "" && s.TokenEnv == "" {
				v.add(p+".token", "not set (set token, token_file or token_env)")
			}
		case SinkWebhook:
			if s.Secret != "" && !isStandardWebhookSecret(s.Secret.Reveal()) {
				v.add(p+".secret", "must be whsec_ followed by a base64 key (Standard Webhooks)")
			}
		}
	}

	if c.Store.Backend == StoreEtcd {
		resolve(&v, "store.etcd", "password", &c.Store.Etcd.Password, c.Store.Etcd.PasswordFile, "")
	}
	resolve(&v, "server", "auth_token", &c.Server.AuthToken, c.Server.AuthTokenFile, "")
	resolve(&v, "server.webhook", "bearer_token", &c.Server.Webhook.BearerToken, c.Server.Webhook.BearerTokenFile, "")
	resolve(&v, "server.webhook.basic", "password", &c.Server.Webhook.Basic.Password, c.Server.Webhook.Basic.PasswordFile, "")
	resolveMCP(&v, &c.MCP, c.Server.AuthToken)

	if len(v.problems) > 0 {
		return newValidationError(v.problems)
	}
	return nil
}

// resolveWiz resolves one tenant's client secret and requires its credentials. top selects the
// hints of the top-level section, whose values may come from WIZFETCH_* variables.
func resolveWiz(v *validator, p string, w *Wiz, top bool) {
	resolve(v, p, "client_secret", &w.ClientSecret, w.ClientSecretFile, w.ClientSecretEnv)
	if strings.TrimSpace(w.ClientID) == "" {
		hint := "set client_id"
		if top {
			hint = "set client_id or " + EnvName("wiz.client_id")
		}
		v.add(p+".client_id", "not set (%s)", hint)
	}
	if w.ClientSecret == "" && w.ClientSecretFile == "" && w.ClientSecretEnv == "" {
		hint := "set client_secret, client_secret_file or client_secret_env"
		if top {
			hint = "set client_secret, client_secret_file or " + EnvName("wiz.client_secret")
		}
		v.add(p+".client_secret", "not set (%s)", hint)
	}
}

// resolve reads one secret from its file or environment variable, if it has one. Errors name the
// key and the path or variable; an *os.PathError names only the path.
func resolve(v *validator, p, name string, dst *Secret, file, env string) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			v.add(p+"."+name+"_file", "%v", err)
			return
		}
		val := strings.TrimSpace(string(b))
		if val == "" {
			v.add(p+"."+name+"_file", "%s is empty", file)
			return
		}
		*dst = Secret(val)
	case env != "":
		val := strings.TrimSpace(os.Getenv(env))
		if val == "" {
			v.add(p+"."+name+"_env", "environment variable %s is not set", env)
			return
		}
		*dst = Secret(val)
	}
}

// isStandardWebhookSecret reports whether s is "whsec_" followed by a non-empty base64 key.
func isStandardWebhookSecret(s string) bool {
	key, ok := strings.CutPrefix(s, "whsec_")
	if !ok || key == "" {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(key)
	return err == nil
}
