package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/cli"
)

// A bad API model is a usage error (exit 2) that names the flag, before anything starts.
func TestBenchAPIFlagsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "negative rate", args: []string{"bench", "--rate", "-1"}, want: "--rate: -1"},
		{name: "negative latency", args: []string{"bench", "--latency", "-1s"}, want: "--latency: -1s is negative"},
		{name: "negative latency per issue", args: []string{"bench", "--latency-per-issue", "-4ms"}, want: "--latency-per-issue: -4ms is negative"},
		{name: "simulator, negative latency", args: []string{"bench-sim", "--latency", "-1s"}, want: "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := cli.Main(ctx, cli.Env{Args: tc.args, Stdout: &out, Stderr: &errOut,
				Getenv: func(string) string { return "" }, Version: "test"})
			if code != cli.ExitUsage || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d naming %q", code, errOut.String(), cli.ExitUsage, tc.want)
			}
		})
	}
}
