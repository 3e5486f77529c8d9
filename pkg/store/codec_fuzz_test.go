package store

import (
	"bytes"
	"testing"
)

// FuzzUnpackValue feeds arbitrary stored values to the decoders: a damaged value is an error, never a
// panic, and both decoders agree; a value built by AppendPackedEvent always reads back as its line.
func FuzzUnpackValue(f *testing.F) {
	f.Add([]byte{codecRaw, '{', '}'}, []byte(`{"p":`), []byte(`{"incident":"x"}`))
	f.Add([]byte{codecEvent, 1, '{', 1, '}', 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, []byte(""), []byte(""))
	f.Add(AppendPackedIncident([]byte{}, []byte(`{"a":"b"}`)), []byte(`{"event_id":"e","incident":`), []byte(`{"name":"n"}`))
	f.Fuzz(func(t *testing.T, stored, prefix, incident []byte) {
		one, err1 := unpack(stored)
		two, err2 := unpackAppend([]byte("head"), stored)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("unpack: %v, unpackAppend: %v", err1, err2)
		}
		if err1 == nil && !bytes.Equal(append([]byte("head"), one...), two) {
			t.Fatalf("unpack and unpackAppend disagree: %q, %q", one, two)
		}
		v := AppendPackedEvent(nil, prefix, AppendPackedIncident(nil, incident), []byte("}"))
		line, err := unpack(v)
		if err != nil {
			t.Fatalf("a packed event does not read back: %v", err)
		}
		if want := string(prefix) + string(incident) + "}"; string(line) != want {
			t.Fatalf("packed event reads back as %q, want %q", line, want)
		}
	})
}
