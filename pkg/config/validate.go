package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// ValidationError lists every problem of a config, one line each, "<key>: <reason>", e.g.
// "fetch.max_per_fetch: 500 is above the maximum of 200". No line ever holds a secret.
type ValidationError struct {
	Problems []string
}

// Error joins the problems with newlines.
func (e *ValidationError) Error() string { return strings.Join(e.Problems, "\n") }

// MaxProblems caps the lines of a ValidationError: a file that repeats a mistake through YAML
// aliases could otherwise produce an unreadable wall of lines.
const MaxProblems = 100

// newValidationError returns a ValidationError holding at most MaxProblems lines, the last one
// saying how many were left out.
func newValidationError(problems []string) *ValidationError {
	if len(problems) > MaxProblems {
		more := len(problems) - (MaxProblems - 1)
		problems = append(problems[:MaxProblems-1:MaxProblems-1], fmt.Sprintf("config: %d more problems not shown", more))
	}
	return &ValidationError{Problems: problems}
}

// Limits enforced by Validate.
const (
	// MaxPerFetchLimit is the largest fetch.max_per_fetch (DESIGN.md §2.4).
	MaxPerFetchLimit = 200
	// MaxLookback is the largest fetch.lookback.
	MaxLookback = 365 * day
	// MinInterval is the smallest fetch.interval.
	MinInterval = time.Second
	// MaxBatch is the largest splunk_hec batch.
	MaxBatch = 1000
	// RequestsPerSecondMax is the wiz.requests_per_second above which Validate warns: Wiz throttles
	// around 3 requests per second per service account (WIZ_API.md §2).
	RequestsPerSecondMax = 3
)

