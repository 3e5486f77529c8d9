package wiz

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/backoff"
	"github.com/wizfetch/wizfetch/pkg/certpool"
	"github.com/wizfetch/wizfetch/pkg/redact"
	"golang.org/x/time/rate"
)

// Backoff parameters of the retrying transport (full jitter, WIZ_API.md §2).
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 30 * time.Second
)

// jitterBackoff is the transport's retry delay (full jitter between backoffBase and backoffCap).
func jitterBackoff(attempt int) time.Duration {
	return backoff.FullJitter(backoffBase, backoffCap, attempt)
}

// baseTransport builds the transport every request finally goes through: the caller's
// HTTPClient transport, or one with the configured proxy and CA bundle.
func baseTransport(opts Options) (http.RoundTripper, error) {
	if opts.HTTPClient != nil {
		if opts.HTTPClient.Transport != nil {
			return opts.HTTPClient.Transport, nil
		}
		return http.DefaultTransport, nil
	}
	if opts.Transports != nil {
		return opts.Transports.get(opts)
	}
	return newBaseTransport(opts)
}

// newBaseTransport builds a transport with the configured proxy and CA bundle.
func newBaseTransport(opts Options) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	if opts.Proxy != "" {
		u, err := url.Parse(opts.Proxy)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("wiz.proxy: %q is not an absolute URL (scheme://[user:password@]host:port)", shownProxy(opts.Proxy))
		}
		tr.Proxy = http.ProxyURL(u)
	}
	if opts.CAFile != "" {
		pool, err := certpool.WithFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("wiz.ca_file: %w", err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}

// shownProxy renders a wiz.proxy that did not parse as an absolute URL, for its error: nothing of
// what precedes the last "@" but the scheme. redact.URL (url.URL.Redacted) is not enough there: it
// keeps the password of an opaque "user:password@host:3128", which parses with scheme "user".
func shownProxy(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return redact.URL(raw)
	}
	scheme := ""
	if i := strings.Index(raw[:at], "://"); i >= 0 {
		scheme = raw[:i+3]
	}
	return scheme + redact.Mask + "@" + raw[at+1:]
}

// retryTransport paces, times out and retries requests to one endpoint. It buffers the request
// body so every attempt replays it with a Content-Length, retries 429, 500, 502, 503, 504 and
// network errors with full-jitter exponential backoff (a Retry-After header is a minimum), and
// gives up after retryFor, returning the last response or error for the caller to classify. It
// never follows a redirect (a 3xx is an error naming the target: redirectError) and bounds every
// response body it hands back (boundedBody).
type retryTransport struct {
	base      http.RoundTripper
	endpoint  string        // "graphql" or "token", for logs and metrics
	limiter   *rate.Limiter // nil: unpaced
	timeout   time.Duration // per attempt
	retryFor  time.Duration
	userAgent string
	backoff   func(attempt int) time.Duration
	log       *slog.Logger
	obs       Observer
	// maxBody bounds a 2xx body unless the request's context sets another bound (withBodyLimit).
	maxBody int64
	// mask hides the tenant's secrets (client secret, access token, proxy password) in the causes
	// it logs and reports; nil masks nothing.
	mask func(string) string
}

type noRetryKey struct{}

// withUnsafeRetries marks a request as not idempotent: only 429s (which Wiz never processed) are
// retried, not 5xx or network errors that may have followed a successful write.
func withUnsafeRetries(ctx context.Context) context.Context {
	return context.WithValue(ctx, noRetryKey{}, true)
}

