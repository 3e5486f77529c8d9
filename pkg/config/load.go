package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// EnvPrefix prefixes every environment override: WIZFETCH_<SECTION>_<KEY>.
const EnvPrefix = "WIZFETCH"

// structuredKeys are the keys whose values are lists of records or free maps. They come only from
// the file: an environment variable cannot express them, and list items take their secrets through
// `*_file` or `*_env: VAR` instead.
func structuredKeys() []string {
	return []string{"sinks", "instances", "classify.rules", "mapping.fields", "mcp.profiles", "mcp.users"}
}

// EnvName returns the environment variable that overrides a dotted config key:
// EnvName("fetch.max_per_fetch") = "WIZFETCH_FETCH_MAX_PER_FETCH".
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Load reads the YAML file at path, applies defaults and WIZFETCH_* environment overrides,
// normalises instances and validates; see LoadBytes. A *ValidationError is returned as is (not
// wrapped) so that its Error() is exactly the problem lines; other errors name the path.
func Load(path string) (*Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	return LoadBytes(data)
}

// LoadBytes is Load for in-memory YAML. In order it:
//
//  1. parses the YAML and checks it against the schema: unknown keys at any depth (sinks and
//     instances items included), keys of another sink type, duplicate keys and values of the wrong
//     shape are errors naming their key;
//  2. merges defaults (Default), the file and environment overrides through viper:
//     WIZFETCH_<SECTION>_<KEY> overrides any scalar or string-list key (lists are comma-separated:
//     WIZFETCH_FETCH_STATUS=OPEN,IN_PROGRESS); an empty variable counts as unset. sinks, instances,
//     classify.rules and mapping.fields come only from the file. There is no ${VAR} expansion;
//  3. builds sinks on the defaults of their type (DefaultSink), and instances: each `instances:`
//     item starts from a copy of the top-level wiz, fetch, classify and mapping sections (with
//     their env overrides) and replaces only the keys it sets — a list or map it sets replaces the
//     inherited one, a null inherits. Without `instances:`, one instance named "default" is a copy
//     of the top level;
//  4. fills derived values: an empty wiz.auth_url becomes wizdef.DefaultAuthURL(api_url), and an api_url
//     without a path gets "/graphql";
//  5. validates (see Validate).
//
// A null value means "the default" (write [] for an empty list). Problems come back together as a
// *ValidationError: those found while reading, in file order, then those of Validate in key order.
// Warnings (such as wiz.requests_per_second above 3) are returned with a valid config.
func LoadBytes(data []byte) (*Config, []string, error) {
	root, sc := checkSchema(data)
	envProblems, envFatal := checkEnv()
	var problems []string
	for _, p := range sc.problems {
		problems = append(problems, p.msg)
	}
	problems = append(problems, envProblems...)
	if sc.fatal || envFatal {
		return nil, nil, newValidationError(problems)
	}

	if len(sc.unknown) > 0 || len(sc.wrong) > 0 {
		sc.pruneUnknown()
		pruned, err := yaml.Marshal(root)
		if err != nil {
			return nil, nil, fmt.Errorf("re-encode config: %w", err)
		}
		data = pruned
	}
	cfg, err := decodeAll(data, root)
	if err != nil {
		if len(problems) > 0 {
			// Pruning an unknown or wrong-shaped key can orphan an alias to an anchor it held: the
			// pruned key is the problem to report, not the knock-on parse error (Validate does not
			// run then).
			return nil, nil, newValidationError(problems)
		}
		return nil, nil, newValidationError([]string{err.Error()})
	}

	vr := validator{sources: true}
	cfg.validate(&vr)
	for _, p := range vr.problems {
		// A key whose value had the wrong shape was dropped, and its default may now be invalid in
		// turn (a required key): it is reported once, for its value.
		if !slices.ContainsFunc(sc.wrongPaths, func(k string) bool { return strings.HasPrefix(p, k+":") || strings.HasPrefix(p, k+".") }) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, vr.warnings, newValidationError(problems)
	}
	return cfg, vr.warnings, nil
}

// envLeaf is a key that an environment variable can override, with its default.
type envLeaf struct {
	key string
	def reflect.Value
}

