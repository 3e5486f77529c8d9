package wizsim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault kinds of the --faults spec.
const (
	Fault429       = "429"
	Fault5xx       = "5xx"
	FaultSlow      = "slow"
	FaultPartial   = "partial"
	FaultMalformed = "malformed"
	FaultExpire    = "expire"
	FaultCursor    = "cursor"
	// FaultGraphQLRateLimit answers HTTP 200 with a RATE_LIMIT_EXCEEDED GraphQL error and null
	// data: Wiz's throttling code, which Wiz maps to 429 (Wiz's Backstage plugin, types/index.ts)
	// but which may arrive inside an HTTP 200 answer (WIZ_API.md §10).
	FaultGraphQLRateLimit = "graphql_ratelimit"
	// FaultExpireInData invalidates every token and answers HTTP 200 with an UNAUTHENTICATED
	// GraphQL error and null data: WIZ_API.md §4, "bad or expired token: HTTP 401, or 200 with
	// errors[].extensions.code = UNAUTHENTICATED".
	FaultExpireInData = "expire200"
	// FaultGateway answers code=502|504 (default 502) with an HTML page instead of Wiz's JSON, as
	// the gateway in front of the API does when it gives up (WIZ_API.md §4: 502/504 are server
	// trouble; §10: the Wiz pack keeps its timeout under "the Wiz gateway's own timeout").
	FaultGateway = "gateway"
)

// fault is one parsed entry of a fault spec with its trigger state.
type fault struct {
	kind       string
	p          float64 // -1: not set
	every      int
	count      int // remaining fires; -1 = unlimited
	burst      int
	retryAfter time.Duration
	hasRetry   bool
	delay      time.Duration
	code       int

	seen      int // /graphql requests this fault has checked
	burstLeft int
}

// parseFaults parses a fault spec: semicolon-separated faults, each kind[:key=value,...]. See the
// package documentation for kinds and keys.
func parseFaults(spec string) ([]*fault, error) {
	var out []*fault
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kind, params, _ := strings.Cut(part, ":")
		f := &fault{kind: strings.TrimSpace(kind), p: -1, count: -1, burst: 1, code: 503, delay: 3 * time.Second}
		if f.kind == FaultGateway {
			f.code = http.StatusBadGateway
		}
		switch f.kind {
		case Fault429, Fault5xx, FaultSlow, FaultPartial, FaultMalformed, FaultExpire, FaultCursor, FaultGraphQLRateLimit,
			FaultExpireInData, FaultGateway:
		default:
			return nil, fmt.Errorf("fault %q: unknown kind %q", part, f.kind)
		}
		if params != "" {
			for _, kv := range strings.Split(params, ",") {
				k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
				if !ok {
					return nil, fmt.Errorf("fault %q: %q is not key=value", part, kv)
				}
				if err := f.set(k, v); err != nil {
					return nil, fmt.Errorf("fault %q: %w", part, err)
				}
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func (f *fault) set(k, v string) error {
	posInt := func() (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s=%s: want a positive integer", k, v)
		}
		return n, nil
	}
	var err error
	switch k {
	case "p":
		f.p, err = strconv.ParseFloat(v, 64)
		if err != nil || f.p < 0 || f.p > 1 {
			return fmt.Errorf("p=%s: want a probability in [0,1]", v)
		}
	case "every":
		f.every, err = posInt()
	case "count":
		f.count, err = posInt()
	case "burst":
		f.burst, err = posInt()
	case "retry_after":
		if f.kind != Fault429 {
			return fmt.Errorf("retry_after applies to 429 only")
		}
		f.retryAfter, err = time.ParseDuration(v)
		if err != nil || f.retryAfter < 0 {
			return fmt.Errorf("retry_after=%s: want a duration such as 2s", v)
		}
		f.hasRetry = true
	case "delay":
		if f.kind != FaultSlow {
			return fmt.Errorf("delay applies to slow only")
		}
		f.delay, err = time.ParseDuration(v)
		if err != nil || f.delay < 0 {
			return fmt.Errorf("delay=%s: want a duration such as 3s", v)
		}
	case "code":
		switch f.kind {
		case Fault5xx:
			f.code, err = strconv.Atoi(v)
			if err != nil || f.code < 500 || f.code > 599 {
				return fmt.Errorf("code=%s: want a 5xx status", v)
			}
		case FaultGateway:
			f.code, err = strconv.Atoi(v)
			if err != nil || (f.code != http.StatusBadGateway && f.code != http.StatusGatewayTimeout) {
				return fmt.Errorf("code=%s: want 502 or 504", v)
			}
		default:
			return fmt.Errorf("code applies to 5xx and gateway only")
		}
	default:
		return fmt.Errorf("unknown key %q", k)
	}
	return err
}

// fire advances the fault by one request and reports whether it applies to it. A trigger starts a burst
// of burst consecutive requests; count limits how many requests the fault handles in all.
func (f *fault) fire(rng *rand.Rand) bool {
	if f.count == 0 {
		return false
	}
	f.seen++
	if f.burstLeft > 0 {
		f.burstLeft--
	} else {
		var hit bool
		switch {
		case f.p >= 0:
			hit = rng.Float64() < f.p
		case f.every > 0:
			hit = f.seen%f.every == 0
		default:
			hit = true
		}
		if !hit {
			return false
		}
		f.burstLeft = f.burst - 1
	}
	if f.count > 0 {
		f.count--
	}
	return true
}

// faultState is the active fault list; checks are serialised so a seeded run is reproducible.
type faultState struct {
	mu     sync.Mutex
	rng    *rand.Rand
	faults []*fault
}

// next returns the fault that handles this /graphql request, or nil. Faults are checked in spec order;
// the first that fires handles the request and later ones do not see it.
func (fs *faultState) next() *fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, f := range fs.faults {
		if f.fire(fs.rng) {
			c := *f
			return &c
		}
	}
	return nil
}

// SetFaults replaces the active fault spec ("" clears every fault) and resets the trigger counters.
func (s *Server) SetFaults(spec string) error {
	fl, err := parseFaults(spec)
	if err != nil {
		return err
	}
	s.faults.mu.Lock()
	s.faults.faults = fl
	s.faults.mu.Unlock()
	return nil
}
