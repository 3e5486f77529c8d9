package config

import (
	"errors"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// validBase is a valid single-tenant config built without Load.
func validBase() *Config {
	c := Default()
	c.Wiz.APIURL = "https://api.us1.app.wiz.io/graphql"
	return c
}

// TestValidateRules checks each rule of Validate on its own: the mutation must yield exactly the
// listed problems and warnings (nil: none).
func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
		warn   []string
	}{
		{name: "base is valid", mutate: func(c *Config) {}},
		// wiz
		{"api_url required", func(c *Config) { c.Wiz.APIURL = "" }, []string{"wiz.api_url: required"}, nil},
		{"api_url https", func(c *Config) { c.Wiz.APIURL = "http://api.us1.app.wiz.io/graphql" },
			[]string{`wiz.api_url: "http://api.us1.app.wiz.io/graphql" must use https (http is allowed only for loopback hosts)`}, nil},
		{"api_url http on loopback", func(c *Config) { c.Wiz.APIURL = "http://127.0.0.1:9/graphql" }, nil, nil},
		{"api_url http on localhost", func(c *Config) { c.Wiz.APIURL = "http://localhost:9/graphql" }, nil, nil},
		{"api_url not absolute", func(c *Config) { c.Wiz.APIURL = "api.us1.app.wiz.io" },
			[]string{`wiz.api_url: "api.us1.app.wiz.io" is not an absolute URL (expected https://host/...)`}, nil},
		{"api_url unparsable", func(c *Config) { c.Wiz.APIURL = "https://a b/%zz" },
			[]string{`wiz.api_url: "https://a b/%zz" is not a valid URL`}, nil},
		{"auth_url https", func(c *Config) { c.Wiz.AuthURL = "http://auth.app.wiz.io/oauth/token" },
			[]string{`wiz.auth_url: "http://auth.app.wiz.io/oauth/token" must use https (http is allowed only for loopback hosts)`}, nil},
		{"auth_url unknown host needs audience", func(c *Config) { c.Wiz.AuthURL = "https://sso.example.com/token" },
			[]string{`wiz.audience: required because "sso.example.com" is not a known Wiz token host`}, nil},
		{"auth_url unknown host with audience", func(c *Config) { c.Wiz.AuthURL = "https://sso.example.com/token"; c.Wiz.Audience = "x" }, nil, nil},
		{"auth_url known host any case", func(c *Config) { c.Wiz.AuthURL = "https://AUTH.wiz.io/oauth/token/" }, nil, nil},
		{"rps zero", func(c *Config) { c.Wiz.RequestsPerSecond = 0 }, []string{"wiz.requests_per_second: 0 must be greater than 0"}, nil},
		{"rps negative", func(c *Config) { c.Wiz.RequestsPerSecond = -1 }, []string{"wiz.requests_per_second: -1 must be greater than 0"}, nil},
		{"rps NaN", func(c *Config) { c.Wiz.RequestsPerSecond = math.NaN() }, []string{"wiz.requests_per_second: NaN must be greater than 0"}, nil},
		{"rps Inf", func(c *Config) { c.Wiz.RequestsPerSecond = math.Inf(1) }, []string{"wiz.requests_per_second: +Inf is not a finite number"}, nil},
		{"rps 3 no warning", func(c *Config) { c.Wiz.RequestsPerSecond = 3 }, nil, nil},
		{"rps above 3 warns", func(c *Config) { c.Wiz.RequestsPerSecond = 3.5 }, nil,
			[]string{"wiz.requests_per_second: 3.5 is above 3, about the limit Wiz allows per service account; expect throttling"}},
		{"timeout", func(c *Config) { c.Wiz.Timeout = 0 }, []string{"wiz.timeout: 0s must be greater than 0"}, nil},
		{"proxy", func(c *Config) { c.Wiz.Proxy = "proxy:3128" },
			[]string{"wiz.proxy: is not a proxy URL (http://, https:// or socks5://host:port)"}, nil},
		{"proxy ok", func(c *Config) { c.Wiz.Proxy = "socks5://127.0.0.1:1080" }, nil, nil},
		{"client_secret_env name", func(c *Config) { c.Wiz.ClientSecretEnv = "A-B" },
			[]string{`wiz.client_secret_env: "A-B" is not an environment variable name`}, nil},
		// fetch
		{"interval", func(c *Config) { c.Fetch.Interval = Duration(999 * time.Millisecond) },
			[]string{"fetch.interval: 999ms is below the minimum of 1s"}, nil},
		{"interval 1s ok", func(c *Config) { c.Fetch.Interval = Duration(time.Second) }, nil, nil},
		{"lookback zero", func(c *Config) { c.Fetch.Lookback = 0 }, []string{"fetch.lookback: 0s must be greater than 0"}, nil},
		{"lookback negative", func(c *Config) { c.Fetch.Lookback = Duration(-3 * day) }, []string{"fetch.lookback: -3d must be greater than 0"}, nil},
		{"lookback 365d ok", func(c *Config) { c.Fetch.Lookback = Duration(365 * day) }, nil, nil},
		{"lookback above 365d", func(c *Config) { c.Fetch.Lookback = Duration(365*day + time.Second) },
			[]string{"fetch.lookback: 365d1s is above the maximum of 365d"}, nil},
		{"max_per_fetch 0", func(c *Config) { c.Fetch.MaxPerFetch = 0 }, []string{"fetch.max_per_fetch: 0 is below the minimum of 1"}, nil},
		{"max_per_fetch 500", func(c *Config) { c.Fetch.MaxPerFetch = 500 }, []string{"fetch.max_per_fetch: 500 is above the maximum of 200"}, nil},
		{"max_per_fetch 1 ok", func(c *Config) { c.Fetch.MaxPerFetch = 1 }, nil, nil},
		{"overlap negative", func(c *Config) { c.Fetch.Overlap = Duration(-time.Second) }, []string{"fetch.overlap: -1s must not be negative"}, nil},
		{"overlap zero ok", func(c *Config) { c.Fetch.Overlap = 0 }, nil, nil},
		{"status enum", func(c *Config) { c.Fetch.Status = []string{"OPEN", "IN_PROGRESS", "CLOSED"} },
			[]string{`fetch.status[2]: "CLOSED" is not one of OPEN, IN_PROGRESS, RESOLVED, REJECTED`}, nil},
		{"status empty ok", func(c *Config) { c.Fetch.Status = nil }, nil, nil},
		{"severity enum", func(c *Config) { c.Fetch.Severity = []string{"HIGH", "HIGH", "URGENT"} },
			[]string{`fetch.severity[1]: "HIGH" is listed twice`, `fetch.severity[2]: "URGENT" is not one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL`}, nil},
		{"type enum", func(c *Config) { c.Fetch.Type = []string{"threat_detection"} },
			[]string{`fetch.type[0]: "threat_detection" is not one of TOXIC_COMBINATION, THREAT_DETECTION, CLOUD_CONFIGURATION`}, nil},
		{"project_ids", func(c *Config) { c.Fetch.ProjectIDs = []string{" "} }, []string{"fetch.project_ids[0]: must not be empty"}, nil},
		// classify, mapping
		{"default_type", func(c *Config) { c.Classify.DefaultType = "" }, []string{"classify.default_type: required"}, nil},
		{"rule incident_type", func(c *Config) { c.Classify.Rules = []ClassifyRule{{IncidentType: "Wiz Threat"}, {}} },
			[]string{"classify.rules[1].incident_type: required"}, nil},
		{"rule enums", func(c *Config) {
			c.Classify.Rules = []ClassifyRule{{IncidentType: "Wiz Threat", SourceRuleType: []string{"Rule"}, Status: []string{"open"}}}
		}, []string{`classify.rules[0].status[0]: "open" is not one of OPEN, IN_PROGRESS, RESOLVED, REJECTED`,
			`classify.rules[0].source_rule_type[0]: "Rule" is not one of Control, CloudEventRule, CloudConfigurationRule`}, nil},
		{"mapping path", func(c *Config) { c.Mapping.Fields = map[string]string{"wizb": "", "wiza": "id", "": "x"} },
			[]string{"mapping.fields: a cliName is empty", "mapping.fields.wizb: the path into the issue JSON is empty"}, nil},
		// store
		{"store path", func(c *Config) { c.Store.Path = "" }, []string{"store.path: required"}, nil},
		{"store retention", func(c *Config) { c.Store.Retention = Duration(-day) }, []string{"store.retention: -1d must be greater than 0"}, nil},
		// sinks
		{"no sinks", func(c *Config) { c.Sinks = nil }, []string{"sinks: at least one sink is required"}, nil},
		{"sink name required", func(c *Config) { c.Sinks[0].Name = "" }, []string{"sinks[0].name: required"}, nil},
		{"sink name pattern", func(c *Config) { c.Sinks[0].Name = "-x" }, []string{`sinks[0].name: "-x" must match [a-z0-9][a-z0-9_-]*`}, nil},
		{"sink names unique", func(c *Config) { c.Sinks = append(c.Sinks, c.Sinks[0]) }, []string{`sinks[1].name: "file" is already the name of sinks[0]`}, nil},
		{"sink type unknown", func(c *Config) { c.Sinks[0].Type = "kafka" },
			[]string{`sinks[0].type: "kafka" is not one of jsonl, xsoar, webhook, splunk_hec`}, nil},
		{"jsonl path", func(c *Config) { c.Sinks[0].Path = "" }, []string{"sinks[0].path: required for a jsonl sink"}, nil},
		{"sink url required", func(c *Config) { c.Sinks = []Sink{sinkOf(SinkWebhook, "")} }, []string{"sinks[0].url: required for a webhook sink"}, nil},
		{"sink url https", func(c *Config) { c.Sinks = []Sink{sinkOf(SinkWebhook, "http://10.0.0.1/x")} },
			[]string{`sinks[0].url: "http://10.0.0.1/x" must use https (http is allowed only for loopback hosts)`}, nil},
		{"sink url loopback http", func(c *Config) { c.Sinks = []Sink{sinkOf(SinkWebhook, "http://127.0.0.2:80/x")} }, nil, nil},
		{"xsoar api key", func(c *Config) { s := sinkOf(SinkXSOAR, "https://x"); s.APIKeyEnv = ""; c.Sinks = []Sink{s} },
			[]string{"sinks[0].api_key: required for a xsoar sink (set api_key, api_key_file or api_key_env)"}, nil},
		{"xsoar advanced key id", func(c *Config) { s := sinkOf(SinkXSOAR, "https://x"); s.AdvancedKey = true; c.Sinks = []Sink{s} },
			[]string{"sinks[0].api_key_id: required when advanced_key is true"}, nil},
		{"splunk token", func(c *Config) { s := sinkOf(SinkSplunkHEC, "https://x"); s.TokenEnv = ""; c.Sinks = []Sink{s} },
			[]string{"sinks[0].token: required for a splunk_hec sink (set token, token_file or token_env)"}, nil},
		{"splunk batch", func(c *Config) { s := sinkOf(SinkSplunkHEC, "https://x"); s.Batch = 1001; c.Sinks = []Sink{s} },
			[]string{"sinks[0].batch: 1001 is above the maximum of 1000"}, nil},
		{"max_pending", func(c *Config) { c.Sinks[0].MaxPending = 0 }, []string{"sinks[0].max_pending: 0 is below the minimum of 1"}, nil},
		{"retry_for", func(c *Config) { c.Sinks[0].RetryFor = 0 }, []string{"sinks[0].retry_for: 0s must be greater than 0"}, nil},
		{"sink timeout", func(c *Config) { c.Sinks[0].Timeout = 0 }, []string{"sinks[0].timeout: 0s must be greater than 0"}, nil},
		{"insecure warns", func(c *Config) {
			s := sinkOf(SinkWebhook, "https://h.example.com/x")
			s.InsecureSkipVerify = true
			c.Sinks = []Sink{s}
		},
			nil, []string{"sinks[0].insecure_skip_verify: TLS certificates of h.example.com are not verified"}},
		{"webhook secret format is not checked", func(c *Config) {
			s := sinkOf(SinkWebhook, "https://x")
			s.Secret, s.SecretEnv = "plain", ""
			c.Sinks = []Sink{s}
		}, nil, nil},
		{"webhook secret", func(c *Config) {
			s := sinkOf(SinkWebhook, "https://x")
			s.SecretEnv, s.BearerToken = "", "bearer-only"
			c.Sinks = []Sink{s}
		}, []string{"sinks[0].secret: required for a webhook sink: the Standard Webhooks signing key, whsec_<base64> (set secret, secret_file or secret_env)"}, nil},
		// server
		{"listen host:port", func(c *Config) { c.Server.Listen = "8080" }, []string{`server.listen: "8080" is not host:port (e.g. 127.0.0.1:8080)`}, nil},
		{"listen port", func(c *Config) { c.Server.Listen = "127.0.0.1:99999" }, []string{`server.listen: port "99999" is not a number from 0 to 65535`}, nil},
		{"listen public needs token", func(c *Config) { c.Server.Listen = "0.0.0.0:8080" },
			[]string{"server.auth_token: required when server.listen (0.0.0.0:8080) is not a loopback address"}, nil},
		{"listen all interfaces needs token", func(c *Config) { c.Server.Listen = ":8080" },
			[]string{"server.auth_token: required when server.listen (:8080) is not a loopback address"}, nil},
		{"listen public with token", func(c *Config) { c.Server.Listen = "0.0.0.0:8080"; c.Server.AuthToken = "t" }, nil, nil},
		{"listen public with token file", func(c *Config) { c.Server.Listen = "[::]:8080"; c.Server.AuthTokenFile = "/f" }, nil, nil},
		{"listen localhost", func(c *Config) { c.Server.Listen = "localhost:0" }, nil, nil},
		{"basic needs password", func(c *Config) { c.Server.Webhook.Basic.Username = "u" },
			[]string{"server.webhook.basic.password: required when server.webhook.basic.username is set"}, nil},
		{"basic needs username", func(c *Config) { c.Server.Webhook.Basic.PasswordFile = "/p" },
			[]string{"server.webhook.basic.username: required when a password is set"}, nil},
		// instances
		{"instances checked by index", func(c *Config) {
			a, b := c.topLevelInstance("a"), c.topLevelInstance("a")
			b.Fetch.MaxPerFetch = 0
			c.Instances = []Instance{a, b, c.topLevelInstance(""), c.topLevelInstance("B")}
		}, []string{`instances[1].name: "a" is already the name of instances[0]`, "instances[2].name: required",
			`instances[3].name: "B" must match [a-z0-9][a-z0-9_-]*`, "instances[1].fetch.max_per_fetch: 0 is below the minimum of 1"}, nil},
		{"explicit instances skip the top level", func(c *Config) {
			a := c.topLevelInstance("a")
			c.Wiz.APIURL = ""
			c.Instances = []Instance{a}
		}, nil, nil},
		{"single default instance is the top level", func(c *Config) {
			c.Fetch.MaxPerFetch = 0
			c.Instances = []Instance{c.topLevelInstance(DefaultInstanceName)}
		}, []string{"fetch.max_per_fetch: 0 is below the minimum of 1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validBase()
			tt.mutate(c)
			err := c.Validate()
			var got []string
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Validate = %T %v, want *ValidationError", err, err)
				}
				got = ve.Problems
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if w := c.Warnings(); !slices.Equal(w, tt.warn) {
				t.Fatalf("warnings %q, want %q", w, tt.warn)
			}
		})
	}
}

