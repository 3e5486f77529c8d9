package server

import (
	"net"
	"net/http"
	"strings"
)

// DNS rebinding. Without server.auth_token (allowed only on a loopback listener) the API answers
// anyone who can reach it, and a web page the operator opens can reach it: the page's own host name
// is re-pointed at 127.0.0.1 after it loaded, and the browser then sends the page's requests to
// wizfetch with the attacker's name in the Host header, reading /v1/incidents as same-origin. The
// defence every local service uses (the Go module proxy's localhost mode, Jupyter's
// allow_remote_access=False, the MCP spec's "validate the Origin/Host header" rule for local
// servers) is to answer only Host values that name the listener itself. With a token set the check
// is not needed: a browser cannot add the Bearer header across origins.

// hostAllowed reports whether the Host of r names this loopback listener: "localhost", any loopback
// IP literal, or the host of server.listen. The port is not compared (a proxy on the same host may
// forward from another port); a rebinding attack cannot forge the name, only the address.
func (s *Server) hostAllowed(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		// HTTP/1.0 without Host: not a browser request (browsers always send Host).
		return true
	}
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, s.listenHost) {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// guardHost refuses, with 421 Misdirected Request, requests whose Host does not name the listener
// while the server runs on loopback without a token. The probes are exempt: they reveal nothing.
func (s *Server) guardHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.loopback && s.token.Load() == nil && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !s.hostAllowed(r) {
			s.log.Warn("refused a request for a foreign host name (possible DNS rebinding)",
				"host", clip(r.Host, 100), "path", clip(r.URL.Path, 100), "remote", r.RemoteAddr)
			writeError(w, http.StatusMisdirectedRequest,
				"this wizfetch listens on loopback without server.auth_token and answers only requests for localhost or a loopback address", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clip shortens an attacker-controlled string for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
