package server

import (
	"container/list"
	"net"
	"net/http"
	"sync"
)

// DefaultMaxConns is how many connections the server keeps open at once when Options.MaxConns is
// zero. The API serves a few operators, probes, a Prometheus scraper and Wiz's pushes; 512 leaves
// most of a default 1024-descriptor limit to the store, the sinks and the Wiz client.
const DefaultMaxConns = 512

// connLimiter bounds the server's open connections without letting idle ones lock out the probes.
//
// x/net's netutil.LimitListener blocks Accept at the cap, so a wave of idle connections (a slowloris,
// or thousands of clients that open and wait) leaves /healthz queued behind them in the kernel's
// backlog until their header timeout frees a slot, and the orchestrator restarts a healthy daemon.
// Instead, the limiter accepts every connection and, when the cap is reached, closes the oldest one
// that is not in the middle of a request (new and silent, or idle between keep-alive requests). A
// probe sends its request at once, so it is served; connections that only wait are the ones shed.
// Descriptors stay bounded at the cap plus the one being accepted.
type connLimiter struct {
	max int

	mu    sync.Mutex
	quiet *list.List                 // connections new or idle, oldest first
	conns map[net.Conn]*list.Element // every open connection; element non-nil while quiet
	shed  int                        // connections closed to make room (for tests and logs)
}

func newConnLimiter(max int) *connLimiter {
	if max <= 0 {
		max = DefaultMaxConns
	}
	return &connLimiter{max: max, quiet: list.New(), conns: map[net.Conn]*list.Element{}}
}

// connState is the http.Server ConnState hook.
func (l *connLimiter) connState(c net.Conn, state http.ConnState) {
	var victim net.Conn
	l.mu.Lock()
	switch state {
	case http.StateNew:
		if len(l.conns) >= l.max {
			l.shed++
			front := l.quiet.Front()
			if front == nil {
				// Every open connection is in a request: refuse the newcomer rather than exceed the cap.
				victim = c
				break
			}
			victim = l.quiet.Remove(front).(net.Conn)
			delete(l.conns, victim)
		}
		l.conns[c] = l.quiet.PushBack(c)
	case http.StateIdle:
		if e, ok := l.conns[c]; ok && e == nil {
			l.conns[c] = l.quiet.PushBack(c)
		}
	case http.StateActive:
		if e, ok := l.conns[c]; ok && e != nil {
			l.quiet.Remove(e)
			l.conns[c] = nil
		}
	case http.StateHijacked, http.StateClosed:
		if e, ok := l.conns[c]; ok {
			if e != nil {
				l.quiet.Remove(e)
			}
			delete(l.conns, c)
		}
	}
	l.mu.Unlock()
	if victim != nil {
		_ = victim.Close() // the server sees the read fail and reports StateClosed (ignored: gone)
	}
}

// open returns how many connections are tracked as open, and how many were shed.
func (l *connLimiter) open() (open, shed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns), l.shed
}
