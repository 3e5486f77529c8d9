package sink

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
)

func TestHTTPSenderTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cfg    config.Sink
		wantOK bool
	}{
		{"system roots only", config.Sink{}, false},
		{"ca_file", config.Sink{CAFile: caFile}, true},
		{"insecure_skip_verify", config.Sink{InsecureSkipVerify: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := newHTTPSender(tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer h.close()
			_, err = h.do(context.Background(), http.MethodPost, srv.URL, nil, []byte("{}"))
			if (err == nil) != tc.wantOK {
				t.Errorf("err = %v, want success %v", err, tc.wantOK)
			}
		})
	}
	t.Run("ca_file without a certificate", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.pem")
		if err := os.WriteFile(bad, []byte("nothing"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := newHTTPSender(config.Sink{CAFile: bad}, nil); err == nil {
			t.Error("a ca_file without PEM was accepted")
		}
	})
}

func TestHTTPSenderTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the client gives up (or the test ends)
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	h, err := newHTTPSender(config.Sink{Timeout: config.Duration(50 * time.Millisecond)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.do(context.Background(), http.MethodPost, srv.URL, nil, []byte("{}"))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrPermanent) {
			t.Errorf("err = %v, want a retryable timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request outlived its timeout")
	}
}

func TestReasonOf(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"text":"Invalid token","code":4}`, "Invalid token"},
		{`{"id":"forbidden","status":403,"title":"Forbidden","detail":"Issue with API key"}`, "Issue with API key"},
		{"plain\ntext  body", "plain text body"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := reasonOf([]byte(tc.body)); got != tc.want {
			t.Errorf("reasonOf(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
