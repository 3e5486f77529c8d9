// Package backoff computes retry delays — exponential, capped, with jitter — and reads the delays a
// server asks for (Retry-After). It is the one place wizfetch's retry timing comes from.
package backoff

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Delay is the wait before retry number n (1-based): base·2^(n-1) capped at max, with ±20 % jitter so
// that many feeds or sinks failing together do not retry in lockstep.
func Delay(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// FullJitter is the wait before retry number attempt (0-based) of a request to a remote API: a
// uniformly random delay in [0, min(max, base·2^attempt)) ("full jitter", which spreads the retries of
// many clients throttled together best).
func FullJitter(base, max time.Duration, attempt int) time.Duration {
	d := max
	if attempt < 32 && base<<attempt > 0 {
		d = min(base<<attempt, max)
	}
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// RetryAfter reads a Retry-After header value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date,
// relative to now. Anything else, and a time in the past, is zero.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Sleep waits d or until ctx ends, and reports whether ctx is still alive.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
