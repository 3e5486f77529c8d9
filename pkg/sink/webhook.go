package sink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// Webhook POSTs each event, one per request, to a URL, signed the Standard Webhooks way
// (WIZ_API.md §8, https://www.standardwebhooks.com): the body is the event line exactly as it sits
// in the outbox, and the headers are
//
//	webhook-id: <event_id>                    (stable across retries, DESIGN.md §2.8)
//	webhook-timestamp: <unix seconds>         (of this attempt)
//	webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>
//	Content-Type: application/json
//	Authorization: Bearer <bearer_token>      (only when one is configured)
//
// where key is the base64 decoding of the secret after "whsec_". A receiver deduplicates on
// webhook-id, so at-least-once delivery is safe.
type Webhook struct {
	name   string
	url    string
	key    []byte
	bearer string
	http   *httpSender
	now    func() time.Time
}

// NewWebhook builds the webhook sink of cfg (secrets already resolved). The secret must be
// "whsec_" followed by a standard base64 key; config validate does not check it, so this is where a
// malformed secret is reported (without its value).
func NewWebhook(cfg config.Sink, log *slog.Logger) (*Webhook, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key, err := webhookKey(cfg.Secret.Reveal())
	if err != nil {
		return nil, fmt.Errorf("webhook sink %s: secret: %w", cfg.Name, err)
	}
	if _, err := joinURL(cfg.URL, ""); err != nil {
		return nil, fmt.Errorf("webhook sink %s: %w", cfg.Name, err)
	}
	secret := cfg.Secret.Reveal()
	hs, err := newHTTPSender(cfg, log, secret, strings.TrimPrefix(secret, "whsec_"), cfg.BearerToken.Reveal())
	if err != nil {
		return nil, fmt.Errorf("webhook sink %s: %w", cfg.Name, err)
	}
	return &Webhook{
		name:   cfg.Name,
		url:    cfg.URL,
		key:    key,
		bearer: cfg.BearerToken.Reveal(),
		http:   hs,
		now:    time.Now,
	}, nil
}

// webhookKey decodes a Standard Webhooks secret "whsec_<base64>".
func webhookKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok || b64 == "" {
		return nil, errors.New(`must be "whsec_" followed by a base64 key (Standard Webhooks)`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New(`the part after "whsec_" is not standard base64`)
	}
	return key, nil
}

// signWebhook returns the Standard Webhooks signature header value for one attempt.
func signWebhook(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Name implements Sink.
func (w *Webhook) Name() string { return w.name }

// Close implements Sink.
func (w *Webhook) Close() error {
	w.http.close()
	return nil
}

// Deliver implements Sink: one signed request per event, in order, stopping at the first failure.
func (w *Webhook) Deliver(ctx context.Context, items []store.OutboxItem) (int, error) {
	for i, it := range items {
		if err := w.send(ctx, it); err != nil {
			return i, err
		}
	}
	return len(items), nil
}

func (w *Webhook) send(ctx context.Context, it store.OutboxItem) error {
	ev, err := parseEvent(it)
	if err != nil {
		return fmt.Errorf("webhook sink %s: %w", w.name, err)
	}
	ts := w.now().Unix()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	// Set as the spec spells them (lower case); header names are case-insensitive anyway.
	h["webhook-id"] = []string{ev.EventID}
	h["webhook-timestamp"] = []string{strconv.FormatInt(ts, 10)}
	h["webhook-signature"] = []string{signWebhook(w.key, ev.EventID, ts, it.Data)}
	if w.bearer != "" {
		h.Set("Authorization", "Bearer "+w.bearer)
	}
	if _, err := w.http.do(ctx, http.MethodPost, w.url, h, it.Data); err != nil {
		return fmt.Errorf("webhook sink %s: deliver event %s: %w", w.name, ev.EventID, err)
	}
	return nil
}

var _ Sink = (*Webhook)(nil)
