package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wizfetch/wizfetch/pkg/store"
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

// TestDropOutboxOfARemovedSink: `store drop-outbox` refuses a sink the config has, drops the outbox
// of one it lacks (saying how many events it held) and leaves every other outbox alone; a second
// call finds nothing to drop.
func TestDropOutboxOfARemovedSink(t *testing.T) {
	path, dir := opsConfig(t)
	db := filepath.Join(dir, "state.db")
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *store.Tx) error {
		for i := range 3 {
			if _, err := tx.Enqueue("gone", "default", []byte(fmt.Sprintf(`{"event_id":"e%d"}`, i))); err != nil {
				return err
			}
		}
		_, err := tx.Enqueue("file", "default", []byte(`{"event_id":"kept"}`))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if r := runCLI(t, path, "store", "drop-outbox", "file"); r.code != 2 || !strings.Contains(r.stderr, "is in the config") {
		t.Fatalf("drop-outbox of a configured sink: exit %d\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, path, "store", "drop-outbox", "gone"); r.code != 0 || !strings.Contains(r.stdout, "sink gone: 3 undelivered event(s)") {
		t.Fatalf("drop-outbox gone: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, path, "store", "drop-outbox", "gone"); r.code != 1 || !strings.Contains(r.stderr, "no outbox") {
		t.Fatalf("a second drop-outbox: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	st, err = store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for sink, want := range map[string]int{"gone": 0, "file": 1} {
		n, err := st.OutboxDepth(sink)
		if err != nil || n != want {
			t.Fatalf("outbox of %s holds %d events (%v), want %d", sink, n, err, want)
		}
	}
}
