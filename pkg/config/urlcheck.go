package config

import (
	"net"
	"net/url"
	"strings"
)

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