// RoundTrip implements http.RoundTripper.
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("buffer request body: %w", err)
		}
		body = b
	}
	onlyThrottle, _ := ctx.Value(noRetryKey{}).(bool)
	start := time.Now()
	for attempt := 0; ; attempt++ {
		if t.limiter != nil {
			if err := t.limiter.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("wait for rate limiter: %w", ctx.Err())
				}
				return nil, errNoSlot // the next slot is after the caller's deadline
			}
		}
		resp, cancel, err := t.attempt(ctx, req, body)
		reason, retryAfter := retryReason(ctx, resp, err)
		if reason != "" && onlyThrottle && reason != "429" {
			reason = ""
		}
		wait, retry := time.Duration(0), reason != ""
		if retry {
			wait, retry = t.retryWait(reason, attempt, start, retryAfter)
		}
		if !retry {
			if attempt > 0 {
				t.obs.OnRetrying(t.endpoint, "") // no longer retrying, whatever the outcome
			}
			if err == nil && isRedirect(resp.StatusCode) {
				rerr := t.redirectError(req, resp)
				_ = drainAndClose(resp.Body, cancel)
				cancel()
				return nil, rerr
			}
			return t.finish(ctx, resp, cancel, err)
		}
		cause := t.attemptCause(resp, err)
		if resp != nil {
			_ = drainAndClose(resp.Body, cancel)
		}
		cancel()
		if err := t.pause(ctx, reason, cause, attempt, wait); err != nil {
			return nil, err
		}
	}
}

// attemptCause describes why an attempt failed, for the retry log line and the status page: the
// network error or the HTTP status, masked (mask) and then shortened.
func (t *retryTransport) attemptCause(resp *http.Response, err error) string {
	var cause string
	if err != nil {
		cause = err.Error()
	} else {
		cause = fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return t.maskCause(cause)
}

// maskCause prefixes cause with the endpoint, masks the tenant's secrets in it, then shortens it
// (in that order, so that no prefix of a secret survives the cut).
func (t *retryTransport) maskCause(cause string) string {
	if t.mask != nil {
		cause = t.mask(cause)
	}
	return shorten(t.endpoint + " request: " + cause)
}

// retryWait returns how long to wait before retry number attempt+1 of a request first sent at
// start: the backoff, at least retryAfter. ok is false (and the give-up logged) when that wait
// would end after retryFor.
func (t *retryTransport) retryWait(reason string, attempt int, start time.Time, retryAfter time.Duration) (wait time.Duration, ok bool) {
	wait = max(t.backoff(attempt), retryAfter)
	if time.Since(start)+wait > t.retryFor {
		t.log.Warn("giving up retrying", "endpoint", t.endpoint, "reason", reason,
			"attempts", attempt+1, "elapsed", time.Since(start).Round(time.Millisecond))
		return 0, false
	}
	return wait, true
}

// pause counts, reports and logs a retry for reason (the retry metric's label: "429", "503",
// "network") and cause (attemptCause: what an operator needs to see at once, e.g. an unreachable
// proxy, rather than after the retry budget), then waits, or returns early with ctx's error.
func (t *retryTransport) pause(ctx context.Context, reason, cause string, attempt int, wait time.Duration) error {
	t.obs.OnRetry(reason)
	t.obs.OnRetrying(t.endpoint, cause)
	t.log.Info("retrying request", "endpoint", t.endpoint, "reason", reason, "cause", cause,
		"attempt", attempt+1, "wait_ms", wait.Milliseconds()) // milliseconds, as the fetch line's duration_ms
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("retry %s request: %w", t.endpoint, ctx.Err())
	case <-timer.C:
		return nil
	}
}

// retryThrottled runs call again, after the transport's backoff, while Wiz answers it with
// RATE_LIMIT_EXCEEDED inside an HTTP 200 (throttledInBody). That is throttling, exactly as an HTTP
// 429 is (Wiz maps the code to 429: Wiz's Backstage plugin, types/index.ts), so it is retried and
// counted as a "429" retry, within a retryFor budget of its own, and even for a request that is not
// idempotent: a throttled request was not processed. Once the budget is spent the last error
// (ErrTransient) is returned.
func retryThrottled[T any](ctx context.Context, t *retryTransport, op string, call func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		v, err := call(ctx)
		wait, retry := time.Duration(0), err != nil && throttledInBody(err) && ctx.Err() == nil
		if retry {
			wait, retry = t.retryWait("429", attempt, start, 0)
		}
		if !retry {
			if attempt > 0 {
				t.obs.OnRetrying(t.endpoint, "")
			}
			return v, err
		}
		if perr := t.pause(ctx, "429", t.maskCause(err.Error()), attempt, wait); perr != nil {
			var zero T
			return zero, fmt.Errorf("wiz %s: %w", op, perr)
		}
	}
}

