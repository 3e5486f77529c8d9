package wizsim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wizfetch/wizfetch/pkg/wizdef"
)

// audiences by auth mode (WIZ_API.md §1).
var audiences = map[string]string{"cognito": wizdef.AudienceCognito, "auth0": wizdef.AudienceAuth0}

// token is an issued access token.
type token struct {
	expires time.Time
	limiter *rate.Limiter // its service account's; nil: unlimited
}

// authState holds credentials and issued tokens.
type authState struct {
	mu       sync.Mutex
	clientID string
	secret   string
	tokens   map[string]*token
	// limiter is the service account's request budget, shared by every token issued to it: Wiz
	// limits "about 3 requests per second per service account" (WIZ_API.md §2), so a new token
	// buys no fresh budget. nil: unlimited.
	limiter *rate.Limiter
}

func randomString() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// handleToken is POST /oauth/token: the client-credentials grant of Cognito or Auth0.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "content type must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "unsupported grant_type")
		return
	}
	s.auth.mu.Lock()
	okCreds := equal(r.PostForm.Get("client_id"), s.auth.clientID) && equal(r.PostForm.Get("client_secret"), s.auth.secret)
	s.auth.mu.Unlock()
	if !okCreds {
		oauthError(w, http.StatusUnauthorized, "access_denied", "Unauthorized")
		return
	}
	if aud := r.PostForm.Get("audience"); aud != audiences[s.opts.Auth] {
		oauthError(w, http.StatusBadRequest, "invalid_request", "invalid audience for this authentication endpoint")
		return
	}
	access := randomString()
	t := &token{expires: s.now().Add(s.opts.ExpiresIn), limiter: s.auth.limiter}
	s.auth.mu.Lock()
	now := s.now()
	for k, old := range s.auth.tokens { // keep the map bounded
		if !now.Before(old.expires) {
			delete(s.auth.tokens, k)
		}
	}
	s.auth.tokens[access] = t
	s.auth.mu.Unlock()
	s.stats.tokenIssued()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  access,
		"refresh_token": randomString(),
		"token_type":    "Bearer",
		"expires_in":    int64(s.opts.ExpiresIn / time.Second),
	})
}

// authorize checks the Bearer token of a /graphql request. It returns the token, or nil after writing
// a 401.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) *token {
	h := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(h, " ")
	var t *token
	if strings.EqualFold(scheme, "Bearer") && value != "" {
		s.auth.mu.Lock()
		t = s.auth.tokens[strings.TrimSpace(value)]
		s.auth.mu.Unlock()
	}
	if t == nil || !s.now().Before(t.expires) {
		writeErrors(w, http.StatusUnauthorized, CodeUnauthenticated, "unauthenticated: missing, invalid or expired access token", false)
		return nil
	}
	return t
}

// SetClientSecret rotates the client secret: the old one no longer gets new tokens; tokens already
// issued keep working until they expire.
func (s *Server) SetClientSecret(secret string) {
	s.auth.mu.Lock()
	s.auth.secret = secret
	s.auth.mu.Unlock()
}

// ExpireTokens invalidates every token issued so far: the next /graphql call with one answers 401.
func (s *Server) ExpireTokens() {
	s.auth.mu.Lock()
	clear(s.auth.tokens)
	s.auth.mu.Unlock()
}
