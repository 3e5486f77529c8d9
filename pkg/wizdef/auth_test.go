package wizdef

import "testing"

func TestAudienceFor(t *testing.T) {
	tests := []struct {
		url      string
		audience string
		known    bool
	}{
		{"https://auth.app.wiz.io/oauth/token", AudienceCognito, true},
		{"HTTPS://Auth.App.Wiz.IO/oauth/token/", AudienceCognito, true},
		{"auth.app.wiz.io/oauth/token", AudienceCognito, true},
		{"https://auth.app.wiz.io:443/oauth/token", AudienceCognito, true},
		{"https://auth.app.wiz.io./oauth/token", AudienceCognito, true},
		{"https://auth.app.wiz.us.:443/oauth/token", AudienceCognito, true},
		{"  https://auth.app.wiz.io/oauth/token \n", AudienceCognito, true},
		{"https://auth.app.wiz.us/oauth/token", AudienceCognito, true},
		{"https://auth.gov.wiz.io/oauth/token", AudienceCognito, true},
		{"https://auth.test.wiz.io/oauth/token", AudienceCognito, true},
		{"https://auth.demo.wiz.io/oauth/token", AudienceCognito, true},
		// The Wiz XSOAR pack's Cognito allow-list is {auth.app, auth.gov, auth.test} × {wiz.io, wiz.us}.
		{"https://auth.gov.wiz.us/oauth/token", AudienceCognito, true},
		{"https://auth.test.wiz.us/oauth/token", AudienceCognito, true},
		{"https://auth.demo.wiz.us/oauth/token", "", false},
		{"https://auth.wiz.io/oauth/token", AudienceAuth0, true},
		{"auth.wiz.io/oauth/token", AudienceAuth0, true},
		{"https://auth0.gov.wiz.io/oauth/token", AudienceAuth0, true},
		{"https://auth0.test.wiz.io/oauth/token", AudienceAuth0, true},
		{"https://evil-auth.app.wiz.io.example.com/oauth/token", "", false},
		{"http://127.0.0.1:8080/oauth/token", "", false},
		{"", "", false},
		{"::::", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			aud, known := AudienceFor(tt.url)
			if aud != tt.audience || known != tt.known {
				t.Fatalf("AudienceFor(%q) = %q, %v; want %q, %v", tt.url, aud, known, tt.audience, tt.known)
			}
		})
	}
}

func TestAudienceValues(t *testing.T) {
	// The literal values Wiz's token endpoints expect (WIZ_API.md §1): a typo here would make every
	// token request fail.
	if AudienceCognito != "wiz-api" || AudienceAuth0 != "beyond-api" {
		t.Fatalf("audiences %q, %q", AudienceCognito, AudienceAuth0)
	}
}

func TestDefaultAuthURL(t *testing.T) {
	tests := []struct{ api, want string }{
		{"https://api.us1.app.wiz.io/graphql", AuthURLCommercial},
		{"https://api.eu17.app.wiz.io", AuthURLCommercial},
		{"https://api.us1.app.wiz.us/graphql", AuthURLFedRAMP},
		{"API.US1.APP.WIZ.US", AuthURLFedRAMP},
		{"https://api.app.wiz.us.example.com", AuthURLCommercial},
		// Commercial tenants hosted in AWS GovCloud (Sekoia token_refresher.py, Wiz pack get_token).
		{"https://api.usgov1.gov.wiz.io/graphql", AuthURLGov},
		{"api.usgov2.gov.wiz.io", AuthURLGov},
		{"API.USGOV2.GOV.WIZ.IO.", AuthURLGov},
		{"https://api.gov.wiz.io.example.com", AuthURLCommercial},
		{"http://127.0.0.1:9000/graphql", AuthURLCommercial},
		{"", AuthURLCommercial},
	}
	for _, tt := range tests {
		t.Run(tt.api, func(t *testing.T) {
			if got := DefaultAuthURL(tt.api); got != tt.want {
				t.Fatalf("DefaultAuthURL(%q) = %q, want %q", tt.api, got, tt.want)
			}
		})
	}
	// Every default token URL is a known host, with the Cognito audience.
	for _, u := range []string{AuthURLCommercial, AuthURLGov, AuthURLFedRAMP} {
		if aud, known := AudienceFor(u); !known || aud != AudienceCognito {
			t.Errorf("AudienceFor(%q) = %q, %v; want %q", u, aud, known, AudienceCognito)
		}
	}
}
