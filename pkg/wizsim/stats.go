package wizsim

import (
	"maps"
	"net/http"
	"sync"
)

// Endpoint names used as keys of Stats.Requests.
const (
	EndpointToken   = "/oauth/token"
	EndpointGraphQL = "/graphql"
	EndpointStats   = "/_sim/stats"
	EndpointOther   = "other"
)

// Stats are the simulator's counters since New or the last ResetStats.
type Stats struct {
	// Requests counts responses by endpoint (EndpointToken, EndpointGraphQL, ...) and HTTP status.
	Requests map[string]map[int]int `json:"requests"`
	// TokensIssued counts successful token requests.
	TokensIssued int `json:"tokens_issued"`
	// Throttled counts 429 responses, from the rate limit and from 429 faults.
	Throttled int `json:"throttled"`
	// Faults counts injected faults by kind.
	Faults map[string]int `json:"faults"`
	// IssuesServed counts issue nodes returned by issuesV2.
	IssuesServed int `json:"issues_served"`
	// Pages counts successful issuesV2 calls.
	Pages int `json:"pages"`
	// Mutations counts successful mutations by name.
	Mutations map[string]int `json:"mutations"`
}

// statsState guards Stats.
type statsState struct {
	mu sync.Mutex
	s  Stats
}

func newStats() Stats {
	return Stats{Requests: map[string]map[int]int{}, Faults: map[string]int{}, Mutations: map[string]int{}}
}

func (st *statsState) request(endpoint string, status int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.s.Requests[endpoint]
	if m == nil {
		m = map[int]int{}
		st.s.Requests[endpoint] = m
	}
	m[status]++
	if status == http.StatusTooManyRequests {
		st.s.Throttled++
	}
}

func (st *statsState) tokenIssued() {
	st.mu.Lock()
	st.s.TokensIssued++
	st.mu.Unlock()
}

func (st *statsState) fault(kind string) {
	st.mu.Lock()
	st.s.Faults[kind]++
	st.mu.Unlock()
}

func (st *statsState) served(nodes int) {
	st.mu.Lock()
	st.s.IssuesServed += nodes
	st.s.Pages++
	st.mu.Unlock()
}

func (st *statsState) mutation(name string) {
	st.mu.Lock()
	st.s.Mutations[name]++
	st.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	c := s.stats.s
	c.Requests = make(map[string]map[int]int, len(c.Requests))
	for k, v := range s.stats.s.Requests {
		c.Requests[k] = maps.Clone(v)
	}
	c.Faults = maps.Clone(c.Faults)
	c.Mutations = maps.Clone(c.Mutations)
	return c
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.stats.mu.Lock()
	s.stats.s = newStats()
	s.stats.mu.Unlock()
}

// statusRecorder reports the status a handler writes, once, before any of the response reaches
// the client (a client that has its answer then always finds it counted).
type statusRecorder struct {
	http.ResponseWriter
	status   int
	onStatus func(int)
}

func (r *statusRecorder) setStatus(code int) {
	if r.status == 0 {
		r.status = code
		r.onStatus(code)
	}
}

func (r *statusRecorder) WriteHeader(code int) {
	r.setStatus(code)
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.setStatus(http.StatusOK)
	return r.ResponseWriter.Write(b)
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, s.Stats())
}
