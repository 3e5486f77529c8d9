package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wizfetch/wizfetch/pkg/backoff"
	"github.com/wizfetch/wizfetch/pkg/certpool"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/redact"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// defaultTimeout bounds one HTTP request when the sink config leaves timeout at zero.
const defaultTimeout = 30 * time.Second

// userAgent names the product in every sink request.
const userAgent = "wizfetch"

// Response bodies are read only this far: enough for an XSOAR incident (which echoes rawJSON) and
// for error reasons, never an unbounded read from a misbehaving receiver.
const (
	maxResponseBody = 16 << 20
	maxReasonLen    = 300
	maxMatchBody    = 4 << 10
)

// HTTPError is a non-2xx answer of a sink's receiver. Its message names the method, the URL without
// query or credentials, the status and the receiver's reason; it never holds a secret of the sink
// (every configured secret is masked as *** in the reason).
type HTTPError struct {
	Method string
	URL    string // scheme://host/path only
	Status int
	// Reason is the receiver's explanation: a message field of a JSON error body, else the start of
	// the body, on one line.
	Reason string
	// RetryAfter is the receiver's Retry-After (429, 503), zero when absent or unparsable.
	RetryAfter time.Duration

	body string // the start of the body, redacted, for protocol decisions (XSOAR version conflicts)
}

// Error implements error.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// RetryAfter returns the delay a receiver asked for with Retry-After, if err carries one. The
// dispatcher may use it as a floor for its backoff.
func RetryAfter(err error) (time.Duration, bool) {
	var he *HTTPError
	if errors.As(err, &he) && he.RetryAfter > 0 {
		return he.RetryAfter, true
	}
	return 0, false
}

// permanentStatus reports whether retrying a request answered with status cannot help: every 4xx
// except 408 (request timeout), 425 (too early) and 429 (throttled). 400, 401, 403, 404, 413 and 422
// are the common ones (bad body, bad credentials, wrong URL, too large, rejected content).
func permanentStatus(status int) bool {
	if status < 400 || status >= 500 {
		return false
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return true
}

// httpSender is the HTTP plumbing every remote sink shares: a client with the sink's timeout and TLS
// settings, buffered bodies with Content-Length, and status classification with redacted reasons.
type httpSender struct {
	client   *http.Client
	redactor *redact.Redactor // masks the sink's secrets, in every encoding, in every error text
	log      *slog.Logger
}

// newHTTPSender builds the client of cfg: cfg.Timeout per request (30s when zero), the system
// roots plus cfg.CAFile, cfg.InsecureSkipVerify, the standard proxy variables. secrets are the
// values to mask in error texts, besides the credentials cfg.URL itself carries (user info, query
// values).
//
// Redirects are not followed: every sink request carries a credential (an API key, a token, a
// signature, user info from the URL), and a receiver, proxy or CDN that redirects must not get it
// re-sent to another host. A 3xx answer is a permanent failure naming where it pointed.
func newHTTPSender(cfg config.Sink, log *slog.Logger, secrets ...string) (*httpSender, error) {
	timeout := cfg.Timeout.D()
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	tr := base.Clone()
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := certpool.WithFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	if cfg.InsecureSkipVerify {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // the operator asked for it; config validate warns.
	}
	tr.TLSClientConfig = tlsCfg
	secrets = append(secrets, redact.URLSecrets(cfg.URL)...)
	return &httpSender{
		client: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		redactor: redact.New(secrets...),
		log:      log,
	}, nil
}

// response is a receiver's answer, its body read (up to maxResponseBody).
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request with body buffered (so Content-Length is set and retries can replay it)
// and reads the answer. A non-2xx answer is returned as an *HTTPError, wrapped with Permanent when
// retrying cannot help; a network failure is a plain (retryable) error. The response is returned
// with the error when there was one.
func (h *httpSender) do(ctx context.Context, method, rawURL string, header http.Header, body []byte) (*response, error) {
	shown := redact.URL(rawURL)
	// The transport may still be writing the body when Do returns (a receiver can answer before it
	// has read it all), while the caller reuses its buffers for the next batch: send a copy.
	req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(bytes.Clone(body)))
	if err != nil {
		// The URL itself may hold credentials: name only its redacted form.
		return nil, Permanent(fmt.Errorf("build request %s %s", method, shown))
	}
	if body == nil {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", userAgent)
	res, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the full URL
		}
		return nil, fmt.Errorf("%s %s: %s", method, shown, h.redact(err.Error()))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response (HTTP %d): %s", method, shown, res.StatusCode, h.redact(err.Error()))
	}
	resp := &response{status: res.StatusCode, header: res.Header, body: b}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return resp, nil
	}
	// Mask before anything is cut: a cut could otherwise leave a prefix of a secret.
	masked := []byte(h.redact(string(b)))
	he := &HTTPError{
		Method:     method,
		URL:        shown,
		Status:     res.StatusCode,
		Reason:     reasonOf(masked),
		RetryAfter: backoff.RetryAfter(res.Header.Get("Retry-After"), time.Now()),
		body:       string(masked[:min(len(masked), maxMatchBody)]),
	}
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		he.Reason = "the receiver redirected to " + redact.URL(res.Header.Get("Location")) +
			"; redirects are not followed (they would re-send credentials): configure the final URL"
		return resp, Permanent(he)
	}
	if permanentStatus(res.StatusCode) {
		return resp, Permanent(he)
	}
	return resp, he
}

// redact masks every secret of the sink in s.
func (h *httpSender) redact(s string) string {
	return h.redactor.String(s)
}

// close drops idle connections.
func (h *httpSender) close() { h.client.CloseIdleConnections() }

// reasonOf extracts a one-line explanation from an error body: the first string among the usual
// message fields of a JSON body (Splunk "text", XSOAR "detail"/"error"/"title", "message"), else the
// start of the body.
func reasonOf(body []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		for _, k := range []string{"text", "detail", "error", "message", "title", "reason"} {
			var s string
			if raw, ok := obj[k]; ok && json.Unmarshal(raw, &s) == nil && strings.TrimSpace(s) != "" {
				return oneLine(s)
			}
		}
	}
	return oneLine(string(body))
}

// oneLine collapses whitespace and cuts s to maxReasonLen bytes on a rune boundary.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxReasonLen {
		return s
	}
	cut := maxReasonLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// joinURL appends path to base's path, with exactly one slash between them; base's query is kept.
func joinURL(base, path string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", errors.New("url is not an absolute http(s) URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("url scheme %q is not http or https", u.Scheme)
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	return u.String(), nil
}

// eventLine is the part of an outbox event line (DESIGN.md §6) the remote sinks need.
type eventLine struct {
	EventID   string          `json:"event_id"`
	Kind      string          `json:"kind"`
	Instance  string          `json:"instance"`
	IssueID   string          `json:"issue_id"`
	EmittedAt string          `json:"emitted_at"`
	Incident  json.RawMessage `json:"incident"`
}

// parseEvent reads an outbox item; an item that is not an event line is a permanent failure (it can
// never be rendered, so it goes to the dead letter).
func parseEvent(it store.OutboxItem) (eventLine, error) {
	var ev eventLine
	if err := json.Unmarshal(it.Data, &ev); err != nil {
		return ev, Permanent(fmt.Errorf("event seq %d is not valid JSON: %w", it.Seq, err))
	}
	if ev.EventID == "" {
		return ev, Permanent(fmt.Errorf("event seq %d has no event_id", it.Seq))
	}
	return ev, nil
}
