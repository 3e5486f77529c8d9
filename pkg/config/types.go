// Package config holds wizfetch's typed configuration: the YAML contract of DESIGN.md §5, its defaults,
// loading through viper with WIZFETCH_* environment overrides, and validation that reports every problem.
package config

import "time"

// Config is the whole effective configuration. After Load, Instances always holds at least one
// entry: either the `instances:` list, or a single instance named "default" built from the
// top-level wiz, fetch, classify and mapping sections.
type Config struct {
	Wiz       Wiz        `mapstructure:"wiz" yaml:"wiz"`
	Fetch     Fetch      `mapstructure:"fetch" yaml:"fetch"`
	Classify  Classify   `mapstructure:"classify" yaml:"classify"`
	Mapping   Mapping    `mapstructure:"mapping" yaml:"mapping"`
	Store     Store      `mapstructure:"store" yaml:"store"`
	Sinks     []Sink     `mapstructure:"sinks" yaml:"sinks"`
	Server    Server     `mapstructure:"server" yaml:"server"`
	Instances []Instance `mapstructure:"instances" yaml:"instances"`
	MCP       MCP        `mapstructure:"mcp" yaml:"mcp"`
}

// Instance is one Wiz tenant with its own credentials, feeds, checkpoints and rules.
type Instance struct {
	Name     string   `mapstructure:"name" yaml:"name"`
	Wiz      Wiz      `mapstructure:"wiz" yaml:"wiz"`
	Fetch    Fetch    `mapstructure:"fetch" yaml:"fetch"`
	Classify Classify `mapstructure:"classify" yaml:"classify"`
	Mapping  Mapping  `mapstructure:"mapping" yaml:"mapping"`
}

// Wiz is how to reach one Wiz tenant.
type Wiz struct {
	APIURL            string   `mapstructure:"api_url" yaml:"api_url"`
	AuthURL           string   `mapstructure:"auth_url" yaml:"auth_url"`
	ClientID          string   `mapstructure:"client_id" yaml:"client_id"`
	ClientSecret      Secret   `mapstructure:"client_secret" yaml:"client_secret"`
	ClientSecretFile  string   `mapstructure:"client_secret_file" yaml:"client_secret_file"`
	ClientSecretEnv   string   `mapstructure:"client_secret_env" yaml:"client_secret_env"`
	Audience          string   `mapstructure:"audience" yaml:"audience"`
	RequestsPerSecond float64  `mapstructure:"requests_per_second" yaml:"requests_per_second"`
	Timeout           Duration `mapstructure:"timeout" yaml:"timeout"`
	Proxy             string   `mapstructure:"proxy" yaml:"proxy"`
	CAFile            string   `mapstructure:"ca_file" yaml:"ca_file"`
}

// Fetch is how and what to pull from one tenant.
type Fetch struct {
	Enabled     bool     `mapstructure:"enabled" yaml:"enabled"`
	Interval    Duration `mapstructure:"interval" yaml:"interval"`
	Lookback    Duration `mapstructure:"lookback" yaml:"lookback"`
	MaxPerFetch int      `mapstructure:"max_per_fetch" yaml:"max_per_fetch"`
	Overlap     Duration `mapstructure:"overlap" yaml:"overlap"`
	CatchUp     bool     `mapstructure:"catch_up" yaml:"catch_up"`
	Updates     bool     `mapstructure:"updates" yaml:"updates"`
	Status      []string `mapstructure:"status" yaml:"status"`
	Severity    []string `mapstructure:"severity" yaml:"severity"`
	Type        []string `mapstructure:"type" yaml:"type"`
	ProjectIDs  []string `mapstructure:"project_ids" yaml:"project_ids"`
}

// Classify turns an issue into an incident type: the first matching rule wins, else DefaultType.
type Classify struct {
	DefaultType string         `mapstructure:"default_type" yaml:"default_type"`
	Rules       []ClassifyRule `mapstructure:"rules" yaml:"rules"`
}

// ClassifyRule matches when every non-empty list contains the issue's value (lists are ORs,
// fields are ANDs). An empty rule matches everything.
type ClassifyRule struct {
	IncidentType   string   `mapstructure:"incident_type" yaml:"incident_type"`
	IssueType      []string `mapstructure:"issue_type" yaml:"issue_type,omitempty"`
	Severity       []string `mapstructure:"severity" yaml:"severity,omitempty"`
	Status         []string `mapstructure:"status" yaml:"status,omitempty"`
	SourceRuleType []string `mapstructure:"source_rule_type" yaml:"source_rule_type,omitempty"`
	CloudPlatform  []string `mapstructure:"cloud_platform" yaml:"cloud_platform,omitempty"`
	ProjectIDs     []string `mapstructure:"project_ids" yaml:"project_ids,omitempty"`
}

// Mapping adds or overrides incident customFields: cliName -> gjson path into the issue JSON.
type Mapping struct {
	Fields map[string]string `mapstructure:"fields" yaml:"fields"`
}

// Store is where wizfetch keeps its state: a bbolt file (the default) or, for several replicas with
// one leader, etcd.
type Store struct {
	// Backend is StoreBbolt or StoreEtcd.
	Backend   string   `mapstructure:"backend" yaml:"backend"`
	Path      string   `mapstructure:"path" yaml:"path"`
	Retention Duration `mapstructure:"retention" yaml:"retention"`
	Etcd      Etcd     `mapstructure:"etcd" yaml:"etcd"`
}

