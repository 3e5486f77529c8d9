package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// filledStore writes a store with enough sink state to span many pages and returns its path.
func filledStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wizfetch.db")
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	val := []byte(strings.Repeat("v", 900))
	for batch := 0; batch < 4; batch++ {
		err := st.Update(func(tx *Tx) error {
			for i := 0; i < 500; i++ {
				if err := tx.PutSinkState("soc", fmt.Sprintf("key-%d-%04d", batch, i), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readEverything reads every sink state value, touching every leaf.
func readEverything(st *Store) error {
	return st.View(func(tx *Tx) error {
		for batch := 0; batch < 4; batch++ {
			for i := 0; i < 500; i++ {
				if _, err := tx.SinkState("soc", fmt.Sprintf("key-%d-%04d", batch, i)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func wantCorrupt(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, "restore the file from a backup") {
		t.Fatalf("the error names neither the file nor what to do: %s", msg)
	}
}

// TestOpenTruncatedStore: a file cut short is refused at open with ErrCorrupt naming it, in both
// modes, instead of faulting on the first read beyond its end.
func TestOpenTruncatedStore(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("readOnly=%v", readOnly), func(t *testing.T) {
			path := filledStore(t)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			st, err := Open(path, Options{ReadOnly: readOnly})
			if err == nil {
				st.Close()
				t.Fatal("a truncated store opened")
			}
			wantCorrupt(t, err, path)
			if !strings.Contains(err.Error(), "truncated") || strings.Count(err.Error(), path) != 1 {
				t.Fatalf("the error does not say the file was truncated: %v", err)
			}
		})
	}
}

// TestTinyStoreFileIsCorrupt: a file shorter than bbolt's two meta pages is damaged, not "unreadable".
func TestTinyStoreFileIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wizfetch.db")
	if err := os.WriteFile(path, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	wantCorrupt(t, err, path)
}

// TestGarbledStoreIsAnErrorNotACrash: pages overwritten with garbage make reads (at open or later)
// fail with ErrCorrupt; the process survives, and Check reports the damage.
func TestGarbledStoreIsAnErrorNotACrash(t *testing.T) {
	patterns := map[string]byte{"ones": 0xFF, "zeros": 0x00, "pattern": 0xA5}
	for name, b := range patterns {
		t.Run(name, func(t *testing.T) {
			path := filledStore(t)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Keep the two meta pages (so bbolt opens the file) and garble every other page.
			for i := 2 * pageSize; i < len(raw); i++ {
				raw[i] = b ^ byte(i)
			}
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				wantCorrupt(t, err, path)
				return
			}
			defer st.Close()
			if err := readEverything(st); err != nil {
				wantCorrupt(t, err, path)
			} else {
				t.Fatal("every value of a garbled store read back without an error")
			}
			problems, err := st.Check(10)
			if err == nil && len(problems) == 0 {
				t.Fatal("Check found nothing wrong with a garbled store")
			}
			if err != nil {
				wantCorrupt(t, err, path)
			}
		})
	}
}

// TestCheckHealthyStore: a healthy store has no problems and reads back whole.
func TestCheckHealthyStore(t *testing.T) {
	path := filledStore(t)
	st, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	problems, err := st.Check(0)
	if err != nil || len(problems) != 0 {
		t.Fatalf("Check of a healthy store: %v %v", problems, err)
	}
	if err := readEverything(st); err != nil {
		t.Fatal(err)
	}
}