// envLeaves lists every scalar or string-list key of Config with its default value.
func envLeaves() []envLeaf {
	var out []envLeaf
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ",")
			key := join(prefix, tag)
			if slices.Contains(structuredKeys(), key) {
				continue
			}
			if t.Field(i).Type.Kind() == reflect.Struct {
				walk(key, v.Field(i))
				continue
			}
			out = append(out, envLeaf{key: key, def: v.Field(i)})
		}
	}
	walk("", reflect.ValueOf(Default()).Elem())
	return out
}

// checkEnv checks the values of the WIZFETCH_* variables that are set, so that a bad one is named
// by key and variable. Secrets are strings and never fail a check, so no secret is ever echoed.
func checkEnv() (problems []string, fatal bool) {
	for _, k := range structuredKeys() {
		if v := os.Getenv(EnvName(k)); v != "" {
			problems = append(problems, fmt.Sprintf("%s: %s is not supported; set %s in the file", k, EnvName(k), k))
			fatal = true
		}
	}
	for _, l := range envLeaves() {
		name := EnvName(l.key)
		val := strings.TrimSpace(os.Getenv(name))
		if val == "" {
			continue
		}
		var reason string
		switch {
		case l.def.Type() == reflect.TypeFor[Duration]():
			if _, err := ParseDuration(val); err != nil {
				reason = "is not a duration (examples: 90s, 30m, 168h, 7d, 1d12h)"
			}
		case l.def.Kind() == reflect.Int:
			if _, err := strconv.Atoi(val); err != nil {
				reason = "is not a whole number"
			}
		case l.def.Kind() == reflect.Float64:
			if _, err := strconv.ParseFloat(val, 64); err != nil {
				reason = "is not a number"
			}
		case l.def.Kind() == reflect.Bool:
			if _, err := strconv.ParseBool(val); err != nil {
				reason = "is not true or false"
			}
		}
		if reason != "" {
			problems = append(problems, fmt.Sprintf("%s: %s=%q %s", l.key, name, val, reason))
			fatal = true
		}
	}
	return problems, fatal
}

// decodeAll builds the typed config from defaults, the file and the environment. The schema check
// has already rejected or pruned every unknown key, so decoding is exact: a key left unused is a
// bug surfaced as an error rather than silently ignored.
func decodeAll(data []byte, root *yaml.Node) (*Config, error) {
	v := viper.New()
	for _, l := range envLeaves() {
		v.SetDefault(l.key, l.def.Interface())
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("yaml: %s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "While parsing config: "), "yaml: "))
	}
	settings := v.AllSettings()
	delete(settings, "sinks")
	delete(settings, "instances")
	if m, ok := settings["classify"].(map[string]any); ok {
		delete(m, "rules")
	}
	if m, ok := settings["mapping"].(map[string]any); ok {
		delete(m, "fields")
	}
	delete(settings, "mcp") // decodeMCP, from the file

	cfg := Default()
	if err := decodeInto(settings, cfg); err != nil {
		return nil, err
	}

	var raw map[string]any
	if root != nil {
		if err := root.Decode(&raw); err != nil {
			return nil, fmt.Errorf("yaml: %w", err)
		}
	}
	if rules := dig(raw, "classify", "rules"); rules != nil {
		if err := decodeInto(rules, &cfg.Classify.Rules); err != nil {
			return nil, err
		}
	}
	if fields := dig(raw, "mapping", "fields"); fields != nil {
		if err := decodeInto(fields, &cfg.Mapping.Fields); err != nil {
			return nil, err
		}
	}
	if err := decodeSinks(cfg, raw["sinks"]); err != nil {
		return nil, err
	}
	if err := decodeInstances(cfg, raw["instances"]); err != nil {
		return nil, err
	}
	if err := decodeMCP(cfg, raw["mcp"]); err != nil {
		return nil, err
	}
	cfg.normalise()
	return cfg, nil
}

// dig returns m[k1][k2]..., or nil.
func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func decodeSinks(cfg *Config, raw any) error {
	items, ok := raw.([]any)
	if !ok {
		return nil // absent or null: the default sink
	}
	cfg.Sinks = make([]Sink, 0, len(items))
	for i, item := range items {
		typ, _ := dig(asMap(item), "type").(string)
		s := DefaultSink(typ)
		if err := decodeInto(stripNulls(item), &s); err != nil {
			return fmt.Errorf("sinks[%d]: %w", i, err)
		}
		cfg.Sinks = append(cfg.Sinks, s)
	}
	return nil
}

func decodeInstances(cfg *Config, raw any) error {
	items, _ := raw.([]any)
	cfg.Instances = make([]Instance, 0, max(len(items), 1))
	for i, item := range items {
		inst := cfg.topLevelInstance("")
		if err := decodeInto(stripNulls(item), &inst); err != nil {
			return fmt.Errorf("instances[%d]: %w", i, err)
		}
		cfg.Instances = append(cfg.Instances, inst)
	}
	if len(cfg.Instances) == 0 {
		cfg.Instances = append(cfg.Instances, cfg.topLevelInstance(DefaultInstanceName))
	}
	return nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// stripNulls removes null values from maps (recursively), so that a null key inherits.
func stripNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			if e != nil {
				out[k] = stripNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = stripNulls(e)
		}
		return out
	}
	return v
}

