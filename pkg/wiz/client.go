// Package wiz is wizfetch's client for one Wiz tenant: OAuth2 client-credentials authentication
// with a shared, early-refreshed token; an HTTP transport with proxy, CA, User-Agent, per-attempt
// timeout, rate limiting and retries; and the GraphQL operations of WIZ_API.md §3 and §5 with
// their errors classified for callers (ErrAuth, ErrPermission, ErrBadRequest, ErrTransient,
// ErrCursorRejected, ErrNotFound).
package wiz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	graphql "github.com/hasura/go-graphql-client"
	"golang.org/x/time/rate"

	"github.com/wizfetch/wizfetch/pkg/redact"
)

// Client talks to one Wiz tenant. It is safe for concurrent use; every caller shares its token
// and its rate limiter.
type Client struct {
	apiURL   string
	authURL  string
	audience string
	gql      *graphql.Client
	http     *http.Client    // the GraphQL endpoint's client, under gql and queryPage
	retry    *retryTransport // the GraphQL endpoint's retries, also for throttling inside a 200
	tokens   *tokenSource
	limiter  *rate.Limiter
	log      *slog.Logger
}

// New builds a client. ctx is the client's lifetime: token refreshes never outlive it. New does
// no network I/O; call Token to check the credentials.
func New(ctx context.Context, opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = nopObserver{}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = DefaultRetryFor
	}
	if opts.backoff == nil {
		opts.backoff = jitterBackoff
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if strings.TrimSpace(opts.ClientID) == "" {
		return nil, errors.New("new wiz client: wiz.client_id is empty")
	}
	apiURL, err := NormalizeAPIURL(opts.APIURL)
	if err != nil {
		return nil, fmt.Errorf("new wiz client: %w", err)
	}
	authURL := opts.AuthURL
	if strings.TrimSpace(authURL) == "" {
		authURL = DefaultAuthURLFor(apiURL)
	}
	if authURL, err = normalizeAuthURL(authURL); err != nil {
		return nil, fmt.Errorf("new wiz client: %w", err)
	}
	audience, err := AudienceFor(authURL, opts.Audience)
	if err != nil {
		return nil, fmt.Errorf("new wiz client: %w", err)
	}
	secret := opts.ClientSecret
	if secret == "" && opts.ClientSecretFile != "" {
		if secret, err = readSecretFile(opts.ClientSecretFile); err != nil {
			return nil, fmt.Errorf("new wiz client: %w", err)
		}
	}
	if secret == "" {
		return nil, errors.New("new wiz client: no client secret (set wiz.client_secret or wiz.client_secret_file)")
	}
	base, err := baseTransport(opts)
	if err != nil {
		return nil, fmt.Errorf("new wiz client: %w", err)
	}
	limiter := opts.Limiter
	if limiter == nil {
		limiter = NewLimiter(opts.RequestsPerSecond)
	}
	log := opts.Logger.With("component", "wiz")
	userAgent := "wizfetch/" + strings.TrimPrefix(defaultString(opts.Version, "dev"), "v")

	tokenRT := &retryTransport{base: base, endpoint: "token", timeout: opts.Timeout, retryFor: opts.RetryFor,
		userAgent: userAgent, backoff: opts.backoff, log: log, obs: opts.Metrics, maxBody: maxTokenBody}
	tokens := &tokenSource{
		life:         ctx,
		httpClient:   &http.Client{Transport: tokenRT, CheckRedirect: noRedirects},
		authURL:      authURL,
		audience:     audience,
		clientID:     opts.ClientID,
		secretFile:   opts.ClientSecretFile,
		proxySecrets: redact.URLSecrets(opts.Proxy),
		now:          opts.now,
		log:          log,
		obs:          opts.Metrics,
		sem:          make(chan struct{}, 1),
		secret:       secret,
	}
	tokenRT.mask = tokens.mask
	gqlRetry := &retryTransport{base: base, endpoint: "graphql", limiter: limiter, timeout: opts.Timeout,
		retryFor: opts.RetryFor, userAgent: userAgent, backoff: opts.backoff, log: log, obs: opts.Metrics,
		maxBody: maxOperationBody, mask: tokens.mask}
	// Redirects are never followed (noRedirects, and retryTransport turns a 3xx into an error):
	// authTransport adds the token to every request it sends, a redirected one included.
	gqlHTTP := &http.Client{Transport: &authTransport{tokens: tokens, next: gqlRetry}, CheckRedirect: noRedirects}
	return &Client{
		apiURL:   apiURL,
		authURL:  authURL,
		audience: audience,
		gql:      graphql.NewClient(apiURL, gqlHTTP),
		http:     gqlHTTP,
		retry:    gqlRetry,
		tokens:   tokens,
		limiter:  limiter,
		log:      log,
	}, nil
}

// NewLimiter returns the limiter for one tenant: requestsPerSecond with a burst of 1, or
// unlimited when requestsPerSecond <= 0. Share it between every client of the tenant.
func NewLimiter(requestsPerSecond float64) *rate.Limiter {
	if requestsPerSecond <= 0 || math.IsInf(requestsPerSecond, 1) || math.IsNaN(requestsPerSecond) {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Limit(requestsPerSecond), 1)
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// APIURL returns the normalized GraphQL endpoint.
func (c *Client) APIURL() string { return c.apiURL }

// AuthURL returns the token endpoint in use.
func (c *Client) AuthURL() string { return c.authURL }

// Audience returns the OAuth2 audience in use.
func (c *Client) Audience() string { return c.audience }

// Token obtains a token, or reuses the cached one (for `wizfetch check`).
func (c *Client) Token(ctx context.Context) error {
	if _, err := c.tokens.Token(ctx); err != nil {
		return err
	}
	return nil
}

// exec runs one GraphQL operation and returns its data. A rejected token (HTTP 401 or
// UNAUTHENTICATED) is invalidated, refreshed and the operation retried once; throttling inside an
// HTTP 200 is retried with backoff (callWithRetries). A response with both data and errors is a
// failure.
func (c *Client) exec(ctx context.Context, op, query string, vars map[string]any) ([]byte, error) {
	return callWithRetries(ctx, c, op, func(ctx context.Context) ([]byte, error) {
		data, err := c.gql.ExecRaw(ctx, query, vars, graphql.OperationName(op))
		if err != nil {
			return nil, classify(ctx, op, err)
		}
		if len(data) == 0 || string(data) == "null" {
			return nil, &APIError{Class: ErrTransient, Op: op, Message: "response has no data"}
		}
		return data, nil
	})
}
