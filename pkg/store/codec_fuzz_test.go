package store

import (
	"bytes"
	"testing"
)

// FuzzUnpackValue: decoding arbitrary stored bytes never panics, and whatever pack or raw stores
// reads back as it was, as a document and (raw) as an outbox line.
func FuzzUnpackValue(f *testing.F) {
	f.Add([]byte{codecRaw, '{', '}'}, []byte(`{"event_id":"e","incident":{}}`))
	f.Add([]byte{codecS2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, []byte(""))
	f.Add(pack([]byte(`{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}`)), []byte(`{"name":"n"}`))
	f.Fuzz(func(t *testing.T, stored, data []byte) {
		_, _ = unpack(stored)
		_, _ = outboxLine(stored)
		if got, err := unpack(pack(data)); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("pack round trip: %q, %v; want %q", got, err, data)
		}
		if got, err := outboxLine(raw(data)); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("raw round trip: %q, %v; want %q", got, err, data)
		}
	})
}
