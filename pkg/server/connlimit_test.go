package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestConnLimitKeepsProbesAnswered: a wave of silent connections far above the cap neither exhausts
// descriptors (the server holds at most the cap) nor locks out /healthz (the oldest silent ones are
// shed to make room), and the first silent connection sees its connection closed.
func TestConnLimitKeepsProbesAnswered(t *testing.T) {
	const limit, wave = 8, 60
	s := newServer(t, Options{Listen: "127.0.0.1:0", MaxConns: limit, Store: openStore(t), Tracker: populatedTracker(1)})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			_ = c.Close()
		}
	})
	for i := 0; i < wave; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, shed := s.limiter.open()
		if open+shed >= wave {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server accepted %d connections and shed %d of %d", open, shed, wave)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if open, _ := s.limiter.open(); open > limit {
		t.Fatalf("%d connections open, above the cap of %d", open, limit)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 3; i++ {
		resp, err := client.Get(s.URL() + "/healthz")
		if err != nil {
			t.Fatalf("healthz %d under a wave of idle connections: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
	}
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("the oldest silent connection was not closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the oldest silent connection is still open after the wave")
	}
	if open, _ := s.limiter.open(); open > limit {
		t.Fatalf("%d connections open after the probes, above the cap of %d", open, limit)
	}
}
