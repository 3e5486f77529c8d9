package backoff

import (
	"testing"
	"time"
)

func TestDelayGrowsAndIsCapped(t *testing.T) {
	for _, tc := range []struct {
		n        int
		min, max time.Duration
	}{
		{1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{2, 1600 * time.Millisecond, 2400 * time.Millisecond},
		{4, 6400 * time.Millisecond, 9600 * time.Millisecond},
		{30, 48 * time.Second, 72 * time.Second},
	} {
		for i := 0; i < 50; i++ {
			if d := Delay(time.Second, time.Minute, tc.n); d < tc.min || d > tc.max {
				t.Fatalf("Delay(n=%d) = %v, want within [%v, %v]", tc.n, d, tc.min, tc.max)
			}
		}
	}
}