// Store backends.
const (
	StoreBbolt = "bbolt"
	StoreEtcd  = "etcd"
)

// Etcd is the etcd cluster of store.backend: etcd. Everything wizfetch stores lives under Prefix;
// the replicas elect their leader under it too, with leases of LeaseTTL.
type Etcd struct {
	Endpoints    []string `mapstructure:"endpoints" yaml:"endpoints"`
	Prefix       string   `mapstructure:"prefix" yaml:"prefix"`
	Username     string   `mapstructure:"username" yaml:"username"`
	Password     Secret   `mapstructure:"password" yaml:"password,omitempty"`
	PasswordFile string   `mapstructure:"password_file" yaml:"password_file"`
	CAFile       string   `mapstructure:"ca_file" yaml:"ca_file"`
	CertFile     string   `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile      string   `mapstructure:"key_file" yaml:"key_file"`
	LeaseTTL     Duration `mapstructure:"lease_ttl" yaml:"lease_ttl"`
}

// Sink is one delivery target. Which keys apply depends on Type (jsonl, xsoar, webhook, splunk_hec).
type Sink struct {
	Name string `mapstructure:"name" yaml:"name"`
	Type string `mapstructure:"type" yaml:"type"`

	// jsonl
	Path string `mapstructure:"path" yaml:"path,omitempty"`

	// xsoar, webhook, splunk_hec
	URL                string `mapstructure:"url" yaml:"url,omitempty"`
	CAFile             string `mapstructure:"ca_file" yaml:"ca_file,omitempty"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify" yaml:"insecure_skip_verify,omitempty"`

	// xsoar
	APIKey               Secret `mapstructure:"api_key" yaml:"api_key,omitempty"`
	APIKeyFile           string `mapstructure:"api_key_file" yaml:"api_key_file,omitempty"`
	APIKeyEnv            string `mapstructure:"api_key_env" yaml:"api_key_env,omitempty"`
	APIKeyID             string `mapstructure:"api_key_id" yaml:"api_key_id,omitempty"`
	AdvancedKey          bool   `mapstructure:"advanced_key" yaml:"advanced_key,omitempty"`
	CreateInvestigation  *bool  `mapstructure:"create_investigation" yaml:"create_investigation,omitempty"`
	IncidentTypeOverride string `mapstructure:"incident_type_override" yaml:"incident_type_override,omitempty"`
	// Mirror is bi-directional issue management (mirror.go); nil: off.
	Mirror *XSOARMirror `mapstructure:"mirror" yaml:"mirror,omitempty"`

	// webhook
	Secret          Secret `mapstructure:"secret" yaml:"secret,omitempty"`
	SecretFile      string `mapstructure:"secret_file" yaml:"secret_file,omitempty"`
	SecretEnv       string `mapstructure:"secret_env" yaml:"secret_env,omitempty"`
	BearerToken     Secret `mapstructure:"bearer_token" yaml:"bearer_token,omitempty"`
	BearerTokenFile string `mapstructure:"bearer_token_file" yaml:"bearer_token_file,omitempty"`
	BearerTokenEnv  string `mapstructure:"bearer_token_env" yaml:"bearer_token_env,omitempty"`

	// splunk_hec
	Token      Secret `mapstructure:"token" yaml:"token,omitempty"`
	TokenFile  string `mapstructure:"token_file" yaml:"token_file,omitempty"`
	TokenEnv   string `mapstructure:"token_env" yaml:"token_env,omitempty"`
	Index      string `mapstructure:"index" yaml:"index,omitempty"`
	Source     string `mapstructure:"source" yaml:"source,omitempty"`
	Sourcetype string `mapstructure:"sourcetype" yaml:"sourcetype,omitempty"`
	Batch      int    `mapstructure:"batch" yaml:"batch,omitempty"`

	// every sink
	MaxPending int      `mapstructure:"max_pending" yaml:"max_pending"`
	RetryFor   Duration `mapstructure:"retry_for" yaml:"retry_for"`
	Timeout    Duration `mapstructure:"timeout" yaml:"timeout"`
}

// Server is the HTTP listener: operator API, metrics, status page and Wiz pushes.
type Server struct {
	Listen        string  `mapstructure:"listen" yaml:"listen"`
	AuthToken     Secret  `mapstructure:"auth_token" yaml:"auth_token"`
	AuthTokenFile string  `mapstructure:"auth_token_file" yaml:"auth_token_file"`
	Webhook       Webhook `mapstructure:"webhook" yaml:"webhook"`
}

// Webhook is the authentication Wiz automation rules use when pushing to /v1/wiz/webhook.
type Webhook struct {
	BearerToken     Secret    `mapstructure:"bearer_token" yaml:"bearer_token"`
	BearerTokenFile string    `mapstructure:"bearer_token_file" yaml:"bearer_token_file"`
	Basic           BasicAuth `mapstructure:"basic" yaml:"basic"`
}

// BasicAuth is a username and password pair.
type BasicAuth struct {
	Username     string `mapstructure:"username" yaml:"username"`
	Password     Secret `mapstructure:"password" yaml:"password"`
	PasswordFile string `mapstructure:"password_file" yaml:"password_file"`
}

// Secret is a string that never prints: String, slog, YAML and JSON all render "***" (or "" when
// empty). Call Reveal to use it.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String renders the secret redacted.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "***"
}

// Duration is a time.Duration that also accepts days ("7d", "1d12h") in config files.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
