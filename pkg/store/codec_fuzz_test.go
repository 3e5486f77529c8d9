package store

import (
	"bytes"
	"testing"
)

// FuzzUnpackValue: decoding arbitrary stored bytes never panics, and whatever pack, raw or stored
// stores reads back as it was, as a document and (raw, stored) as an outbox line; stored keeps a
// JSON object as it is.
func FuzzUnpackValue(f *testing.F) {
	f.Add([]byte{codecRaw, '{', '}'}, []byte(`{"event_id":"e","incident":{}}`))
	f.Add([]byte{codecS2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, []byte(""))
	f.Add(pack([]byte(`{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}`)), []byte(`{"name":"n"}`))
	f.Add([]byte(`{"event_id":"e"}`), []byte(`{"event_id":"e"}`))
	f.Fuzz(func(t *testing.T, value, data []byte) {
		_, _ = unpack(value)
		_, _ = outboxLine(value)
		if got, err := unpack(pack(data)); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("pack round trip: %q, %v; want %q", got, err, data)
		}
		if got, err := outboxLine(raw(data)); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("raw round trip: %q, %v; want %q", got, err, data)
		}
		if len(data) == 0 {
			return // the store refuses an empty event; an empty document is none
		}
		v := stored(data)
		if (data[0] == plainJSON) != (len(v) == len(data)) {
			t.Fatalf("stored(%q) = %q: a JSON object is kept as it is, anything else gets a codec byte", data, v)
		}
		for _, read := range []func([]byte) ([]byte, error){unpack, outboxLine} {
			if got, err := read(v); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("stored round trip: %q, %v; want %q", got, err, data)
			}
		}
	})
}