// sinkOf returns a valid sink of a remote type with the given URL.
func sinkOf(typ, url string) Sink {
	s := DefaultSink(typ)
	s.Name = typ
	s.URL = url
	switch typ {
	case SinkXSOAR:
		s.APIKeyEnv = "XSOAR_KEY"
	case SinkSplunkHEC:
		s.TokenEnv = "HEC_TOKEN"
	case SinkWebhook:
		s.SecretEnv = "HOOK_SECRET"
	}
	return s
}

// TestValidateOpensNothing checks that validation looks at values only: paths that do not exist
// and a non-loopback listener with a token file that does not exist are fine.
func TestValidateOpensNothing(t *testing.T) {
	c := validBase()
	missing := t.TempDir() + "/missing"
	c.Store.Path = missing + "/db"
	c.Wiz.ClientSecretFile = missing
	c.Wiz.CAFile = missing
	c.Server.Listen = "0.0.0.0:1"
	c.Server.AuthTokenFile = missing
	c.Sinks[0].Path = missing + "/x.jsonl"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("validation created %s", missing)
	}
}

// TestSecretSourcesOnlyAtLoad: Load rejects a secret with two sources; Validate does not, so it can
// run again after ResolveSecrets filled a secret from its file.
func TestSecretSourcesOnlyAtLoad(t *testing.T) {
	clearEnv(t)
	y := "wiz: {api_url: https://api.us1.app.wiz.io, client_secret: a, client_secret_file: /f}\n"
	_, _, err := LoadBytes([]byte(y))
	if err == nil || err.Error() != "wiz.client_secret: set only one of client_secret, client_secret_file" {
		t.Fatalf("LoadBytes = %v", err)
	}
	c := validBase()
	c.Wiz.ClientSecret, c.Wiz.ClientSecretFile = "a", "/f"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
}

// TestMessagesNameTheirKey checks a property of every problem Validate can report for a thoroughly
// broken config: one line, "<key>: <reason>".
func TestMessagesNameTheirKey(t *testing.T) {
	c := validBase()
	c.Wiz = Wiz{APIURL: "ftp://x", AuthURL: "https://x.example.com", ClientSecretEnv: "-"}
	c.Fetch = Fetch{Status: []string{"x"}, Severity: []string{"x"}, Type: []string{"x"}, ProjectIDs: []string{""}}
	c.Classify = Classify{Rules: []ClassifyRule{{IssueType: []string{"x"}}}}
	c.Store = Store{}
	c.Sinks = []Sink{{}, {Type: SinkXSOAR, AdvancedKey: true}, {Type: SinkSplunkHEC}}
	c.Server = Server{Listen: "x"}
	var ve *ValidationError
	if !errors.As(c.Validate(), &ve) || len(ve.Problems) < 25 {
		t.Fatalf("expected many problems, got %v", ve)
	}
	line := regexp.MustCompile(`^[a-z0-9_.\[\]]+: [^\n]+$`)
	for _, p := range ve.Problems {
		if !line.MatchString(p) {
			t.Errorf("%q is not <key>: <reason>", p)
		}
	}
}