// namePattern is what instance and sink names must match: they become store keys, log fields and
// metric labels.
func namePattern() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`) }

func envVarPattern() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) }

// validator collects problems and warnings.
type validator struct {
	problems []string
	warnings []string
	// sources enables the check that each secret has at most one source (literal, *_file, *_env).
	// Load enables it; Validate does not, because after ResolveSecrets a secret read from its
	// *_file is legitimately set twice.
	sources bool
}

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, key+": "+fmt.Sprintf(format, args...))
}

func (v *validator) warn(key, format string, args ...any) {
	v.warnings = append(v.warnings, key+": "+fmt.Sprintf(format, args...))
}

// Validate checks values, not the environment: it checks no secret formats and opens no file or
// directory (ResolveSecrets, called by run and check, does). It returns a *ValidationError naming
// every problem, one line each, or nil; Warnings returns the non-fatal findings.
//
// Tenants: when Instances is empty or is the single "default" instance equal to the top-level
// sections (what Load builds without `instances:`), the top-level wiz, fetch, classify and mapping
// sections are checked under their own keys ("fetch.max_per_fetch"); otherwise each instance is
// checked under "instances[i]." ("instances[1].fetch.max_per_fetch") and the top level, which only
// provides inherited values, is not checked on its own.
//
// wiz.client_id and the client secret are not required here, so a config whose credentials come
// from WIZFETCH_WIZ_CLIENT_ID / WIZFETCH_WIZ_CLIENT_SECRET or a secret file validates on a machine
// without them; ResolveSecrets requires them. Load additionally rejects a secret given by more than
// one source (e.g. client_secret and client_secret_file); Validate skips that one check so that it
// can be called again after ResolveSecrets, which fills a secret from its *_file.
func (c *Config) Validate() error {
	var v validator
	c.validate(&v)
	if len(v.problems) > 0 {
		return newValidationError(v.problems)
	}
	return nil
}

// Warnings returns the non-fatal findings of validation, one line each, e.g.
// "wiz.requests_per_second: 5 is above 3, about the limit Wiz allows per service account; expect throttling".
func (c *Config) Warnings() []string {
	var v validator
	c.validate(&v)
	return v.warnings
}

// tenant is one Wiz tenant to check, with the key prefix of its sections.
type tenant struct {
	prefix string
	inst   *Instance
}

// singleTenant reports whether the config is in its single-tenant form (see Validate).
func (c *Config) singleTenant() bool {
	if len(c.Instances) == 0 {
		return true
	}
	if len(c.Instances) != 1 || c.Instances[0].Name != DefaultInstanceName {
		return false
	}
	i := c.Instances[0]
	return reflect.DeepEqual(i.Wiz, c.Wiz) && reflect.DeepEqual(i.Fetch, c.Fetch) &&
		reflect.DeepEqual(i.Classify, c.Classify) && reflect.DeepEqual(i.Mapping, c.Mapping)
}

func (c *Config) tenants() []tenant {
	if c.singleTenant() {
		top := c.topLevelInstance(DefaultInstanceName)
		return []tenant{{prefix: "", inst: &top}}
	}
	out := make([]tenant, len(c.Instances))
	for i := range c.Instances {
		out[i] = tenant{prefix: fmt.Sprintf("instances[%d].", i), inst: &c.Instances[i]}
	}
	return out
}

func (c *Config) validate(v *validator) {
	if !c.singleTenant() {
		validateInstanceNames(v, c.Instances)
	}
	for _, t := range c.tenants() {
		validateWiz(v, t.prefix+"wiz", t.inst.Wiz)
		validateFetch(v, t.prefix+"fetch", t.inst.Fetch)
		validateClassify(v, t.prefix+"classify", t.inst.Classify)
		validateMapping(v, t.prefix+"mapping", t.inst.Mapping)
	}
	validateStore(v, c.Store)
	validateSinks(v, c.Sinks)
	validateSinksOnEtcd(v, c.Store, c.Sinks)
	validateServer(v, c.Server)
	validateMCP(v, c.MCP)
}

func validateInstanceNames(v *validator, insts []Instance) {
	seen := map[string]int{}
	for i, inst := range insts {
		key := fmt.Sprintf("instances[%d].name", i)
		switch first, dup := seen[inst.Name]; {
		case inst.Name == "":
			v.add(key, "required")
		case !namePattern().MatchString(inst.Name):
			v.add(key, "%q must match [a-z0-9][a-z0-9_-]*", inst.Name)
		case dup:
			v.add(key, "%q is already the name of instances[%d]", inst.Name, first)
		default:
			seen[inst.Name] = i
		}
	}
}

func validateWiz(v *validator, p string, w Wiz) {
	if w.APIURL == "" {
		v.add(p+".api_url", "required")
	} else if reason := checkHTTPSURL(w.APIURL); reason != "" {
		v.add(p+".api_url", "%q %s", w.APIURL, reason)
	}
	if w.AuthURL != "" {
		if reason := checkHTTPSURL(w.AuthURL); reason != "" {
			v.add(p+".auth_url", "%q %s", w.AuthURL, reason)
		} else if _, known := wizdef.AudienceFor(w.AuthURL); !known && w.Audience == "" {
			v.add(p+".audience", "required because %q is not a known Wiz token host", wizdef.HostOf(w.AuthURL))
		}
	}
	validateSecretSources(v, p, "client_secret", w.ClientSecret != "", w.ClientSecretFile, w.ClientSecretEnv)
	switch r := w.RequestsPerSecond; {
	case math.IsNaN(r) || r <= 0:
		v.add(p+".requests_per_second", "%s must be greater than 0", fmtFloat(r))
	case math.IsInf(r, 0):
		v.add(p+".requests_per_second", "%s is not a finite number", fmtFloat(r))
	case r > RequestsPerSecondMax:
		v.warn(p+".requests_per_second", "%s is above %d, about the limit Wiz allows per service account; expect throttling",
			fmtFloat(r), RequestsPerSecondMax)
	}
	positive(v, p+".timeout", w.Timeout)
	if w.Proxy != "" {
		u, err := url.Parse(w.Proxy)
		if err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "socks5", "socks5h"}, u.Scheme) {
			v.add(p+".proxy", "is not a proxy URL (http://, https:// or socks5://host:port)")
		}
	}
}

func validateFetch(v *validator, p string, f Fetch) {
	if d := f.Interval.D(); d < MinInterval {
		v.add(p+".interval", "%s is below the minimum of %s", f.Interval, FormatDuration(MinInterval))
	}
	if d := f.Lookback.D(); d <= 0 {
		v.add(p+".lookback", "%s must be greater than 0", f.Lookback)
	} else if d > MaxLookback {
		v.add(p+".lookback", "%s is above the maximum of %s", f.Lookback, FormatDuration(MaxLookback))
	}
	intRange(v, p+".max_per_fetch", f.MaxPerFetch, 1, MaxPerFetchLimit)
	if f.Overlap.D() < 0 {
		v.add(p+".overlap", "%s must not be negative", f.Overlap)
	}
	enumList(v, p+".status", f.Status, wizdef.Statuses())
	enumList(v, p+".severity", f.Severity, wizdef.Severities())
	enumList(v, p+".type", f.Type, wizdef.IssueTypes())
	nonEmptyList(v, p+".project_ids", f.ProjectIDs)
}

func validateClassify(v *validator, p string, c Classify) {
	if strings.TrimSpace(c.DefaultType) == "" {
		v.add(p+".default_type", "required")
	}
	for i, r := range c.Rules {
		rp := fmt.Sprintf("%s.rules[%d]", p, i)
		if strings.TrimSpace(r.IncidentType) == "" {
			v.add(rp+".incident_type", "required")
		}
		enumList(v, rp+".issue_type", r.IssueType, wizdef.IssueTypes())
		enumList(v, rp+".severity", r.Severity, wizdef.Severities())
		enumList(v, rp+".status", r.Status, wizdef.Statuses())
		enumList(v, rp+".source_rule_type", r.SourceRuleType, wizdef.SourceRuleTypes())
		nonEmptyList(v, rp+".cloud_platform", r.CloudPlatform)
		nonEmptyList(v, rp+".project_ids", r.ProjectIDs)
	}
}

func validateMapping(v *validator, p string, m Mapping) {
	keys := make([]string, 0, len(m.Fields))
	for k := range m.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.TrimSpace(k) == "" {
			v.add(p+".fields", "a cliName is empty")
			continue
		}
		if strings.TrimSpace(m.Fields[k]) == "" {
			v.add(p+".fields."+k, "the path into the issue JSON is empty")
		}
	}
}

func validateStore(v *validator, s Store) {
	positive(v, "store.retention", s.Retention)
	switch s.Backend {
	case StoreBbolt:
		if strings.TrimSpace(s.Path) == "" {
			v.add("store.path", "required")
		}
	case StoreEtcd:
		validateEtcd(v, s.Etcd)
	default:
		v.add("store.backend", "%q is not one of %s, %s", s.Backend, StoreBbolt, StoreEtcd)
	}
}

// validateEtcd checks store.etcd for store.backend: etcd.
func validateEtcd(v *validator, e Etcd) {
	if len(e.Endpoints) == 0 {
		v.add("store.etcd.endpoints", "required with store.backend: etcd (e.g. [https://etcd-0:2379])")
	}
	for i, ep := range e.Endpoints {
		if reason := checkHTTPSURL(ep); reason != "" {
			v.add(fmt.Sprintf("store.etcd.endpoints[%d]", i), "%q %s", ep, reason)
		}
	}
	switch {
	case e.Prefix == "":
		v.add("store.etcd.prefix", "required (e.g. /wizfetch/prod/): everything wizfetch stores lives under it")
	case !strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/"):
		v.add("store.etcd.prefix", "%q must start and end with / (so that one prefix is never a prefix of another)", e.Prefix)
	}
	if e.Password != "" && e.PasswordFile != "" {
		v.add("store.etcd.password", "set password or password_file, not both")
	}
	if (e.Password != "" || e.PasswordFile != "") && e.Username == "" {
		v.add("store.etcd.username", "required with a password")
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		v.add("store.etcd.cert_file", "cert_file and key_file go together (a client certificate and its key)")
	}
	// etcd's leases have a minimum of about 5 s (its election timeout); a TTL much longer than a
	// minute only delays failover.
	if time.Duration(e.LeaseTTL) < 5*time.Second || time.Duration(e.LeaseTTL) > 10*time.Minute {
		v.add("store.etcd.lease_ttl", "%s must be between 5s and 10m", time.Duration(e.LeaseTTL))
	}
}

// validateSinksOnEtcd refuses jsonl sinks with the etcd backend: the leader writes them, and a
// local file cannot follow the leader to another node.
func validateSinksOnEtcd(v *validator, s Store, sinks []Sink) {
	if s.Backend != StoreEtcd {
		return
	}
	for i, sk := range sinks {
		if sk.Type == SinkJSONL {
			v.add(fmt.Sprintf("sinks[%d].type", i), "a jsonl sink cannot be used with store.backend: etcd: "+
				"the file is local to one replica and would not follow the leader to another node (use a webhook, xsoar or splunk_hec sink)")
		}
	}
}

func validateSinks(v *validator, sinks []Sink) {
	if len(sinks) == 0 {
		v.add("sinks", "at least one sink is required")
	}
	seen := map[string]int{}
	for i, s := range sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		switch first, dup := seen[s.Name]; {
		case s.Name == "":
			v.add(p+".name", "required")
		case !namePattern().MatchString(s.Name):
			v.add(p+".name", "%q must match [a-z0-9][a-z0-9_-]*", s.Name)
		case dup:
			v.add(p+".name", "%q is already the name of sinks[%d]", s.Name, first)
		default:
			seen[s.Name] = i
		}
		switch {
		case s.Type == "":
			v.add(p+".type", "required (one of %s)", strings.Join(SinkTypes(), ", "))
		case !slices.Contains(SinkTypes(), s.Type):
			v.add(p+".type", "%q is not one of %s", s.Type, strings.Join(SinkTypes(), ", "))
		case s.Type == SinkJSONL:
			if strings.TrimSpace(s.Path) == "" {
				v.add(p+".path", "required for a jsonl sink")
			}
		default:
			if s.URL == "" {
				v.add(p+".url", "required for a %s sink", s.Type)
			} else if reason := checkHTTPSURL(s.URL); reason != "" {
				v.add(p+".url", "%q %s", s.URL, reason)
			}
			if s.InsecureSkipVerify {
				v.warn(p+".insecure_skip_verify", "TLS certificates of %s are not verified", wizdef.HostOf(s.URL))
			}
		}
		validateSecretSources(v, p, "api_key", s.APIKey != "", s.APIKeyFile, s.APIKeyEnv)
		validateSecretSources(v, p, "secret", s.Secret != "", s.SecretFile, s.SecretEnv)
		validateSecretSources(v, p, "bearer_token", s.BearerToken != "", s.BearerTokenFile, s.BearerTokenEnv)
		validateSecretSources(v, p, "token", s.Token != "", s.TokenFile, s.TokenEnv)
		switch s.Type {
		case SinkXSOAR:
			if s.APIKey == "" && s.APIKeyFile == "" && s.APIKeyEnv == "" {
				v.add(p+".api_key", "required for a xsoar sink (set api_key, api_key_file or api_key_env)")
			}
			if s.AdvancedKey && strings.TrimSpace(s.APIKeyID) == "" {
				v.add(p+".api_key_id", "required when advanced_key is true")
			}
			validateMirror(v, p, s)
		case SinkWebhook:
			// The webhook sink signs every request the Standard Webhooks way (WIZ_API.md §8): it
			// cannot send without the signing key. A Bearer token alone authenticates the sender
			// but not the body, and receivers that verify webhook-signature would refuse it.
			if s.Secret == "" && s.SecretFile == "" && s.SecretEnv == "" {
				v.add(p+".secret", "required for a webhook sink: the Standard Webhooks signing key, whsec_<base64> (set secret, secret_file or secret_env)")
			}
		case SinkSplunkHEC:
			if s.Token == "" && s.TokenFile == "" && s.TokenEnv == "" {
				v.add(p+".token", "required for a splunk_hec sink (set token, token_file or token_env)")
			}
			intRange(v, p+".batch", s.Batch, 1, MaxBatch)
		}
		if s.MaxPending < 1 {
			v.add(p+".max_pending", "%d is below the minimum of 1", s.MaxPending)
		}
		positive(v, p+".retry_for", s.RetryFor)
		positive(v, p+".timeout", s.Timeout)
	}
}

func validateServer(v *validator, s Server) {
	host, port, err := net.SplitHostPort(s.Listen)
	if err != nil {
		v.add("server.listen", "%q is not host:port (e.g. 127.0.0.1:8080)", s.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add("server.listen", "port %q is not a number from 0 to 65535", port)
	} else if !isLoopbackHost(host) && s.AuthToken == "" && s.AuthTokenFile == "" {
		v.add("server.auth_token", "required when server.listen (%s) is not a loopback address", s.Listen)
	}
	validateSecretSources(v, "server", "auth_token", s.AuthToken != "", s.AuthTokenFile, "")
	validateSecretSources(v, "server.webhook", "bearer_token", s.Webhook.BearerToken != "", s.Webhook.BearerTokenFile, "")
	b := s.Webhook.Basic
	validateSecretSources(v, "server.webhook.basic", "password", b.Password != "", b.PasswordFile, "")
	hasPassword := b.Password != "" || b.PasswordFile != ""
	if b.Username != "" && !hasPassword {
		v.add("server.webhook.basic.password", "required when server.webhook.basic.username is set")
	}
	if b.Username == "" && hasPassword {
		v.add("server.webhook.basic.username", "required when a password is set")
	}
}

// validateSecretSources checks that at most one source of a secret is set and that an *_env names
// a plausible variable. It never looks at the secret's value.
func validateSecretSources(v *validator, p, name string, literal bool, file, env string) {
	if env != "" && !envVarPattern().MatchString(env) {
		v.add(p+"."+name+"_env", "%q is not an environment variable name", env)
	}
	if !v.sources {
		return
	}
	var set []string
	if literal {
		set = append(set, name)
	}
	if file != "" {
		set = append(set, name+"_file")
	}
	if env != "" {
		set = append(set, name+"_env")
	}
	if len(set) > 1 {
		v.add(p+"."+name, "set only one of %s", strings.Join(set, ", "))
	}
}

func positive(v *validator, key string, d Duration) {
	if d <= 0 {
		v.add(key, "%s must be greater than 0", d)
	}
}

func intRange(v *validator, key string, n, lo, hi int) {
	if n < lo {
		v.add(key, "%d is below the minimum of %d", n, lo)
	} else if n > hi {
		v.add(key, "%d is above the maximum of %d", n, hi)
	}
}

func enumList(v *validator, key string, vals, allowed []string) {
	for i, s := range vals {
		k := fmt.Sprintf("%s[%d]", key, i)
		switch {
		case !slices.Contains(allowed, s):
			v.add(k, "%q is not one of %s", s, strings.Join(allowed, ", "))
		case slices.Index(vals, s) < i:
			v.add(k, "%q is listed twice", s)
		}
	}
}

func nonEmptyList(v *validator, key string, vals []string) {
	for i, s := range vals {
		if strings.TrimSpace(s) == "" {
			v.add(fmt.Sprintf("%s[%d]", key, i), "must not be empty")
		}
	}
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
