package sink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
)

// verifyStandardWebhook checks a request the way a Standard Webhooks receiver does (written from
// the specification, independently of the sink): the secret is whsec_<base64 key>; the signed
// content is "<webhook-id>.<webhook-timestamp>.<body>"; webhook-signature is a space-separated list
// of "v1,<base64 HMAC-SHA256>", one of which must match; the timestamp must be within 5 minutes.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s outside the tolerance", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func newTestWebhook(t *testing.T, url string, mod func(*config.Sink)) *Webhook {
	t.Helper()
	cfg := config.DefaultSink(config.SinkWebhook)
	cfg.Name, cfg.URL, cfg.Secret = "hook", url, testWebhookSecret
	if mod != nil {
		mod(&cfg)
	}
	w, err := NewWebhook(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestWebhookWireFormat(t *testing.T) {
	tests := []struct {
		name   string
		bearer string
		path   string
	}{
		{name: "signed only", path: "/hooks/wiz"},
		{name: "signed with bearer", bearer: "bearer-token-value", path: "/in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			type got struct {
				path, method, ctype, auth, id, ts string
				length                            int64
				chunked                           bool
				body                              []byte
				verr                              error
			}
			var mu sync.Mutex
			var reqs []got
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body := readAll(t, r)
				g := got{
					path: r.URL.Path, method: r.Method, ctype: r.Header.Get("Content-Type"),
					auth: r.Header.Get("Authorization"), id: r.Header.Get("webhook-id"),
					ts: r.Header.Get("webhook-timestamp"), length: r.ContentLength,
					chunked: len(r.TransferEncoding) > 0, body: body,
					verr: verifyStandardWebhook(testWebhookSecret, r.Header, body, time.Unix(1_700_000_000, 0)),
				}
				mu.Lock()
				reqs = append(reqs, g)
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			w := newTestWebhook(t, srv.URL+tc.path, func(c *config.Sink) { c.BearerToken = config.Secret(tc.bearer) })
			w.now = func() time.Time { return time.Unix(1_700_000_000, 0) }
			lines := [][]byte{testEvent(t, "created", "A", "OPEN", 0), testEvent(t, "updated", "A", "RESOLVED", 1)}
			if n, err := w.Deliver(context.Background(), itemsOf(lines...)); n != 2 || err != nil {
				t.Fatalf("Deliver = %d, %v; want 2, nil", n, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want one per event (2)", len(reqs))
			}
			for i, g := range reqs {
				if g.verr != nil {
					t.Errorf("request %d: signature does not verify: %v", i, g.verr)
				}
				if g.method != http.MethodPost || g.path != tc.path || g.ctype != "application/json" {
					t.Errorf("request %d: %s %s %s, want POST %s application/json", i, g.method, g.path, g.ctype, tc.path)
				}
				if string(g.body) != string(lines[i]) {
					t.Errorf("request %d: body is not the event line as stored:\n%s\n%s", i, g.body, lines[i])
				}
				if g.length != int64(len(lines[i])) || g.chunked {
					t.Errorf("request %d: Content-Length %d chunked %v, want %d", i, g.length, g.chunked, len(lines[i]))
				}
				if g.id != idOf(t, lines[i]) || g.ts != "1700000000" {
					t.Errorf("request %d: webhook-id %s timestamp %s, want %s 1700000000", i, g.id, g.ts, idOf(t, lines[i]))
				}
				wantAuth := ""
				if tc.bearer != "" {
					wantAuth = "Bearer " + tc.bearer
				}
				if g.auth != wantAuth {
					t.Errorf("request %d: Authorization %q, want %q", i, g.auth, wantAuth)
				}
			}
		})
	}
}

// TestWebhookSignatureKnownAnswer pins the signature to a value computed by hand with openssl:
// printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' | openssl dgst -sha256 \
// -mac HMAC -macopt hexkey:$(echo MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | xxd -p) -binary | base64
// (the example of the Standard Webhooks specification).
func TestWebhookSignatureKnownAnswer(t *testing.T) {
	key, err := webhookKey(testWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	got := signWebhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
}

func TestNewWebhookRejectsBadSecret(t *testing.T) {
	for _, secret := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!!", "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		t.Run(secret, func(t *testing.T) {
			cfg := config.DefaultSink(config.SinkWebhook)
			cfg.Name, cfg.URL, cfg.Secret = "hook", "https://example.com/in", config.Secret(secret)
			_, err := NewWebhook(cfg, nil)
			if err == nil {
				t.Fatal("NewWebhook accepted the secret")
			}
			if len(secret) > 6 && strings.Contains(err.Error(), secret[6:]) {
				t.Errorf("error holds the secret: %v", err)
			}
		})
	}
}

func TestWebhookFailures(t *testing.T) {
	const bearer = "bearer-secret-xyz"
	tests := []struct {
		status     int
		permanent  bool
		retryAfter string
		wantWait   time.Duration
	}{
		{status: 400, permanent: true},
		{status: 401, permanent: true},
		{status: 404, permanent: true},
		{status: 413, permanent: true},
		{status: 408},
		{status: 429, retryAfter: "7", wantWait: 7 * time.Second},
		{status: 502},
		{status: 503, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"}, // in the past: no wait
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				if n < 3 {
					return // the first two events pass
				}
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, "refused; you sent %s", r.Header.Get("Authorization"))
			}))
			defer srv.Close()
			w := newTestWebhook(t, srv.URL+"/in?token=query-secret", func(c *config.Sink) { c.BearerToken = bearer })
			items := itemsOf(testEvent(t, "created", "A", "OPEN", 0), testEvent(t, "created", "B", "OPEN", 0),
				testEvent(t, "created", "C", "OPEN", 0), testEvent(t, "created", "D", "OPEN", 0))
			n, err := w.Deliver(context.Background(), items)
			if n != 2 || err == nil {
				t.Fatalf("Deliver = %d, %v; want 2 and an error", n, err)
			}
			if errors.Is(err, ErrPermanent) != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", !tc.permanent, tc.permanent, err)
			}
			if wait, _ := RetryAfter(err); wait != tc.wantWait {
				t.Errorf("RetryAfter = %v, want %v", wait, tc.wantWait)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("HTTP %d", tc.status)) || !strings.Contains(msg, idOf(t, items[2].Data)) {
				t.Errorf("error %q names neither the status nor the event", msg)
			}
			if strings.Contains(msg, bearer) || strings.Contains(msg, "query-secret") {
				t.Errorf("error holds a secret: %q", msg)
			}
		})
	}
}
