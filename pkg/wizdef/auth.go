package wizdef

import (
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

// Token URLs of commercial, AWS GovCloud and FedRAMP tenants (all Cognito).
const (
	// AuthURLCommercial is the token endpoint of commercial tenants.
	AuthURLCommercial = "https://auth.app.wiz.io/oauth/token"
	// AuthURLGov is the token endpoint of commercial tenants hosted in AWS GovCloud (API hosts
	// under gov.wiz.io, e.g. api.usgov1.gov.wiz.io).
	AuthURLGov = "https://auth.gov.wiz.io/oauth/token"
	// AuthURLFedRAMP is the token endpoint of FedRAMP tenants (*.app.wiz.us).
	AuthURLFedRAMP = "https://auth.app.wiz.us/oauth/token"
)

// hostAudience is the table of WIZ_API.md §1 and §10: token URL host → audience. The Cognito
// hosts are the Wiz XSOAR pack's allow-list ({auth.app, auth.gov, auth.test} × {wiz.io, wiz.us},
// Packs/Wiz get_token) plus auth.demo.wiz.io; the Auth0 hosts are the legacy ones.
func hostAudience(host string) (string, bool) {
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

// AudienceFor returns the OAuth audience for a Wiz token URL, from the host table of WIZ_API.md
// §1. Unlike the XSOAR pack, which compares the whole URL as a string, it parses the URL and
// ignores scheme, case, port, path and a trailing slash or dot; the scheme may be missing. known
// is false for any other host: the operator must then name the audience.
func AudienceFor(authURL string) (audience string, known bool) {
	return hostAudience(HostOf(authURL))
}

// DefaultAuthURL returns the token URL for a tenant whose GraphQL API is at apiURL: the FedRAMP
// endpoint for an API host under app.wiz.us (e.g. api.us1.app.wiz.us), the AWS GovCloud endpoint
// for an API host under gov.wiz.io (e.g. api.usgov1.gov.wiz.io: commercial tenants hosted in
// GovCloud take auth.gov.wiz.io, per Sekoia's token_refresher.py and the Wiz XSOAR pack's
// get_token), else the commercial Cognito endpoint. Unlike XSOAR it never defaults to the legacy
// Auth0 URL (WIZ_API.md §1, §10).
func DefaultAuthURL(apiURL string) string {
	switch h := HostOf(apiURL); {
	case underDomain(h, "app.wiz.us"):
		return AuthURLFedRAMP
	case underDomain(h, "gov.wiz.io"):
		return AuthURLGov
	}
	return AuthURLCommercial
}

// HostOf extracts the lower-cased host (without port or trailing dot) of a URL that may lack its
// scheme ("auth.app.wiz.io/oauth/token" and "HTTPS://Auth.App.Wiz.IO/oauth/token/" both give
// "auth.app.wiz.io"). It returns "" when nothing host-like is found.
func HostOf(raw string) string {
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

// underDomain reports whether host is domain or a subdomain of it.
func underDomain(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}
