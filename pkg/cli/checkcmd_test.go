package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

func TestCheckPassesAndFailsClearly(t *testing.T) {
	sim, err := wizsim.New(wizsim.Options{Issues: 20, Seed: 31})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	write := func(name, secret string) string {
		p := filepath.Join(dir, name)
		body := "wiz:\n  api_url: " + sim.GraphQLURL() + "\n  auth_url: " + sim.TokenURL() +
			"\n  audience: wiz-api\n  client_id: wizsim-client\n  client_secret: " + secret +
			"\nstore:\n  path: " + filepath.Join(dir, "s.db") + "\n"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := runCLI(t, write("good.yaml", "wizsim-secret"), "check")
	if r.code != 0 || !strings.Contains(r.stdout, "all checks passed") || !strings.Contains(r.stdout, "issues query") {
		t.Fatalf("check against the simulator: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, write("bad.yaml", "not-the-secret-4242"), "check")
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL [default] token") || !strings.Contains(r.stdout, "authentication failed") {
		t.Fatalf("check with a wrong secret: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "not-the-secret-4242") {
		t.Fatal("check printed the secret")
	}
	r = runCLI(t, filepath.Join(dir, "missing.yaml"), "check")
	if r.code != 2 {
		t.Fatalf("check with a missing config: exit %d, want 2", r.code)
	}
}
