package wiz

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// FuzzBoundedBody: whatever a server sends (any body, length, declared Content-Length, status and
// gzip), the bounded reader never yields more than its bound, fails with a *bodyTooLargeError
// exactly when a 2xx body is longer than the bound, and hands a body within the bound back whole.
func FuzzBoundedBody(f *testing.F) {
	f.Add([]byte(`{"data":{}}`), uint16(64), int64(-1), uint16(200), false)
	f.Add(bytes.Repeat([]byte("x"), 300), uint16(64), int64(300), uint16(200), true)
	f.Add(bytes.Repeat([]byte("y"), 100), uint16(100), int64(100), uint16(500), false)
	f.Add([]byte("short"), uint16(5), int64(1<<40), uint16(200), false)
	f.Fuzz(func(t *testing.T, body []byte, bound uint16, declared int64, status uint16, gz bool) {
		limit := int64(bound%4096) + 1
		code := 100 + int(status%500)
		wire := body
		h := http.Header{}
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			wire = buf.Bytes()
			h.Set("Content-Encoding", "gzip")
		}
		if declared >= 0 {
			h.Set("Content-Length", strconv.FormatInt(declared, 10))
		}
		resp := &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(wire)), ContentLength: declared}
		got, err := io.ReadAll(boundedBody(resp, limit))
		if int64(len(got)) > limit {
			t.Fatalf("read %d bytes past the bound of %d", len(got), limit)
		}
		var tooLarge *bodyTooLargeError
		is2xx := code >= 200 && code <= 299
		switch {
		case !is2xx:
			if err != nil && !gz {
				t.Fatalf("a non-2xx body failed: %v", err)
			}
			if err == nil && !bytes.HasPrefix(body, got) {
				t.Fatalf("a non-2xx body changed: %q is not a prefix of the body", got)
			}
		case int64(len(body)) > limit:
			if !errors.As(err, &tooLarge) {
				t.Fatalf("a body of %d bytes over a bound of %d ended with %v", len(body), limit, err)
			}
		case !gz && declared > limit:
			// A Content-Length above the bound is refused up front, whatever follows.
			if !errors.As(err, &tooLarge) {
				t.Fatalf("a declared length of %d over %d ended with %v", declared, limit, err)
			}
		default:
			if err != nil && !gz {
				t.Fatalf("a body within the bound failed: %v", err)
			}
			if err == nil && !bytes.Equal(got, body) {
				t.Fatalf("a body within the bound came back as %q, want %q", got, body)
			}
		}
	})
}
