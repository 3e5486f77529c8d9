package config

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// durationSeeds is the repo-root seed file of the duration parser's fuzz target.
const durationSeeds = "../../testdata/fuzz/durations.txt"

// loadDurationSeeds reads one Go-quoted string per line, skipping blank lines and # comments.
func loadDurationSeeds(f *testing.F) []string {
	f.Helper()
	file, err := os.Open(durationSeeds)
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	var out []string
	sc := bufio.NewScanner(file)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := strconv.Unquote(line)
		if err != nil {
			f.Fatalf("%s:%d: not a Go-quoted string: %v", durationSeeds, n, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		f.Fatal(err)
	}
	if len(out) == 0 {
		f.Fatalf("no seeds in %s", durationSeeds)
	}
	return out
}

// printable reports whether s is valid UTF-8 without control characters, so a YAML encoder
// round-trips it byte for byte.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// FuzzParseDurationCorpus is the duration parser's fuzz target seeded from testdata/fuzz/durations.txt
// at the repository root. Beyond FuzzParseDuration's round trip through FormatDuration, it checks that
// every way a config value reaches the parser agrees with it: Duration.UnmarshalText and a YAML
// scalar decoded into a Duration field accept exactly what ParseDuration accepts, with the same value.
func FuzzParseDurationCorpus(f *testing.F) {
	for _, s := range loadDurationSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil {
			text := FormatDuration(d)
			back, berr := ParseDuration(text)
			if berr != nil || back != d {
				t.Fatalf("%q parsed to %d, formatted %q, parsed back to %d, %v", s, d, text, back, berr)
			}
		}

		var viaText Duration
		terr := viaText.UnmarshalText([]byte(s))
		if (terr == nil) != (err == nil) || (err == nil && viaText.D() != d) {
			t.Fatalf("UnmarshalText(%q) = %v, %v; ParseDuration = %v, %v", s, viaText.D(), terr, d, err)
		}

		if !printable(s) {
			return
		}
		doc, merr := yaml.Marshal(map[string]string{"d": s})
		if merr != nil {
			t.Fatalf("yaml.Marshal(%q): %v", s, merr)
		}
		var viaYAML struct {
			D Duration `yaml:"d"`
		}
		yerr := yaml.Unmarshal(doc, &viaYAML)
		if (yerr == nil) != (err == nil) || (err == nil && viaYAML.D.D() != d) {
			t.Fatalf("YAML %q decoded to %v, %v; ParseDuration = %v, %v", doc, viaYAML.D.D(), yerr, d, err)
		}
	})
}