// decodeInto decodes a generic value onto out (a pointer): keys present replace the value in out
// (lists and maps as a whole), keys absent keep it.
func decodeInto(input, out any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       decodeHook,
		ErrorUnused:      true,
		ZeroFields:       true,
		WeaklyTypedInput: true, // environment values are strings; the schema check guards the file's types
		TagName:          "mapstructure",
		Result:           out,
	})
	if err != nil {
		return fmt.Errorf("config decoder: %w", err)
	}
	if err := dec.Decode(input); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// decodeHook parses durations with ParseDuration and splits comma-separated strings into lists.
func decodeHook(from, to reflect.Type, data any) (any, error) {
	if to == reflect.TypeFor[Duration]() {
		switch d := data.(type) {
		case string:
			return ParseDuration(strings.TrimSpace(d))
		case Duration, time.Duration:
			return d, nil
		case int, int64, uint64, float64:
			if reflect.ValueOf(d).IsZero() {
				return Duration(0), nil
			}
			return nil, errors.New("a duration needs a unit (examples: 90s, 30m, 7d)")
		}
		return data, nil
	}
	if to.Kind() == reflect.Slice && to.Elem().Kind() == reflect.String && from.Kind() == reflect.String {
		var out []string
		for _, part := range strings.Split(reflect.ValueOf(data).String(), ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
		if out == nil {
			out = []string{}
		}
		return out, nil
	}
	return data, nil
}

// topLevelInstance returns an instance built from deep copies of the top-level sections.
func (c *Config) topLevelInstance(name string) Instance {
	return Instance{
		Name:     name,
		Wiz:      c.Wiz,
		Fetch:    cloneFetch(c.Fetch),
		Classify: cloneClassify(c.Classify),
		Mapping:  Mapping{Fields: cloneMap(c.Mapping.Fields)},
	}
}

// normalise fills the derived values of every tenant (instances first, so that an instance never
// inherits an auth URL derived from another tenant's API URL).
func (c *Config) normalise() {
	fill := func(w *Wiz) {
		w.APIURL = withGraphQLPath(w.APIURL)
		if w.AuthURL == "" && w.APIURL != "" {
			w.AuthURL = wizdef.DefaultAuthURL(w.APIURL)
		}
	}
	for i := range c.Instances {
		fill(&c.Instances[i].Wiz)
	}
	fill(&c.Wiz)
	if c.Mapping.Fields == nil {
		c.Mapping.Fields = map[string]string{}
	}
	for i := range c.Instances {
		if c.Instances[i].Mapping.Fields == nil {
			c.Instances[i].Mapping.Fields = map[string]string{}
		}
	}
}

// withGraphQLPath appends "/graphql" to an API URL given without a path (operators paste both).
func withGraphQLPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return raw
	}
	u.Path = "/graphql"
	return u.String()
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneFetch(f Fetch) Fetch {
	f.Status = cloneStrings(f.Status)
	f.Severity = cloneStrings(f.Severity)
	f.Type = cloneStrings(f.Type)
	f.ProjectIDs = cloneStrings(f.ProjectIDs)
	return f
}

func cloneClassify(c Classify) Classify {
	if c.Rules != nil {
		rules := make([]ClassifyRule, len(c.Rules))
		for i, r := range c.Rules {
			rules[i] = ClassifyRule{
				IncidentType:   r.IncidentType,
				IssueType:      cloneStrings(r.IssueType),
				Severity:       cloneStrings(r.Severity),
				Status:         cloneStrings(r.Status),
				SourceRuleType: cloneStrings(r.SourceRuleType),
				CloudPlatform:  cloneStrings(r.CloudPlatform),
				ProjectIDs:     cloneStrings(r.ProjectIDs),
			}
		}
		c.Rules = rules
	}
	return c
}
