package config

import (
	"net"
	"net/url"
	"strings"
)

// hostOf extracts the lower-cased host (without port) of a URL that may lack its scheme, for
// messages ("auth.example.com/oauth/token" and "HTTPS://Auth.Example.COM/token/" both give
// "auth.example.com"). It returns "" when nothing host-like is found.
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