// attempt sends one copy of req with its own timeout; the returned cancel must be called once
// the response body is done with.
func (t *retryTransport) attempt(ctx context.Context, req *http.Request, body []byte) (*http.Response, context.CancelFunc, error) {
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	r := req.Clone(actx)
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	if t.userAgent != "" {
		r.Header.Set("User-Agent", t.userAgent)
	}
	began := time.Now()
	resp, err := t.base.RoundTrip(r)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.obs.OnRequest(t.endpoint, status, time.Since(began))
	return resp, cancel, err
}

// finish hands the response back with its body bounded (boundedBody) and tied to the attempt's
// context.
func (t *retryTransport) finish(ctx context.Context, resp *http.Response, cancel context.CancelFunc, err error) (*http.Response, error) {
	if err != nil || resp == nil {
		cancel()
		return resp, err
	}
	limit := t.maxBody
	if n, ok := ctx.Value(bodyLimitKey{}).(int64); ok {
		limit = n
	}
	raw := resp.Body
	resp.Body = &cancelOnClose{Reader: boundedBody(resp, limit), raw: raw, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.Reader                    // the bounded body the caller reads (boundedBody)
	raw       io.ReadCloser      // the connection's body, drained on Close
	cancel    context.CancelFunc // ends the attempt's context
}

// Close reads what the caller left of the body (up to drainLimit) before closing it: net/http
// reuses a connection only once its body has been read to the end, and a JSON decoder stops at the
// value's last byte — before a chunked body's terminating chunk, or a trailing newline — so without
// this every request would open a new connection (and, against Wiz, a new TLS session). A rest
// that does not come within drainTimeout is given up, with the connection.
func (c *cancelOnClose) Close() error {
	err := drainAndClose(c.raw, c.cancel)
	c.cancel()
	return err
}

// drainAndClose reads up to drainLimit of what is left of body, for at most drainTimeout (then
// cancel, the request's context, ends the read), and closes it.
func drainAndClose(body io.ReadCloser, cancel context.CancelFunc) error {
	giveUp := time.AfterFunc(drainTimeout, cancel)
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
	giveUp.Stop()
	return body.Close()
}

// drainLimit and drainTimeout bound what Close reads of a body the caller did not finish; a longer
// or slower rest costs the connection instead.
const (
	drainLimit   = 64 << 10
	drainTimeout = 250 * time.Millisecond
)

// retryReason says why an attempt should be retried ("" when it should not) and the minimum
// wait the server asked for.
func retryReason(ctx context.Context, resp *http.Response, err error) (string, time.Duration) {
	if err != nil {
		if ctx.Err() != nil || permanentNetError(err) { // the caller gave up, or retrying cannot help
			return "", 0
		}
		return "network", 0
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return strconv.Itoa(resp.StatusCode), backoff.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return "", 0
}

// permanentNetError reports transport errors that a retry cannot fix: TLS verification
// failures and malformed URLs.
func permanentNetError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid)
}

// authTransport adds the bearer token to GraphQL requests. The attempt record in the context
// tells the client which token a rejected request carried.
type authTransport struct {
	tokens *tokenSource
	next   http.RoundTripper
}

type usedTokenKey struct{}

// usedToken is filled by authTransport with the access token a request was sent with.
type usedToken struct{ token string }

// RoundTrip implements http.RoundTripper.
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.tokens.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	if u, ok := req.Context().Value(usedTokenKey{}).(*usedToken); ok {
		u.token = tok
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return t.next.RoundTrip(r)
}

// errNoSlot: the rate limiter has no slot before the caller's deadline. It matches
// context.DeadlineExceeded, as the caller's context would have expired waiting.
var errNoSlot = fmt.Errorf("no rate limiter slot before the deadline: %w", context.DeadlineExceeded)

// errClosed is returned once the client's long-lived context is done.
var errClosed = errors.New("wiz client closed")
