package config

import (
	"net"
	"net/url"
	"strings"
)

// Audiences of the Wiz OAuth token endpoints (WIZ_API.md §1).
const (
	// AudienceCognito is the audience of the Cognito-backed token hosts (auth.app.wiz.io and friends).
	AudienceCognito = "wiz-api"
	// AudienceAuth0 is the audience of the legacy Auth0-backed token hosts.
	AudienceAuth0 = "beyond-api"
)

// Default token URLs for commercial, AWS GovCloud and FedRAMP tenants.
const (
	// DefaultAuthURLCommercial is the token endpoint of commercial tenants.
	DefaultAuthURLCommercial = "https://auth.app.wiz.io/oauth/token"
	// DefaultAuthURLGov is the token endpoint of commercial tenants hosted in AWS GovCloud (API
	// hosts under gov.wiz.io, e.g. api.usgov1.gov.wiz.io).
	DefaultAuthURLGov = "https://auth.gov.wiz.io/oauth/token"
	// DefaultAuthURLFedRAMP is the token endpoint of FedRAMP tenants (*.app.wiz.us).
	DefaultAuthURLFedRAMP = "https://auth.app.wiz.us/oauth/token"
)

// authHostAudience is the table of WIZ_API.md §1 and §10: token URL host → audience. The Cognito
// hosts are the Wiz XSOAR pack's allow-list ({auth.app, auth.gov, auth.test} × {wiz.io, wiz.us},
// Packs/Wiz get_token) plus auth.demo.wiz.io.
func authHostAudience(host string) (string, bool) {
	switch host {
	case "auth.app.wiz.io", "auth.gov.wiz.io", "auth.test.wiz.io",
		"auth.app.wiz.us", "auth.gov.wiz.us", "auth.test.wiz.us",
		"auth.demo.wiz.io":
		return AudienceCognito, true
	case "auth.wiz.io", "auth0.gov.wiz.io", "auth0.test.wiz.io":
		return AudienceAuth0, true
	}
	return "", false
}

// hostOf extracts the lower-cased host (without port) of a URL that may lack its scheme
// ("auth.app.wiz.io/oauth/token" and "HTTPS://Auth.App.Wiz.IO/oauth/token/" both give
// "auth.app.wiz.io"). It returns "" when nothing host-like is found.
func hostOf(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// AudienceFor returns the OAuth audience for a Wiz token URL, from the host table of WIZ_API.md
// §1. It ignores scheme, case, port, path and a trailing slash or dot. known is false for any
// other host: the operator must then set wiz.audience (Validate says so).
func AudienceFor(authURL string) (audience string, known bool) {
	return authHostAudience(hostOf(authURL))
}

// DefaultAuthURL returns the token URL used when wiz.auth_url is empty: the FedRAMP endpoint for an
// API host under app.wiz.us (e.g. api.us1.app.wiz.us), the AWS GovCloud endpoint for an API host
// under gov.wiz.io (e.g. api.usgov1.gov.wiz.io: commercial tenants hosted in GovCloud take
// auth.gov.wiz.io, per Sekoia's token_refresher.py and the Wiz XSOAR pack's get_token), else the
// commercial Cognito endpoint. Unlike XSOAR it never defaults to the legacy Auth0 URL. pkg/wiz uses
// this same rule.
func DefaultAuthURL(apiURL string) string {
	switch h := hostOf(apiURL); {
	case underDomain(h, "app.wiz.us"):
		return DefaultAuthURLFedRAMP
	case underDomain(h, "gov.wiz.io"):
		return DefaultAuthURLGov
	}
	return DefaultAuthURLCommercial
}

// underDomain reports whether host is domain or a subdomain of it.
func underDomain(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// isLoopbackHost reports whether host (no port) is localhost or a loopback IP address.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHTTPSURL returns "" when raw is an absolute http(s) URL with a host that uses https, or
// http on a loopback host; else the reason it is not.
func checkHTTPSURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a valid URL"
	}
	if u.Scheme == "" || u.Host == "" || u.Hostname() == "" {
		return "is not an absolute URL (expected https://host/...)"
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return ""
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return ""
		}
		return "must use https (http is allowed only for loopback hosts)"
	default:
		return "must use https (http is allowed only for loopback hosts)"
	}
}
