package wiz

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Bounds of the response bodies the client reads. Wiz answers are small except issue pages
// (maxPageBytes); anything larger is a misbehaving server or a wrong URL, and must end in an error,
// never in an out-of-memory kill or in a cut body that still decodes.
const (
	// maxTokenBody bounds a token endpoint's answer (a JWT and a few fields: a few KiB). It stays
	// under the 1 MiB at which golang.org/x/oauth2 stops reading without a word, so that a larger
	// answer is an error rather than a cut one.
	maxTokenBody = 512 << 10
	// maxOperationBody bounds the answer to any GraphQL operation other than an issues page (the
	// write-back mutations answer with one issue's id, status and notes).
	maxOperationBody = 1 << 20
	// maxErrorBody bounds what is read of a body that is not 2xx: its status decides, its body only
	// lends a message, so the rest is cut off silently.
	maxErrorBody = 64 << 10
)

// bodyLimitKey carries a request's own body bound (withBodyLimit).
type bodyLimitKey struct{}

// withBodyLimit sets the bound of the 2xx response body of requests made with ctx, instead of the
// transport's (maxTokenBody or maxOperationBody).
func withBodyLimit(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, bodyLimitKey{}, n)
}

// bodyTooLargeError is the read error of a response body longer than its bound.
type bodyTooLargeError struct {
	Limit int64 // the bound in bytes
}

// Error renders e.g. "response body is larger than 1 MiB".
func (e *bodyTooLargeError) Error() string {
	return "response body is larger than " + byteSize(e.Limit)
}

// byteSize renders a bound the way it is written in the code: "512 KiB", "64 MiB".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// boundedBody returns the reader of resp's body that its reader gets: a 2xx body fails with a
// *bodyTooLargeError past limit bytes (at once when its Content-Length says so); any other body
// ends quietly after maxErrorBody bytes (or limit, if smaller). A body gzipped without being asked
// for is decompressed here, so the bound applies to what is decoded: a small compressed body
// cannot expand into gigabytes behind it.
func boundedBody(resp *http.Response, limit int64) io.Reader {
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		r = &gunzip{raw: resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return io.LimitReader(r, min(limit, maxErrorBody))
	}
	b := &limitedReader{r: r, left: limit, limit: limit}
	if resp.ContentLength > limit {
		b.left = -1
	}
	return b
}

// limitedReader reads r up to limit bytes, then fails with a *bodyTooLargeError if more follow.
type limitedReader struct {
	r     io.Reader
	left  int64 // bytes still allowed; -1 once the bound is exceeded
	limit int64
}

// Read implements io.Reader.
func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, &bodyTooLargeError{Limit: l.limit}
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // one byte more than allowed tells a body at the bound from a longer one
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n, l.left = int(l.left), -1
		return n, &bodyTooLargeError{Limit: l.limit}
	}
	l.left -= int64(n)
	return n, err
}

// gunzip decompresses raw, opening the gzip stream at the first Read (so that building it does not
// wait for the server).
type gunzip struct {
	raw io.Reader
	zr  *gzip.Reader
}

// Read implements io.Reader.
func (g *gunzip) Read(p []byte) (int, error) {
	if g.zr == nil {
		zr, err := gzip.NewReader(g.raw)
		if err != nil {
			return 0, fmt.Errorf("read gzip response: %w", err)
		}
		g.zr = zr
	}
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read gzip response: %w", err)
	}
	return n, err
}

// isRedirect reports whether an HTTP status asks the client to go elsewhere.
func isRedirect(status int) bool { return status >= 300 && status <= 399 }

// redirectError is the failure of a request Wiz (or whatever answers at the configured URL)
// redirected. Wiz calls never follow redirects: the token request carries the client secret and
// every GraphQL request the access token, and neither may reach a host other than the configured
// one. The target is named without its user info, query and fragment (they may hold tokens). It is
// a bad request, not worth retrying: the configured URL is wrong.
func (t *retryTransport) redirectError(req *http.Request, resp *http.Response) error {
	target := "no Location"
	if loc := resp.Header.Get("Location"); loc != "" {
		u, err := req.URL.Parse(loc)
		if err != nil {
			target = "an invalid Location"
		} else {
			target = redirectTarget(u)
		}
	}
	key := "wiz.api_url"
	if t.endpoint == "token" {
		key = "wiz.auth_url"
	}
	return &APIError{Class: ErrBadRequest, HTTPStatus: resp.StatusCode,
		Message: fmt.Sprintf("redirected to %s, which is not followed: the credentials go to the configured host only (set %s to the URL that answers without a redirect)", target, key)}
}

// redirectTarget renders a redirect target without user info, query and fragment.
func redirectTarget(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery = "", false
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// noRedirects is the CheckRedirect of the client's HTTP clients: the last response is returned
// instead of followed. retryTransport already turns a 3xx into an error; this keeps a redirect from
// being followed even by a transport that does not.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
