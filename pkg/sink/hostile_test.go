package sink

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/config"
)

// TestSinksDoNotFollowRedirects: a receiver that redirects (307 keeps the method and body) never
// makes a sink re-send its credentials to the redirect's target; the failure is permanent and says
// where the redirect pointed, without the target's query.
func TestSinksDoNotFollowRedirects(t *testing.T) {
	var stolen atomic.Int32
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer thief.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, thief.URL+"/collect?sig=abcdef0123", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	hook := newTestWebhook(t, redirector.URL+"/hook", func(c *config.Sink) { c.BearerToken = "bearer-secret-123456" })
	splunk, err := NewSplunkHEC(func() config.Sink {
		c := config.DefaultSink(config.SinkSplunkHEC)
		c.Name, c.URL, c.Token = "hec", redirector.URL, "hec-token-0123456789"
		return c
	}(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer splunk.Close()
	xs, _ := newTestXSOAR(t, redirector.URL, nil)
	for _, s := range []Sink{hook, splunk, xs} {
		t.Run(s.Name(), func(t *testing.T) {
			_, err := s.Deliver(context.Background(), itemsOf(testEvent(t, "created", "7c9e6679-7425-40de-944b-e07fc1f90ae7", "OPEN", 1)))
			if err == nil {
				t.Fatal("delivery through a redirect succeeded")
			}
			if !errors.Is(err, ErrPermanent) {
				t.Fatalf("a redirect is not a permanent failure: %v", err)
			}
			if !strings.Contains(err.Error(), "redirected to "+thief.URL+"/collect") || strings.Contains(err.Error(), "abcdef0123") {
				t.Fatalf("the error does not name the target, or shows its query: %v", err)
			}
		})
	}
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the redirect's target got %d requests", n)
	}
}

// TestEchoedCredentialsAreMasked: a receiver that echoes the whole request (headers and body) in
// its error shows none of the sink's credentials in the error — neither the API key or token nor
// the user info of the sink URL, which Go sends as a base64 Basic header — even when the echo is
// longer than the reason's cut.
func TestEchoedCredentialsAreMasked(t *testing.T) {
	const password = "url-pass-0123456789"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b strings.Builder
		// Put the credentials at the very start, where a cut of the reason would keep their prefix.
		fmt.Fprintf(&b, "%s|%s|%s|", r.Header.Get("Authorization"), r.URL.RawQuery, r.Header.Get("X-Api-Key"))
		b.WriteString(strings.Repeat("x", 400))
		b.Write(body)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, b.String())
	}))
	defer echo.Close()
	u, _ := url.Parse(echo.URL)
	u.User = url.UserPassword("svc", password)
	u.RawQuery = "token=query-token-0123456789"

	splunk, err := NewSplunkHEC(func() config.Sink {
		c := config.DefaultSink(config.SinkSplunkHEC)
		c.Name, c.URL, c.Token = "hec", u.String(), "hec-token-0123456789"
		return c
	}(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer splunk.Close()
	hook := newTestWebhook(t, u.String(), nil)
	for _, s := range []Sink{splunk, hook} {
		_, err := s.Deliver(context.Background(), itemsOf(testEvent(t, "created", "7c9e6679-7425-40de-944b-e07fc1f90ae7", "OPEN", 1)))
		if err == nil {
			t.Fatalf("%s: delivery succeeded", s.Name())
		}
		var he *HTTPError
		if !errors.As(err, &he) {
			t.Fatalf("%s: %v", s.Name(), err)
		}
		basic := base64.StdEncoding.EncodeToString([]byte("svc:" + password))
		for _, leak := range []string{password, basic, basic[:12], "hec-token-0123456789", "hec-token-01", "query-token-0123456789"} {
			for _, text := range []string{err.Error(), he.Reason, he.body} {
				if strings.Contains(text, leak) {
					t.Fatalf("%s: %q leaks in %q", s.Name(), leak, text)
				}
			}
		}
	}
}
