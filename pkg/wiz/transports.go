package wiz

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"sync"
)

// Transports shares base transports (connection pools) between the clients of many instances:
// clients whose proxy and CA bundle are the same get the same transport, so a thousand tenants on
// one Wiz host keep a few idle connections between them instead of two each (each connection costs
// two goroutines and about 8 KiB of buffers), and, with HTTP/2, which Wiz serves, share one
// multiplexed connection. Requests still carry their own instance's token, limiter and retries
// (those live above the base transport). The zero value is not usable; use NewTransports.
type Transports struct {
	mu    sync.Mutex
	byKey map[string]http.RoundTripper
}

// NewTransports returns an empty set of shared transports.
func NewTransports() *Transports {
	return &Transports{byKey: map[string]http.RoundTripper{}}
}

// sharedIdlePerHost is how many idle connections a shared transport keeps per host (the standard
// library's default is 2): enough for the instances whose fetches fall in the same moments.
const sharedIdlePerHost = 16

// sharedConnsPerHost bounds the connections a shared transport opens to one host; requests beyond
// it wait for a connection. A thousand instances starting together would otherwise open a
// connection each (buffers and two goroutines apiece, about a fifth of the start-up heap of 1,000
// tenants), mostly to wait for a page slot (PageSlots). 256 requests in flight at Wiz's seconds per
// page still bring more issues a second than the pipeline commits; with HTTP/2 each connection
// carries many requests.
const sharedConnsPerHost = 256

// get returns the shared transport for opts' proxy and CA bundle, building it on first use. The
// bundle is keyed by its content, so a changed file (a config reload) gets a transport of its own.
func (t *Transports) get(opts Options) (http.RoundTripper, error) {
	key := opts.Proxy + "\x00"
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("wiz.ca_file: %w", err)
		}
		sum := sha256.Sum256(pem)
		key += string(sum[:])
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt, ok := t.byKey[key]; ok {
		return rt, nil
	}
	rt, err := newBaseTransport(opts)
	if err != nil {
		return nil, err
	}
	rt.MaxIdleConnsPerHost = sharedIdlePerHost
	rt.MaxConnsPerHost = sharedConnsPerHost
	t.byKey[key] = rt
	return rt, nil
}
