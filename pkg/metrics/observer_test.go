package metrics

import (
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/status"
)

// The wiz observer hands the retry cause to the watched status tracker (and ignores it while none
// is watched), so /v1/status shows it at the first failed attempt.
func TestWizObserverReportsRetryCause(t *testing.T) {
	m := New("1.2.3")
	obs := m.WizObserver("eu")
	obs.OnRetrying("token", "token request: before any tracker") // no tracker yet: dropped

	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tr := status.New("1.2.3", func() time.Time { return now })
	m.WatchStatus(tr)
	obs.OnRetrying("token", "token request: proxyconnect tcp: connection refused")
	s := tr.Snapshot()
	if len(s.Retrying) != 1 || s.Retrying[0].Instance != "eu" ||
		s.Retrying[0].Cause != "token request: proxyconnect tcp: connection refused" {
		t.Fatalf("retrying = %+v", s.Retrying)
	}
	obs.OnRetrying("token", "")
	if s := tr.Snapshot(); len(s.Retrying) != 0 {
		t.Fatalf("retrying after recovery = %+v", s.Retrying)
	}
}
