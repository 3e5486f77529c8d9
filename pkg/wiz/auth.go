package wiz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/wizfetch/wizfetch/pkg/redact"
	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// Audiences of the two identity providers Wiz uses, for Options.Audience: aliases of wizdef's,
// where the token hosts and their audiences are defined (WIZ_API.md §1).
const (
	AudienceCognito = wizdef.AudienceCognito
	AudienceAuth0   = wizdef.AudienceAuth0
)

// parseLooseURL parses a URL an operator typed: the scheme may be missing (https is assumed),
// the host may be in any case, a trailing slash or dot may be present.
func parseLooseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("empty URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse URL: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", u.Redacted())
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u, nil
}

func hostOf(u *url.URL) string {
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// AudienceFor returns the OAuth2 audience for a token endpoint URL: override when set, else the
// audience of the host's identity provider (WIZ_API.md §1). Unknown hosts need an override.
func AudienceFor(authURL, override string) (string, error) {
	if o := strings.TrimSpace(override); o != "" {
		return o, nil
	}
	u, err := parseLooseURL(authURL)
	if err != nil {
		return "", fmt.Errorf("wiz.auth_url: %w", err)
	}
	if aud, ok := wizdef.AudienceFor(u.String()); ok {
		return aud, nil
	}
	return "", fmt.Errorf("wiz.auth_url: unknown token endpoint host %q: set wiz.audience (%q for Cognito, %q for Auth0)",
		hostOf(u), AudienceCognito, AudienceAuth0)
}

// DefaultAuthURLFor returns the Cognito token endpoint matching a GraphQL API URL: FedRAMP
// (*.app.wiz.us), AWS GovCloud (*.gov.wiz.io) or commercial; see wizdef.DefaultAuthURL.
func DefaultAuthURLFor(apiURL string) string {
	return wizdef.DefaultAuthURL(apiURL)
}

// normalizeAuthURL adds a missing scheme and lower-cases scheme and host.
func normalizeAuthURL(raw string) (string, error) {
	u, err := parseLooseURL(raw)
	if err != nil {
		return "", fmt.Errorf("wiz.auth_url: %w", err)
	}
	return u.String(), nil
}

// NormalizeAPIURL returns the GraphQL endpoint for an api_url given with or without /graphql
// (and with or without a scheme or trailing slash).
func NormalizeAPIURL(raw string) (string, error) {
	u, err := parseLooseURL(raw)
	if err != nil {
		return "", fmt.Errorf("wiz.api_url: %w", err)
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(strings.ToLower(p), "/graphql") {
		p += "/graphql"
	}
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}

// tokenSource caches one access token and refreshes it min(60s, lifetime/2) before it expires.
// One refresh runs at a time: concurrent callers wait for it and share its result, including
// its failure. A rejected refresh re-reads ClientSecretFile and, if the secret changed, tries
// once more with the new one.
type tokenSource struct {
	life       context.Context // the client's lifetime; a refresh never outlives it
	httpClient *http.Client    // retries 429/5xx, no rate limit
	authURL    string
	audience   string
	clientID   string
	secretFile string
	// proxySecrets are the password and query values of wiz.proxy (redact.URLSecrets): masked in
	// every error and cause like the client secret and the access token.
	proxySecrets []string
	now          func() time.Time
	log          *slog.Logger
	obs          Observer

	sem chan struct{} // held while a refresh is in flight

	mu        sync.Mutex // guards the fields below
	secret    string
	token     string
	refreshAt time.Time
	expiresAt time.Time
	gen       uint64 // incremented by each refresh attempt
	lastErr   error  // result of the last refresh attempt
}

// Token returns a valid access token, refreshing it when it is due.
func (s *tokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.token != "" && s.now().Before(s.refreshAt) {
		tok := s.token
		s.mu.Unlock()
		return tok, nil
	}
	gen := s.gen
	s.mu.Unlock()

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("wait for token refresh: %w", ctx.Err())
	}
	defer func() { <-s.sem }()

	s.mu.Lock()
	if s.gen != gen { // a refresh finished while we waited: share its result
		tok, err := s.token, s.lastErr
		valid := tok != "" && s.now().Before(s.refreshAt)
		s.mu.Unlock()
		if valid {
			return tok, nil
		}
		if err != nil {
			return "", err
		}
	} else {
		s.mu.Unlock()
	}
	return s.refresh(ctx)
}

// Invalidate drops the cached token if it is still the given one (which the API rejected), so the
// next Token call refreshes. Comparing avoids a thundering herd of refreshes when many requests
// fail with the same stale token.
func (s *tokenSource) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == "" || s.token == token {
		s.token = ""
		s.refreshAt = time.Time{}
	}
}

// redactor masks the tenant's secrets: the client secret, the cached access token, the proxy's
// password and query values, and extra (e.g. the token a failed request was sent with).
func (s *tokenSource) redactor(extra ...string) *redact.Redactor {
	s.mu.Lock()
	secrets := append([]string{s.secret, s.token}, s.proxySecrets...)
	s.mu.Unlock()
	return redact.New(append(secrets, extra...)...)
}

