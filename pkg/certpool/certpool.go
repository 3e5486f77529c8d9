// Package certpool builds the TLS roots for outgoing connections: the system's roots plus an
// operator-supplied PEM bundle (for TLS-inspecting proxies and private CAs).
package certpool

import (
	"crypto/x509"
	"fmt"
	"os"
)

// WithFile returns the system cert pool with every certificate of the PEM file at path appended.
func WithFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate found in %s", path)
	}
	return pool, nil
}
