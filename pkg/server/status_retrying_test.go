package server

import (
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/status"
)

// An instance whose Wiz requests are being retried shows the cause in /v1/status and on the page
// at once; an instance without feeds (push-only) gets its own entry for it.
func TestStatusShowsRetryCause(t *testing.T) {
	now := fixedNow
	tr := status.New("1.2.3", func() time.Time { return now })
	tr.AddFeed("default", feed.Created)
	tr.WizRetrying("default", "token request: proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: connection refused")
	tr.WizRetrying("push", "graphql request: HTTP 503 Service Unavailable")
	now = now.Add(90 * time.Second)
	s := newServer(t, Options{Tracker: tr})

	doc := decode[StatusDoc](t, get(t, s.Handler(), "GET", "/v1/status", ""))
	if len(doc.Instances) != 2 || doc.Instances[0].Name != "default" || doc.Instances[1].Name != "push" {
		t.Fatalf("instances = %+v", doc.Instances)
	}
	if got := doc.Instances[0].Retrying; !strings.Contains(got, "connection refused") {
		t.Errorf("default retrying = %q", got)
	}
	if !doc.Instances[0].RetryingSince.Equal(fixedNow) {
		t.Errorf("default retrying since %v, want %v", doc.Instances[0].RetryingSince, fixedNow)
	}
	if got := doc.Instances[1].Retrying; got != "graphql request: HTTP 503 Service Unavailable" || len(doc.Instances[1].Feeds) != 0 {
		t.Errorf("push instance = %+v", doc.Instances[1])
	}

	body := get(t, s.Handler(), "GET", "/", "").Body.String()
	for _, want := range []string{
		"Retrying Wiz requests (first failure 1m 30s ago): token request: proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: connection refused",
		"Instance push",
		"graphql request: HTTP 503 Service Unavailable",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	tr.WizRetrying("default", "")
	doc = decode[StatusDoc](t, get(t, s.Handler(), "GET", "/v1/status", ""))
	if doc.Instances[0].Retrying != "" || !doc.Instances[0].RetryingSince.IsZero() {
		t.Errorf("default still retrying: %+v", doc.Instances[0])
	}
}
