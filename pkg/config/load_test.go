package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

var update = flag.Bool("update", false, "rewrite golden files and the expected lines of testdata/config")

const fixtureDir = "../../testdata/config"

// clearEnv blanks every WIZFETCH_* variable of the test process for the test (an empty variable
// counts as unset), so that the machine's environment cannot change a result.
func clearEnv(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, EnvPrefix+"_") {
			t.Setenv(k, "")
		}
	}
}

// readLines reads an expectation file: one line per problem or warning.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if len(lines) == 0 {
		_ = os.Remove(path)
		return
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFixtures loads every testdata/config/NAME.ok.yaml (must load; warnings must equal
// NAME.ok.txt, absent = none) and NAME.bad.yaml (must fail with exactly the lines of NAME.bad.txt).
func TestFixtures(t *testing.T) {
	clearEnv(t)
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			cfg, warnings, err := Load(file)
			switch {
			case strings.HasSuffix(name, ".ok.yaml"):
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if cfg == nil || len(cfg.Instances) == 0 {
					t.Fatalf("Load returned no config or no instances: %+v", cfg)
				}
				want := strings.TrimSuffix(file, ".yaml") + ".txt"
				if *update {
					writeLines(t, want, warnings)
				}
				if exp := readLines(t, want); !slices.Equal(warnings, exp) {
					t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(exp, "\n"))
				}
			case strings.HasSuffix(name, ".bad.yaml"):
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Load = %v, want a *ValidationError", err)
				}
				if cfg != nil {
					t.Fatal("Load returned a config with an error")
				}
				want := strings.TrimSuffix(file, ".yaml") + ".txt"
				if *update {
					writeLines(t, want, ve.Problems)
				}
				exp := readLines(t, want)
				if len(exp) == 0 {
					t.Fatalf("%s is missing", want)
				}
				if !slices.Equal(ve.Problems, exp) {
					t.Fatalf("problems:\n%s\nwant:\n%s", ve.Error(), strings.Join(exp, "\n"))
				}
				if ve.Error() != strings.Join(exp, "\n") {
					t.Fatalf("Error() = %q", ve.Error())
				}
			default:
				t.Fatalf("fixture %s must end in .ok.yaml or .bad.yaml", name)
			}
		})
	}
}

// TestProblemLineFormat checks every expected line of the bad fixtures has the "<key>: <reason>"
// form and that no line leaks a literal secret written in a fixture.
func TestProblemLineFormat(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*.bad.txt"))
	if len(files) == 0 {
		t.Fatal("no expectations")
	}
	line := regexp.MustCompile(`^[A-Za-z0-9_.\[\]-]+: \S`)
	for _, f := range files {
		for _, l := range readLines(t, f) {
			if !line.MatchString(l) {
				t.Errorf("%s: %q is not <key>: <reason>", filepath.Base(f), l)
			}
			for _, secret := range []string{"literal", "whsec_abc", ": pw"} {
				if strings.Contains(l, secret) {
					t.Errorf("%s: %q leaks a secret", filepath.Base(f), l)
				}
			}
		}
	}
}

// TestShippedConfigs loads every config/*.yaml: each must be valid as shipped on a bare machine.
// Kubernetes manifests (*.k8s.yaml) carry a config inside; TestKubernetesHAExampleIsValid checks it.
func TestShippedConfigs(t *testing.T) {
	clearEnv(t)
	files, err := filepath.Glob("../../config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no config/*.yaml: %v", err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, ".k8s.yaml") {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, warnings, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(warnings) > 0 {
				t.Fatalf("warnings: %v", warnings)
			}
			if cfg.Instances[0].Name != DefaultInstanceName {
				t.Fatalf("instances = %+v", cfg.Instances)
			}
		})
	}
}

// TestExampleHasEveryKey checks that config/wizfetch.example.yaml mentions every key of the schema,
// as a key or in a commented example.
func TestExampleHasEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../config/wizfetch.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	keys := map[string]bool{}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Slice || rt.Kind() == reflect.Pointer {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct {
			return
		}
		for k, ft := range fieldsByKey(rt) {
			keys[k] = true
			walk(ft)
		}
	}
	walk(reflect.TypeFor[Config]())
	if len(keys) < 60 {
		t.Fatalf("only %d keys found: the walk is broken", len(keys))
	}
	for k := range keys {
		if !regexp.MustCompile(`(?m)^[ #-]*` + regexp.QuoteMeta(k) + `:`).MatchString(text) {
			t.Errorf("the example does not mention %q", k)
		}
	}
}

