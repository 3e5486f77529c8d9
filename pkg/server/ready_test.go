package server

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// TestReadyzFollowsStoreWrites: a ready daemon whose store no longer takes writes (a full disk)
// answers 503 on /readyz; pushes and page commits would fail, so traffic should go elsewhere.
func TestReadyzFollowsStoreWrites(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "wizfetch.db"), store.Options{NoSync: true, MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newServer(t, Options{Store: st})
	s.SetReady(true)
	if rec := get(t, s.Handler(), http.MethodGet, "/readyz", ""); rec.Code != http.StatusOK {
		t.Fatalf("readyz with a healthy store: %d", rec.Code)
	}
	big := []byte(strings.Repeat("x", 64<<10))
	var failed error
	for i := 0; i < 64 && failed == nil; i++ {
		failed = st.Update(func(tx *store.Tx) error { return tx.PutSinkState("s", fmt.Sprint("k", i), big) })
	}
	if failed == nil {
		t.Fatal("the store never filled up")
	}
	rec := get(t, s.Handler(), http.MethodGet, "/readyz", "")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "store writes fail") {
		t.Fatalf("readyz with a full store: %d %s", rec.Code, rec.Body.String())
	}
	if rec := get(t, s.Handler(), http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
		t.Fatalf("healthz with a full store: %d (the process is alive)", rec.Code)
	}
}
