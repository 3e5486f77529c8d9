// Package etcdtest runs a real, single-member etcd server inside a test process, with etcd's own
// embed package, so that tests of the etcd store engine talk to the same server code that runs in
// production (no fake store). The server listens on 127.0.0.1 on free ports, keeps its data in
// t.TempDir() with fsync on (etcd's default), logs only errors, and stops when the test ends.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startTimeout bounds how long a server may take to become ready; a healthy single member on
// loopback is ready in well under a second, so reaching it means something is wrong.
const startTimeout = 30 * time.Second

// Server is one embedded etcd member. Its methods are safe for concurrent use.
type Server struct {
	dir       string
	clientURL url.URL
	peerURL   url.URL

	mu   sync.Mutex
	etcd *embed.Etcd // nil while stopped
}

// Start starts an etcd server for t and stops it on t.Cleanup. It fails t, naming the cause, when
// the server does not become ready within a bounded time.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{dir: t.TempDir()}
	// Free ports are picked by binding port 0 and releasing it, so another process may grab one
	// before etcd binds it; a few attempts make that race irrelevant in practice.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var ports [2]int
		if ports, err = freePorts(); err != nil {
			continue
		}
		s.clientURL = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
		s.peerURL = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}
		if err = s.start(); err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("etcdtest: start embedded etcd: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Endpoints returns the client URLs to give to clientv3.
func (s *Server) Endpoints() []string {
	return []string{s.clientURL.String()}
}

// Client returns a new client of the server, closed on t.Cleanup (registered after Start's, so it
// closes before the server stops).
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   s.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: new client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Stop stops the server and waits until it has released its ports and data directory. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.etcd == nil {
		return
	}
	s.etcd.Close()
	s.etcd = nil
}

// Restart stops the server and starts it again on the same ports and data, as after a crash of the
// etcd process; clients reconnect by themselves. It fails t when the server does not come back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("etcdtest: restart embedded etcd: %v", err)
	}
}

// start starts a member on s's ports and data directory and waits until it serves.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.etcd != nil {
		return errors.New("already running")
	}
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = s.dir
	cfg.ListenClientUrls = []url.URL{s.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{s.clientURL}
	cfg.ListenPeerUrls = []url.URL{s.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{s.peerURL}
	cfg.InitialCluster = cfg.Name + "=" + s.peerURL.String()
	cfg.EnableGRPCGateway = false
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// A single member elects itself; short ticks make that (and a restart) quick.
	cfg.TickMs = 10
	cfg.ElectionMs = 100

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("server failed while starting: %w", err)
	case <-timer.C:
		e.Close()
		return fmt.Errorf("server not ready after %v", startTimeout)
	}
	// ReadyNotify fires once the member has published itself; a first linearizable read proves
	// that the client port answers before any test depends on it.
	if err := probe(s.clientURL.String()); err != nil {
		e.Close()
		return err
	}
	s.etcd = e
	return nil
}

// probe makes one linearizable read through a fresh client.
func probe(endpoint string) error {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("probe client: %w", err)
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := cli.Get(ctx, "etcdtest-probe"); err != nil {
		return fmt.Errorf("probe read: %w", err)
	}
	return nil
}

// freePorts returns two distinct loopback ports that were free a moment ago.
func freePorts() ([2]int, error) {
	var ports [2]int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ports, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