// TestDefaultsFromPublicEvidence pins the defaults that encode what Wiz's own clients do.
func TestDefaultsFromPublicEvidence(t *testing.T) {
	d := Default()
	// The Wiz XSOAR pack keeps its request timeout at 115 s, under the Wiz gateway's (PR #44400).
	if got := d.Wiz.Timeout.D(); got != 115*time.Second {
		t.Errorf("wiz.timeout = %v, want 115s", got)
	}
	// The pack installs "Wiz Issue" and "WizDefend Detection" only: no built-in rule may name
	// another incident type, so every issue is a "Wiz Issue" by default.
	if len(d.Classify.Rules) != 0 || d.Classify.DefaultType != "Wiz Issue" {
		t.Errorf("classify = %+v, want no rules and default_type Wiz Issue", d.Classify)
	}
}

func TestLoadDefaults(t *testing.T) {
	clearEnv(t)
	cfg, warnings, err := LoadBytes([]byte("wiz:\n  api_url: https://api.us1.app.wiz.io\n"))
	if err != nil || len(warnings) != 0 {
		t.Fatalf("LoadBytes: %v %v", err, warnings)
	}
	want := Default()
	want.Wiz.APIURL = "https://api.us1.app.wiz.io/graphql"
	want.Wiz.AuthURL = wizdef.AuthURLCommercial
	want.Instances = []Instance{want.topLevelInstance(DefaultInstanceName)}
	if !reflect.DeepEqual(cfg, want) {
		a, _ := cfg.ShowYAML()
		b, _ := want.ShowYAML()
		t.Fatalf("got:\n%s\nwant:\n%s", a, b)
	}
	if inst, ok := cfg.Instance(DefaultInstanceName); !ok || inst != &cfg.Instances[0] {
		t.Fatal("Instance(default) not found")
	}
	if _, ok := cfg.Instance("nope"); ok {
		t.Fatal("Instance(nope) found")
	}
}

