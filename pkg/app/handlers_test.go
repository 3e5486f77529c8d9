package app

import (
	"testing"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/metrics"
)

// Every refetch outcome maps onto one value of wizfetch_push_processed_total{result}; a pushed
// issue that cannot be an incident has its own.
func TestPushResult(t *testing.T) {
	tests := []struct {
		outcome, want string
	}{
		{feed.PushCreated, metrics.PushResultOK},
		{feed.PushUpdated, metrics.PushResultOK},
		{feed.PushUnchanged, metrics.PushResultIgnored},
		{feed.PushNotMatching, metrics.PushResultIgnored},
		{feed.PushNotFound, metrics.PushResultNotFound},
		{feed.PushRejected, metrics.PushResultRejected},
		{"error", metrics.PushResultError},
		{"unknown_instance", metrics.PushResultIgnored},
	}
	for _, tc := range tests {
		t.Run(tc.outcome, func(t *testing.T) {
			if got := pushResult(tc.outcome); got != tc.want {
				t.Errorf("pushResult(%q) = %q, want %q", tc.outcome, got, tc.want)
			}
		})
	}
}
