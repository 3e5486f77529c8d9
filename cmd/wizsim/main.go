// Command wizsim serves a simulated Wiz API (OAuth token endpoint and GraphQL issues) for tests, benchmarks
// and demos. See package github.com/wizfetch/wizfetch/pkg/wizsim.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const faultHelp = `
Fault spec (--faults): semicolon-separated faults, each kind[:key=value,...].
  kinds: 429 (retry_after=2s adds a Retry-After header), 5xx (code=500|502|503|504, default 503),
         slow (delay=3s), partial (200 with data and an INTERNAL error), malformed (truncated 200 body),
         expire (invalidate every token: 401), cursor (invalidate every cursor issued so far),
         graphql_ratelimit (200 with RATE_LIMIT_EXCEEDED and null data)
  keys:  p=0.1 (probability per /graphql request, seeded by --seed), every=N (every Nth request),
         count=N (only N requests in all), burst=N (N consecutive requests once triggered)
  Without p or every a fault hits every request; faults are checked in order, the first that fires wins.
  Example: 429:every=7,burst=3,retry_after=1s;5xx:p=0.02;slow:count=1,delay=3s
`

// run parses args, serves until SIGINT or SIGTERM and returns the exit code: 0 ok, 1 failure, 2 usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wizsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen    = fs.String("listen", "127.0.0.1:0", "address to listen on")
		issues    = fs.Int("issues", 1000, "number of generated issues")
		seed      = fs.Int64("seed", 1, "data and fault RNG seed")
		days      = fs.Int("days", 7, "days of generated history")
		rate      = fs.Float64("rate", 0, "requests per second per token before 429 (0 = unlimited)")
		faults    = fs.String("faults", "", "fault spec (see below)")
		auth      = fs.String("auth", "cognito", "token endpoint mode: cognito (audience wiz-api) or auth0 (audience beyond-api)")
		clientID  = fs.String("client-id", "wizsim-client", "accepted client id")
		secret    = fs.String("client-secret", "wizsim-secret", "accepted client secret")
		live      = fs.Float64("live", 0, "live mode: status changes per second, plus half as many new issues (0 = static)")
		expiresIn = fs.Duration("expires-in", 24*time.Hour, "access token lifetime")
		latency   = fs.Duration("latency", 0, "base time every /graphql answer takes (e.g. 800ms; 0 = at once)")
		perIssue  = fs.Duration("latency-per-issue", 0, "extra time per issue node answered (e.g. 4ms)")
		verbose   = fs.Bool("v", false, "debug logging")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wizsim [flags]\n\nServes POST /oauth/token, POST /graphql and GET /_sim/stats.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), faultHelp)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *latency < 0 || *perIssue < 0 {
		fmt.Fprintln(stderr, "wizsim: --latency and --latency-per-issue must not be negative")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wizsim: unexpected arguments %v\n", fs.Args())
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	sim, err := wizsim.New(wizsim.Options{
		Issues: *issues, Seed: *seed, Days: *days, Auth: *auth, ClientID: *clientID, ClientSecret: *secret,
		ExpiresIn: *expiresIn, Rate: *rate, Faults: *faults, Live: *live, Logger: logger,
		Latency: *latency, LatencyPerIssue: *perIssue,
	})
	if err != nil {
		fmt.Fprintf(stderr, "wizsim: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sim.Start(*listen); err != nil {
		fmt.Fprintf(stderr, "wizsim: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wizsim listening on %s\n", sim.URL())
	<-ctx.Done()
	if err := sim.Close(); err != nil {
		fmt.Fprintf(stderr, "wizsim: %v\n", err)
		return 1
	}
	return 0
}