func TestEnvOverrides(t *testing.T) {
	const base = "wiz:\n  api_url: https://api.us1.app.wiz.io/graphql\nfetch:\n  max_per_fetch: 100\n"
	tests := []struct {
		name  string
		env   map[string]string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "max_per_fetch", env: map[string]string{"WIZFETCH_FETCH_MAX_PER_FETCH": "57"},
			check: func(t *testing.T, c *Config) {
				if c.Fetch.MaxPerFetch != 57 || c.Instances[0].Fetch.MaxPerFetch != 57 {
					t.Fatalf("max_per_fetch = %d / %d", c.Fetch.MaxPerFetch, c.Instances[0].Fetch.MaxPerFetch)
				}
			},
		},
		{
			name: "lists split on commas", env: map[string]string{"WIZFETCH_FETCH_STATUS": "OPEN, RESOLVED,", "WIZFETCH_FETCH_SEVERITY": "CRITICAL"},
			check: func(t *testing.T, c *Config) {
				if !slices.Equal(c.Fetch.Status, []string{"OPEN", "RESOLVED"}) || !slices.Equal(c.Fetch.Severity, []string{"CRITICAL"}) {
					t.Fatalf("status %q severity %q", c.Fetch.Status, c.Fetch.Severity)
				}
			},
		},
		{
			name: "secrets and strings", env: map[string]string{"WIZFETCH_WIZ_CLIENT_SECRET": "from-env", "WIZFETCH_WIZ_CLIENT_ID": "id-env"},
			check: func(t *testing.T, c *Config) {
				if c.Wiz.ClientSecret.Reveal() != "from-env" || c.Instances[0].Wiz.ClientSecret.Reveal() != "from-env" || c.Wiz.ClientID != "id-env" {
					t.Fatalf("wiz = %+v", c.Wiz)
				}
			},
		},
		{
			name: "durations bools floats", env: map[string]string{"WIZFETCH_FETCH_LOOKBACK": "30d", "WIZFETCH_FETCH_ENABLED": "false",
				"WIZFETCH_WIZ_REQUESTS_PER_SECOND": "0.5", "WIZFETCH_STORE_RETENTION": "12h"},
			check: func(t *testing.T, c *Config) {
				if c.Fetch.Lookback.D() != 30*day || c.Fetch.Enabled || c.Wiz.RequestsPerSecond != 0.5 || c.Store.Retention.D() != 12*time.Hour {
					t.Fatalf("fetch = %+v wiz = %+v store = %+v", c.Fetch, c.Wiz, c.Store)
				}
			},
		},
		{
			name: "nested server keys", env: map[string]string{"WIZFETCH_SERVER_LISTEN": "0.0.0.0:8080", "WIZFETCH_SERVER_AUTH_TOKEN": "tok",
				"WIZFETCH_SERVER_WEBHOOK_BASIC_USERNAME": "wiz", "WIZFETCH_SERVER_WEBHOOK_BASIC_PASSWORD": "pw"},
			check: func(t *testing.T, c *Config) {
				if c.Server.Listen != "0.0.0.0:8080" || c.Server.AuthToken.Reveal() != "tok" || c.Server.Webhook.Basic.Password.Reveal() != "pw" {
					t.Fatalf("server = %+v", c.Server)
				}
			},
		},
		{
			name: "an empty variable is unset", env: map[string]string{"WIZFETCH_FETCH_MAX_PER_FETCH": "", "WIZFETCH_STORE_PATH": ""},
			check: func(t *testing.T, c *Config) {
				if c.Fetch.MaxPerFetch != 100 || c.Store.Path != Default().Store.Path {
					t.Fatalf("max_per_fetch = %d, store = %q", c.Fetch.MaxPerFetch, c.Store.Path)
				}
			},
		},
		{
			name: "instances inherit overridden top-level values", env: map[string]string{"WIZFETCH_FETCH_INTERVAL": "3m"},
			yaml: "instances:\n  - name: a\n    wiz: {api_url: https://api.us1.app.wiz.io}\n  - name: b\n    wiz: {api_url: https://api.us2.app.wiz.io}\n    fetch: {interval: 10s}\n",
			check: func(t *testing.T, c *Config) {
				if c.Instances[0].Fetch.Interval.D() != 3*time.Minute || c.Instances[1].Fetch.Interval.D() != 10*time.Second {
					t.Fatalf("intervals %v %v", c.Instances[0].Fetch.Interval, c.Instances[1].Fetch.Interval)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			y := tt.yaml
			if y == "" {
				y = base
			}
			cfg, _, err := LoadBytes([]byte(y))
			if err != nil {
				t.Fatalf("LoadBytes: %v", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestEnvErrors(t *testing.T) {
	const base = "wiz:\n  api_url: https://api.us1.app.wiz.io/graphql\n"
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"WIZFETCH_FETCH_MAX_PER_FETCH": "abc"},
			[]string{`fetch.max_per_fetch: WIZFETCH_FETCH_MAX_PER_FETCH="abc" is not a whole number`}},
		{map[string]string{"WIZFETCH_FETCH_MAX_PER_FETCH": "500", "WIZFETCH_FETCH_LOOKBACK": "-3d"},
			[]string{"fetch.lookback: -3d must be greater than 0", "fetch.max_per_fetch: 500 is above the maximum of 200"}},
		{map[string]string{"WIZFETCH_FETCH_LOOKBACK": "forever", "WIZFETCH_FETCH_CATCH_UP": "maybe", "WIZFETCH_WIZ_REQUESTS_PER_SECOND": "x"},
			[]string{
				`wiz.requests_per_second: WIZFETCH_WIZ_REQUESTS_PER_SECOND="x" is not a number`,
				`fetch.lookback: WIZFETCH_FETCH_LOOKBACK="forever" is not a duration (examples: 90s, 30m, 168h, 7d, 1d12h)`,
				`fetch.catch_up: WIZFETCH_FETCH_CATCH_UP="maybe" is not true or false`,
			}},
		{map[string]string{"WIZFETCH_SINKS": "x", "WIZFETCH_CLASSIFY_RULES": "y"},
			[]string{"sinks: WIZFETCH_SINKS is not supported; set sinks in the file",
				"classify.rules: WIZFETCH_CLASSIFY_RULES is not supported; set classify.rules in the file"}},
		{map[string]string{"WIZFETCH_FETCH_STATUS": "OPEN,CLOSED"},
			[]string{`fetch.status[1]: "CLOSED" is not one of OPEN, IN_PROGRESS, RESOLVED, REJECTED`}},
		{map[string]string{"WIZFETCH_SERVER_LISTEN": "0.0.0.0:8080"},
			[]string{"server.auth_token: required when server.listen (0.0.0.0:8080) is not a loopback address"}},
		{map[string]string{"WIZFETCH_WIZ_CLIENT_SECRET": "from-env", "WIZFETCH_WIZ_CLIENT_SECRET_FILE": "/run/secrets/wiz"},
			[]string{"wiz.client_secret: set only one of client_secret, client_secret_file"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.want, "|"), func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, _, err := LoadBytes([]byte(base))
			var ve *ValidationError
			if !errors.As(err, &ve) || !slices.Equal(ve.Problems, tt.want) {
				t.Fatalf("LoadBytes = %v\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
			if strings.Contains(err.Error(), "from-env") {
				t.Fatal("the error leaks a secret")
			}
		})
	}
}

func TestInstances(t *testing.T) {
	clearEnv(t)
	b, err := os.ReadFile(filepath.Join(fixtureDir, "instances.ok.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A top-level rule for the instances to inherit (the default has none).
	b = append(b, "classify:\n  rules: [{incident_type: Wiz Threat, issue_type: [THREAT_DETECTION]}]\n"...)
	cfg, _, err := LoadBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Instances) != 2 {
		t.Fatalf("instances = %d", len(cfg.Instances))
	}
	prod, ok := cfg.Instance("prod")
	if !ok {
		t.Fatal("no prod")
	}
	fed, ok := cfg.Instance("fed-ramp_2")
	if !ok {
		t.Fatal("no fed-ramp_2")
	}
	// Inherited from the top level.
	if prod.Fetch.Interval.D() != 2*time.Minute || !slices.Equal(prod.Fetch.Severity, []string{"HIGH", "CRITICAL"}) ||
		prod.Fetch.MaxPerFetch != 200 || len(prod.Classify.Rules) != 1 || prod.Classify.DefaultType != "Wiz Issue" {
		t.Fatalf("prod = %+v", prod)
	}
	// Overridden: an empty list replaces the inherited one.
	if fed.Fetch.Interval.D() != 2*time.Minute || len(fed.Fetch.Severity) != 0 || fed.Fetch.MaxPerFetch != 50 ||
		len(fed.Classify.Rules) != 0 || fed.Classify.DefaultType != "Wiz FedRAMP Issue" {
		t.Fatalf("fed = %+v", fed)
	}
	// Derived per instance, never from another tenant.
	if prod.Wiz.AuthURL != wizdef.AuthURLCommercial || fed.Wiz.AuthURL != wizdef.AuthURLFedRAMP || fed.Wiz.APIURL != "https://api.us1.app.wiz.us/graphql" {
		t.Fatalf("auth urls %q %q, api %q", prod.Wiz.AuthURL, fed.Wiz.AuthURL, fed.Wiz.APIURL)
	}
	if prod.Wiz.ClientSecretEnv != "WIZ_PROD_SECRET" || fed.Wiz.ClientSecretFile != "/run/secrets/fed" || fed.Wiz.ClientSecretEnv != "" {
		t.Fatalf("secret sources %+v %+v", prod.Wiz, fed.Wiz)
	}
	// Instances own their lists: changing one changes neither the top level nor the other.
	prod.Fetch.Severity[0] = "LOW"
	prod.Classify.Rules[0].IssueType[0] = "X"
	if cfg.Fetch.Severity[0] != "HIGH" || cfg.Classify.Rules[0].IssueType[0] != "THREAT_DETECTION" {
		t.Fatal("an instance shares a list with the top level")
	}
}

func TestNullMeansDefault(t *testing.T) {
	clearEnv(t)
	y := `
wiz: {api_url: "https://api.us1.app.wiz.io"}
fetch:
  status:
  max_per_fetch: 20
instances:
  - name: a
    fetch:
      max_per_fetch:
      status: [RESOLVED]
sinks:
`
	cfg, _, err := LoadBytes([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Fetch.Status, []string{"OPEN", "IN_PROGRESS"}) {
		t.Fatalf("top-level status = %q", cfg.Fetch.Status)
	}
	a := cfg.Instances[0]
	if a.Fetch.MaxPerFetch != 20 || !slices.Equal(a.Fetch.Status, []string{"RESOLVED"}) {
		t.Fatalf("instance fetch = %+v", a.Fetch)
	}
	if !reflect.DeepEqual(cfg.Sinks, Default().Sinks) {
		t.Fatalf("sinks = %+v", cfg.Sinks)
	}
}

func TestSinkDefaults(t *testing.T) {
	clearEnv(t)
	y := `
wiz: {api_url: "https://api.us1.app.wiz.io"}
sinks:
  - {name: a, type: xsoar, url: "https://x.example.com", api_key_env: K}
  - {name: b, type: xsoar, url: "https://x.example.com", api_key_env: K, create_investigation: false, max_pending: 5}
  - {name: c, type: splunk_hec, url: "https://s.example.com", token_env: T, batch: 7}
  - {name: d, type: webhook, url: "https://w.example.com", secret_env: S, retry_for: 2h}
`
	cfg, _, err := LoadBytes([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sinks
	if s[0].CreateInvestigation == nil || !*s[0].CreateInvestigation || s[0].MaxPending != 10000 || s[0].Timeout.D() != 30*time.Second {
		t.Fatalf("xsoar defaults %+v", s[0])
	}
	if s[1].CreateInvestigation == nil || *s[1].CreateInvestigation || s[1].MaxPending != 5 {
		t.Fatalf("xsoar overrides %+v", s[1])
	}
	if s[2].Source != "wiz" || s[2].Sourcetype != "wiz:issue" || s[2].Batch != 7 || s[2].RetryFor.D() != 24*time.Hour {
		t.Fatalf("splunk %+v", s[2])
	}
	if s[3].RetryFor.D() != 2*time.Hour || s[3].Batch != 0 || s[3].CreateInvestigation != nil {
		t.Fatalf("webhook %+v", s[3])
	}
}

// TestShowYAMLGolden pins `config show` for a full config and checks that its output loads back to
// the same config (durations and all).
func TestShowYAMLGolden(t *testing.T) {
	clearEnv(t)
	cfg, _, err := Load(filepath.Join(fixtureDir, "full.ok.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.ShowYAML()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "show_full.golden.yaml")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("ShowYAML differs from %s:\n%s", golden, got)
	}
	back, _, err := LoadBytes(got)
	if err != nil {
		t.Fatalf("the shown config does not load: %v", err)
	}
	if !reflect.DeepEqual(back, cfg) {
		b, _ := back.ShowYAML()
		t.Fatalf("round trip differs:\n%s", b)
	}
}

func FuzzLoadBytes(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*.yaml"))
	files = append(files, "../../config/wizfetch.example.yaml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("sinks: [{type: jsonl, name: x, path: /p, <<: {batch: 1}}]"))
	clearEnv(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := LoadBytes(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("LoadBytes error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		if len(cfg.Instances) == 0 {
			t.Fatal("a loaded config has no instance")
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted what Validate rejects: %v", err)
		}
		out, err := cfg.ShowYAML()
		if err != nil {
			t.Fatalf("ShowYAML: %v", err)
		}
		if _, _, err := LoadBytes(out); err != nil {
			t.Fatalf("the shown config does not load: %v\n%s", err, out)
		}
	})
}

// TestExampleCommentedBlocks uncomments the example's commented sinks (one per type) and
// instances and loads the result: the documented snippets must be valid too.
func TestExampleCommentedBlocks(t *testing.T) {
	clearEnv(t)
	b, err := os.ReadFile("../../config/wizfetch.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	head, tail, ok := strings.Cut(string(b), "\nsinks:\n")
	if !ok {
		t.Fatal("no sinks: section")
	}
	sinkLine := regexp.MustCompile(`(?m)^  # (- name:|  [a-z_]+:)`)
	tail = sinkLine.ReplaceAllString(tail, "  $1")
	sinks, insts, ok := strings.Cut(tail, "instances: []\n# instances:\n")
	if !ok {
		t.Fatal("no commented instances example")
	}
	insts = regexp.MustCompile(`(?m)^#   `).ReplaceAllString(insts, "  ")
	text := head + "\nsinks:\n" + sinks + "instances:\n" + insts
	cfg, _, err := LoadBytes([]byte(text))
	if err != nil {
		t.Fatalf("uncommented example: %v\n%s", err, text)
	}
	var types []string
	for _, s := range cfg.Sinks {
		types = append(types, s.Type)
	}
	if !slices.Equal(types, SinkTypes()) || len(cfg.Instances) != 2 {
		t.Fatalf("sinks %v, %d instances: the uncommenting missed a block", types, len(cfg.Instances))
	}
}

// TestHostileYAML: aliases to pruned keys and alias bombs give plain problems, quickly.
func TestHostileYAML(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"alias to an unknown key", "x-wiz: &w {api_url: https://api.us1.app.wiz.io}\nwiz: *w\n", []string{"x-wiz: unknown key"}},
		// Found by FuzzLoadBytes: a merge key whose alias is the mapping holding it expanded forever.
		{"merge key cycle", "wiz: &w\n  <<: *w\n  api_url: https://api.us1.app.wiz.io\n", []string{"wiz.<<: the merge key refers to a mapping that contains it (an alias cycle)"}},
		{"alias bomb", "wiz: {api_url: https://a.example.com}\nfetch:\n  status: &a [OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN, OPEN]\n" +
			"classify:\n  rules: &r\n" + strings.Repeat("    - {incident_type: x, status: *a}\n", 64) +
			"instances:\n" + strings.Repeat("  - {name: a, classify: {rules: *r}}\n", 64),
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadBytes([]byte(tt.yaml))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("LoadBytes = %v", err)
			}
			if len(ve.Problems) > MaxProblems {
				t.Fatalf("%d problems, more than %d", len(ve.Problems), MaxProblems)
			}
			if tt.want == nil {
				tt.want = ve.Problems[: MaxProblems-1 : MaxProblems-1]
				tt.want = append(tt.want, ve.Problems[MaxProblems-1])
				if !strings.HasSuffix(tt.want[MaxProblems-1], "more problems not shown") {
					t.Fatalf("last line %q", tt.want[MaxProblems-1])
				}
			}
			if !slices.Equal(ve.Problems, tt.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", ve.Error(), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestInstanceOverridesReplace: a list of records or a map an instance sets replaces the inherited
// one as a whole; nothing is merged element by element.
func TestInstanceOverridesReplace(t *testing.T) {
	clearEnv(t)
	y := `
wiz: {api_url: "https://api.us1.app.wiz.io"}
mapping: {fields: {wiza: id, wizb: status}}
instances:
  - name: a
    classify:
      rules: [{incident_type: Wiz Critical, severity: [CRITICAL]}]
    mapping: {fields: {wizc: severity}}
  - name: b
`
	cfg, _, err := LoadBytes([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Instances[0], cfg.Instances[1]
	wantRules := []ClassifyRule{{IncidentType: "Wiz Critical", Severity: []string{"CRITICAL"}}}
	if !reflect.DeepEqual(a.Classify.Rules, wantRules) {
		t.Fatalf("a rules = %+v", a.Classify.Rules)
	}
	if !reflect.DeepEqual(a.Mapping.Fields, map[string]string{"wizc": "severity"}) {
		t.Fatalf("a fields = %v", a.Mapping.Fields)
	}
	if !reflect.DeepEqual(b.Classify, Default().Classify) || len(b.Mapping.Fields) != 2 || len(cfg.Mapping.Fields) != 2 {
		t.Fatalf("b = %+v, top fields %v", b, cfg.Mapping.Fields)
	}
}

// TestKubernetesHAExampleIsValid loads the config embedded in config/wizfetch-ha.k8s.yaml (the
// ConfigMap's wizfetch.yaml) through the same validation as `config validate`.
func TestKubernetesHAExampleIsValid(t *testing.T) {
	b, err := os.ReadFile("../../config/wizfetch-ha.k8s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "  wizfetch.yaml: |\n")
	if !ok {
		t.Fatal("no wizfetch.yaml in the ConfigMap")
	}
	var cfg strings.Builder
	for _, line := range strings.Split(block, "\n") {
		if line == "---" {
			break
		}
		cfg.WriteString(strings.TrimPrefix(line, "    ") + "\n")
	}
	clearEnv(t)
	c, warnings, err := LoadBytes([]byte(cfg.String()))
	if err != nil {
		t.Fatalf("the example's config is invalid:\n%v\n%s", err, cfg.String())
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	if c.Store.Backend != StoreEtcd || len(c.Store.Etcd.Endpoints) != 3 {
		t.Fatalf("the example is not an etcd deployment of three endpoints: %+v", c.Store)
	}
}
