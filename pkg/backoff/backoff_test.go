package backoff

import (
	"context"
	"net/http"
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

func TestFullJitterBounds(t *testing.T) {
	base, max := 500*time.Millisecond, 30*time.Second
	for attempt := range 70 {
		limit := max
		if attempt < 16 {
			limit = min(base<<attempt, max)
		}
		for range 50 {
			if d := FullJitter(base, max, attempt); d < 0 || d >= limit {
				t.Fatalf("attempt %d: %v outside [0, %v)", attempt, d, limit)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{" 10 ", 10 * time.Second},
		{"-1", 0},
		{"0", 0},
		{"soon", 0},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{now.Add(-3 * time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := RetryAfter(tt.in, now); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !Sleep(ctx, time.Millisecond) {
		t.Fatal("Sleep reported an ended context while it was alive")
	}
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep on an ended context reported it alive")
	}
	if time.Since(start) > time.Minute {
		t.Fatal("Sleep waited out its delay on an ended context")
	}
}
