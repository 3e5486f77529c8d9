package wizsim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestTokenEndpoint(t *testing.T) {
	for _, mode := range []string{"cognito", "auth0"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, Options{Issues: 10, Auth: mode, ExpiresIn: 2 * time.Second})
			own, other := audiences[mode], "wiz-api"
			if mode == "cognito" {
				other = "beyond-api"
			}
			with := func(k, v string) url.Values {
				f := goodForm(own)
				f.Set(k, v)
				return f
			}
			tests := []struct {
				name   string
				form   url.Values
				status int
				errStr string
			}{
				{"ok", goodForm(own), 200, ""},
				{"other mode's audience", goodForm(other), 400, "invalid_request"},
				{"no audience", with("audience", ""), 400, "invalid_request"},
				{"wrong secret", with("client_secret", "nope"), 401, "access_denied"},
				{"wrong client", with("client_id", "nope"), 401, "access_denied"},
				{"wrong grant", with("grant_type", "password"), 400, "invalid_request"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					status, m := h.postToken(tt.form)
					if status != tt.status {
						t.Fatalf("status %d, want %d (%v)", status, tt.status, m)
					}
					if tt.errStr != "" {
						if m["error"] != tt.errStr || m["error_description"] == nil {
							t.Fatalf("body %v, want error %s", m, tt.errStr)
						}
						if strings.Contains(m["error_description"].(string), "wizsim-secret") {
							t.Fatal("error echoes the secret")
						}
						return
					}
					if m["token_type"] != "Bearer" || m["expires_in"] != 2.0 || m["access_token"] == "" || m["refresh_token"] == "" {
						t.Fatalf("token response %v", m)
					}
				})
			}
		})
	}
}

func TestTokenNeedsFormEncoding(t *testing.T) {
	h := newHarness(t, Options{Issues: 10})
	resp, err := http.Post(h.http.URL+"/oauth/token", "application/json",
		strings.NewReader(`{"grant_type":"client_credentials","client_id":"wizsim-client","client_secret":"wizsim-secret","audience":"wiz-api"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("JSON token request: status %d, want 400", resp.StatusCode)
	}
}

func TestGraphQLAuth(t *testing.T) {
	h := newHarness(t, Options{Issues: 10, ExpiresIn: 2 * time.Second})
	q := `{ issuesV2(first: 1) { nodes { id } } }`
	check := func(name, tok string, want int) {
		t.Helper()
		status, _, body := h.raw(tok, q, nil)
		if status != want {
			t.Fatalf("%s: status %d, want %d: %s", name, status, want, body)
		}
		if want == 401 && !strings.Contains(string(body), `"code":"UNAUTHENTICATED"`) {
			t.Fatalf("%s: body %s", name, body)
		}
	}
	check("valid", h.token, 200)
	check("missing", "", 401)
	check("garbage", "garbage", 401)
	h.clock.Advance(1900 * time.Millisecond)
	check("not yet expired", h.token, 200)
	h.clock.Advance(200 * time.Millisecond)
	check("expired", h.token, 401)

	fresh := h.newToken()
	check("fresh", fresh, 200)
	h.sim.ExpireTokens()
	check("after ExpireTokens", fresh, 401)

	kept := h.newToken()
	h.sim.SetClientSecret("rotated")
	check("token from before the rotation", kept, 200)
	if status, _ := h.postToken(goodForm("wiz-api")); status != 401 {
		t.Fatalf("old secret after rotation: status %d, want 401", status)
	}
	f := goodForm("wiz-api")
	f.Set("client_secret", "rotated")
	if status, _ := h.postToken(f); status != 200 {
		t.Fatalf("new secret: status %d, want 200", status)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, Options{Issues: 10, Rate: 3})
	q := `{ issuesV2(first: 1) { nodes { id } } }`
	for k := 0; k < 3; k++ {
		if status, _, body := h.raw(h.token, q, nil); status != 200 {
			t.Fatalf("request %d: status %d %s", k, status, body)
		}
	}
	status, _, body := h.raw(h.token, q, nil)
	if status != http.StatusTooManyRequests || !strings.Contains(string(body), CodeRateLimited) {
		t.Fatalf("4th request in the same instant: status %d %s", status, body)
	}
	other := h.newToken() // the limit is the service account's: a new token has no budget of its own
	if status, _, _ := h.raw(other, q, nil); status != http.StatusTooManyRequests {
		t.Fatalf("other token in the same instant: status %d, want 429", status)
	}
	h.clock.Advance(time.Second)
	if status, _, _ := h.raw(other, q, nil); status != 200 {
		t.Fatalf("other token after a second: status %d", status)
	}
	if status, _, _ := h.raw(h.token, q, nil); status != 200 {
		t.Fatalf("after a second: status %d", status)
	}
	if got := h.sim.Stats().Throttled; got != 2 {
		t.Fatalf("Throttled = %d, want 2", got)
	}
}
