package metrics

import (
	"time"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// WizObserver returns the wiz.Observer of one instance's client: HTTP attempts by endpoint and
// status code, their duration, retries by reason and token refreshes by result; the cause of the
// retries under way goes to the watched status tracker (OnRetrying).
func (m *Metrics) WizObserver(instance string) wiz.Observer {
	return wizObserver{m: m, instance: instance}
}

type wizObserver struct {
	m        *Metrics
	instance string
}

var _ wiz.Observer = wizObserver{}

// OnRequest implements wiz.Observer.
func (o wizObserver) OnRequest(endpoint string, status int, d time.Duration) {
	ep := endpointLabel(endpoint)
	o.m.apiRequests.WithLabelValues(o.instance, ep, codeLabel(status)).Inc()
	o.m.apiDuration.WithLabelValues(o.instance, ep).Observe(d.Seconds())
}

// OnRetry implements wiz.Observer.
func (o wizObserver) OnRetry(reason string) {
	o.m.apiRetries.WithLabelValues(o.instance, retryLabel(reason)).Inc()
}

// OnRetrying implements wiz.Observer: the cause goes to the status tracker being watched
// (WatchStatus), so that /v1/status and the status page show at once why the instance's requests
// are being retried (an unreachable proxy, say), not only after the retry budget. The cause is
// free text: it never becomes a label.
func (o wizObserver) OnRetrying(_, cause string) {
	if t := o.m.statusWatch.Load(); t != nil {
		t.WizRetrying(o.instance, cause)
	}
}

// OnTokenRefresh implements wiz.Observer.
func (o wizObserver) OnTokenRefresh(ok bool) {
	o.m.tokenRefreshes.WithLabelValues(o.instance, resultLabel(ok)).Inc()
}