// mask masks the tenant's secrets in text (see redactor).
func (s *tokenSource) mask(text string) string { return s.redactor().String(text) }

// ExpiresAt returns when the cached token expires (zero when none is cached).
func (s *tokenSource) ExpiresAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiresAt
}

// refresh requests a new token; the caller holds sem.
func (s *tokenSource) refresh(ctx context.Context) (string, error) {
	if s.life.Err() != nil {
		return "", &APIError{Class: ErrTransient, Op: "token request", Message: errClosed.Error()}
	}
	// The request follows the caller's cancellation and the client's lifetime. Its body bound is
	// the token endpoint's, whatever request (an issues page, say) needed the token.
	rctx, cancel := context.WithCancel(context.WithValue(withBodyLimit(ctx, maxTokenBody), oauth2.HTTPClient, s.httpClient))
	defer cancel()
	stop := context.AfterFunc(s.life, cancel)
	defer stop()

	s.mu.Lock()
	secret := s.secret
	s.mu.Unlock()

	tok, err := s.fetch(rctx, secret)
	if err != nil && s.secretFile != "" && ctx.Err() == nil && errors.Is(err, ErrAuth) {
		if fresh, rerr := readSecretFile(s.secretFile); rerr != nil {
			s.log.Warn("re-reading client secret file failed", "file", s.secretFile, "err", rerr)
		} else if fresh != secret {
			s.log.Info("client secret file changed: retrying token request with the new secret", "file", s.secretFile)
			secret = fresh
			s.mu.Lock()
			s.secret = fresh
			s.mu.Unlock()
			tok, err = s.fetch(rctx, secret)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("token request to %s: %w", s.authURL, ctx.Err())
			s.lastErr = nil // the caller gave up; let the next caller try on its own
		} else {
			s.lastErr = err
		}
		s.token, s.refreshAt = "", time.Time{}
		s.obs.OnTokenRefresh(false)
		return "", err
	}
	now := s.now()
	lifetime := time.Until(tok.Expiry) // oauth2 sets Expiry from expires_in with the real clock
	if tok.Expiry.IsZero() || lifetime <= 0 {
		lifetime = 10 * time.Minute // no usable expires_in: refresh now and then; a 401 still forces one
	}
	s.token = tok.AccessToken
	s.expiresAt = now.Add(lifetime)
	s.refreshAt = s.expiresAt.Add(-min(60*time.Second, lifetime/2))
	s.lastErr = nil
	s.obs.OnTokenRefresh(true)
	s.log.Debug("obtained access token", "auth_url", s.authURL, "expires_in", lifetime.Round(time.Second))
	return tok.AccessToken, nil
}

// fetch runs one client-credentials exchange and turns failures into APIErrors that name the
// endpoint but never the secret or the request body.
func (s *tokenSource) fetch(ctx context.Context, secret string) (*oauth2.Token, error) {
	cfg := clientcredentials.Config{
		ClientID:       s.clientID,
		ClientSecret:   secret,
		TokenURL:       s.authURL,
		AuthStyle:      oauth2.AuthStyleInParams,
		EndpointParams: url.Values{"audience": {s.audience}},
	}
	tok, err := cfg.Token(ctx)
	if err == nil {
		if tok.AccessToken == "" {
			return nil, &APIError{Class: ErrAuth, Op: "token request to " + s.authURL, Message: "response holds no access_token"}
		}
		return tok, nil
	}
	op := "token request to " + s.authURL
	// Server text is masked before it is shortened, so that no prefix of a secret survives the
	// cut; the secret this request carried is masked in every encoding a server may echo it in.
	r := s.redactor(secret)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		msg := re.ErrorDescription
		if msg == "" && re.ErrorCode == "" {
			msg = http.StatusText(status)
		}
		class := ErrAuth
		hint := " (check wiz.client_id, wiz.client_secret and wiz.auth_url)"
		if status == http.StatusTooManyRequests || status >= 500 {
			class, hint = ErrTransient, ""
		}
		return nil, &APIError{Class: class, HTTPStatus: status, Code: shorten(r.String(re.ErrorCode)),
			Message: shorten(r.String(msg)) + hint, Op: op, masked: true}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", op, ctx.Err())
	}
	if apiErr, ok := errors.AsType[*APIError](err); ok { // from the transport: a redirect
		e := *apiErr
		e.Op, e.Message, e.masked = op, shorten(r.String(e.Message)), true
		return nil, &e
	}
	// Network failure after the transport's retries, or an unparsable or oversized 2xx body.
	return nil, &APIError{Class: ErrTransient, Op: op, Message: shorten(r.String(err.Error())), masked: true}
}

// readSecretFile reads a secret file, trimming surrounding whitespace (a trailing newline).
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read wiz.client_secret_file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("wiz.client_secret_file %s is empty", path)
	}
	return s, nil
}
