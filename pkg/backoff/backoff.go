// Package backoff computes retry delays: exponential, capped, with jitter.
package backoff

import (
	"math/rand/v2"
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
