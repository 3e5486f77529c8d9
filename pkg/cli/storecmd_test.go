package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedStoreIsAClearFailure: a store file cut short makes `run`, `incidents list` and `store
// check` exit 1 with an error naming the file and what to do — not a fault or a bbolt panic (exit 2).
// A healthy store passes `store check`.
func TestDamagedStoreIsAClearFailure(t *testing.T) {
	path, dir := opsConfig(t)
	if r := runCLI(t, path, "store", "check"); r.code != 0 || !strings.Contains(r.stdout, ": ok") {
		t.Fatalf("store check of a healthy store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	db := filepath.Join(dir, "state.db")
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, fi.Size()*2/3); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"store", "check"},
		{"incidents", "list"},
		{"run", "--until-idle"},
	} {
		r := runCLI(t, path, args...)
		if r.code != 1 {
			t.Fatalf("%v on a truncated store: exit %d, want 1\n%s", args, r.code, r.stderr)
		}
		for _, want := range []string{db, "damaged", "restore the file from a backup"} {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("%v: the error does not say %q:\n%s", args, want, r.stderr)
			}
		}
	}
}
