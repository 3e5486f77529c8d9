package boltkv_test

import (
	"path/filepath"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
	"github.com/wizfetch/wizfetch/pkg/kv/kvtest"
)

// TestConformance runs the kv contract's suite against a bbolt file.
func TestConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.DB {
		db, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		})
		return db
	})
}
