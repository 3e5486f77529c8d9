package wiz

import (
	"log/slog"
	"net/http"
	"os"
	"time"

	"golang.org/x/time/rate"

	"github.com/wizfetch/wizfetch/pkg/config"
)

// Defaults applied by New when an Options field is zero.
const (
	// DefaultTimeout bounds one HTTP attempt: config.DefaultWizTimeout, 115 s, under the Wiz
	// gateway's own timeout as in the Wiz XSOAR pack (PR #44400).
	DefaultTimeout = config.DefaultWizTimeout
	// DefaultRetryFor bounds the time spent retrying one request.
	DefaultRetryFor = 2 * time.Minute
)

// Options configures a Client for one Wiz tenant.
type Options struct {
	// APIURL is the GraphQL endpoint, with or without the trailing /graphql.
	APIURL string
	// AuthURL is the OAuth2 token endpoint; empty picks the Cognito endpoint matching APIURL's
	// host (auth.app.wiz.us for *.app.wiz.us, auth.gov.wiz.io for *.gov.wiz.io, else
	// auth.app.wiz.io; see wizdef.DefaultAuthURL).
	AuthURL string
	// ClientID is the service account's client id.
	ClientID string
	// Audience overrides the audience derived from AuthURL's host (WIZ_API.md §1).
	Audience string
	// ClientSecret is the service account's secret.
	ClientSecret string
	// ClientSecretFile holds the secret; it is read at New when ClientSecret is empty and re-read
	// whenever a token refresh is rejected, so a rotated secret is picked up without a restart.
	ClientSecretFile string
	// RequestsPerSecond paces GraphQL requests (every attempt, retries included); <= 0 is unlimited.
	RequestsPerSecond float64
	// Timeout bounds one HTTP attempt (default DefaultTimeout, 115s).
	Timeout time.Duration
	// Proxy is an explicit proxy URL; empty uses HTTP_PROXY/HTTPS_PROXY/NO_PROXY.
	Proxy string
	// CAFile is a PEM bundle appended to the system roots.
	CAFile string
	// Version goes into the User-Agent header as wizfetch/<version>.
	Version string
	// RetryFor bounds the time spent retrying one request (default 2m).
	RetryFor time.Duration
	// Logger receives retry and token logs (default: discard).
	Logger *slog.Logger
	// Metrics receives request, retry and token-refresh hooks (nil: none).
	Metrics Observer
	// HTTPClient, when set, provides the base transport instead of one built from Proxy and CAFile.
	HTTPClient *http.Client
	// Transports, when set (and HTTPClient is not), provides the base transport shared with the
	// other clients of the same proxy and CA bundle; nil builds one for this client alone.
	Transports *Transports
	// Limiter, when set, is shared with other clients of the same tenant; else one is built from
	// RequestsPerSecond.
	Limiter *rate.Limiter

	// backoff replaces the jittered exponential backoff (tests only).
	backoff func(attempt int) time.Duration
	// now replaces time.Now for token expiry decisions (tests only).
	now func() time.Time
}

// Observer receives client events for metrics. Implementations must be safe for concurrent use.
type Observer interface {
	// OnRequest is called after every HTTP attempt; endpoint is "graphql" or "token", status is 0
	// when no response arrived.
	OnRequest(endpoint string, status int, d time.Duration)
	// OnRetry is called before each retry with a short bounded reason ("429", "503", "network").
	OnRetry(reason string)
	// OnRetrying is called before each retry with its cause, e.g. "token request: proxyconnect
	// tcp: dial tcp 10.0.0.1:3128: connect: connection refused" (secrets masked, shortened), so
	// that an operator sees at once why requests to endpoint ("graphql" or "token") are failing,
	// not only after the retry budget; and with cause "" when a retried request of endpoint has
	// ended, retrying no more (its result, if a failure, reaches the caller as an error).
	OnRetrying(endpoint, cause string)
	// OnTokenRefresh is called after each token request.
	OnTokenRefresh(ok bool)
}

// OptionsFromConfig maps one instance's wiz config section to client Options. The caller adds
// Logger, Metrics and (to share one across clients) Limiter.
func OptionsFromConfig(w config.Wiz, version string) Options {
	secret := w.ClientSecret.Reveal()
	if secret == "" && w.ClientSecretEnv != "" && w.ClientSecretFile == "" {
		secret = os.Getenv(w.ClientSecretEnv)
	}
	return Options{
		APIURL:            w.APIURL,
		AuthURL:           w.AuthURL,
		ClientID:          w.ClientID,
		Audience:          w.Audience,
		ClientSecret:      secret,
		ClientSecretFile:  w.ClientSecretFile,
		RequestsPerSecond: w.RequestsPerSecond,
		Timeout:           w.Timeout.D(),
		Proxy:             w.Proxy,
		CAFile:            w.CAFile,
		Version:           version,
	}
}

type nopObserver struct{}

func (nopObserver) OnRequest(string, int, time.Duration) {}
func (nopObserver) OnRetry(string)                       {}
func (nopObserver) OnRetrying(string, string)            {}
func (nopObserver) OnTokenRefresh(bool)                  {}
