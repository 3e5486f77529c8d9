package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/cli"
)

// An unknown subcommand is invalid usage (exit 2) at every level, with a suggestion when one is
// close; a group run bare prints its help. Below the root cobra alone printed the help and exited
// 0, so `wizfetch config valdate && deploy` went on to deploy.
func TestUnknownSubcommandIsAUsageError(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		stderr   string // a part of stderr
		stdoutOK bool   // stdout holds the help
	}{
		{args: []string{"config", "valdate", "--config", "/nonexistent.yaml"}, code: 2, stderr: `unknown command "valdate" for "wizfetch config"; did you mean validate?`},
		{args: []string{"store", "chek"}, code: 2, stderr: `unknown command "chek" for "wizfetch store"; did you mean check?`},
		{args: []string{"checkpoint", "bogus"}, code: 2, stderr: `unknown command "bogus" for "wizfetch checkpoint"`},
		{args: []string{"incidents", "bogus"}, code: 2, stderr: `unknown command "bogus" for "wizfetch incidents"`},
		{args: []string{"issue", "bogus"}, code: 2, stderr: `unknown command "bogus" for "wizfetch issue"`},
		{args: []string{"bogus"}, code: 2, stderr: `unknown command "bogus" for "wizfetch"`},
		{args: []string{"completion", "bogus"}, code: 2, stderr: `unknown command "bogus" for "wizfetch completion"`},
		{args: []string{"config"}, code: 0, stdoutOK: true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := cli.Main(ctx, cli.Env{Args: tc.args, Stdout: &out, Stderr: &errOut, Version: "test"})
			if code != tc.code || !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut.String(), tc.code, tc.stderr)
			}
			if got := strings.Contains(out.String(), "Available Commands"); got != tc.stdoutOK {
				t.Errorf("help on stdout: %v, want %v (stdout %q)", got, tc.stdoutOK, out.String())
			}
		})
	}
}

// Demo flags out of range are usage errors, not silently replaced (--issues 0 ran 2000 issues, a
// negative --duration ran forever).
func TestDemoFlagsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{args: []string{"demo", "--issues", "0"}, want: "--issues: 0, want at least 1"},
		{args: []string{"demo", "--issues", "-5"}, want: "--issues: -5, want at least 1"},
		{args: []string{"demo", "--duration", "-1s"}, want: "--duration: -1s is negative"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := cli.Main(ctx, cli.Env{Args: append(tc.args, "--dir", t.TempDir()), Stdout: &out, Stderr: &errOut, Version: "test"})
			if code != 2 || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, errOut.String(), tc.want)
			}
		})
	}
}
