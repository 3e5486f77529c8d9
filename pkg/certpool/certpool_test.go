package certpool

import (
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithFile(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	dir := t.TempDir()
	good := filepath.Join(dir, "ca.pem")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)

	pool, err := WithFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Certificate().Verify(x509Opts(pool)); err != nil {
		t.Fatalf("the test server's certificate does not verify against the pool: %v", err)
	}
	if _, err := WithFile(bad); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := WithFile(filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("a missing file must be an error")
	}
}

func x509Opts(pool *x509.CertPool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}
}
