package wiz

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// Clients of many instances that share Transports share connections: 40 clients, each fetching a
// token and a page in turn, open one connection between them, where clients of their own open one
// each.
func TestSharedTransportsShareConnections(t *testing.T) {
	for _, shared := range []bool{true, false} {
		fake := newFakeWiz(t)
		var opened atomic.Int64
		srv := httptest.NewUnstartedServer(fake.srv.Config.Handler)
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				opened.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		var transports *Transports
		if shared {
			transports = NewTransports()
		}
		for i := 0; i < 40; i++ {
			opts := fake.options()
			opts.APIURL, opts.AuthURL = srv.URL+"/graphql", srv.URL+"/oauth/token"
			opts.HTTPClient, opts.Transports = nil, transports
			c := newTestClient(t, opts)
			page, err := c.Issues(context.Background(), IssueFilter{}, nil, 10, "")
			if err != nil {
				t.Fatal(err)
			}
			page.Release()
		}
		got := opened.Load()
		if shared && got != 1 || !shared && got != 40 {
			t.Errorf("shared=%v: %d connections opened by 40 clients in turn", shared, got)
		}
	}
}

// A transport is shared only by clients of the same proxy and CA bundle content.
func TestSharedTransportsKeys(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tr := NewTransports()
	get := func(o Options) http.RoundTripper {
		t.Helper()
		rt, err := tr.get(o)
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	plain := get(Options{})
	if get(Options{}) != plain {
		t.Error("two clients without proxy or CA got different transports")
	}
	proxied := get(Options{Proxy: "http://proxy.example:3128"})
	if proxied == plain {
		t.Error("a proxied client shares the direct transport")
	}
	withCA := get(Options{CAFile: ca})
	if withCA == plain || get(Options{CAFile: ca}) != withCA {
		t.Error("clients of one CA bundle do not share one transport of their own")
	}
	if err := os.WriteFile(ca, append(pemBytes, pemBytes...), 0o600); err != nil {
		t.Fatal(err)
	}
	if get(Options{CAFile: ca}) == withCA {
		t.Error("a changed CA bundle kept the old transport")
	}
	if _, err := tr.get(Options{CAFile: filepath.Join(dir, "missing.pem")}); err == nil {
		t.Error("a missing CA bundle was accepted")
	}
}
