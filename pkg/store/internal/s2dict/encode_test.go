package s2dict

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/klauspost/compress/s2"
)

// testDict is the dictionary wizfetch's store uses.
func testDict(t testing.TB) *s2.Dict {
	t.Helper()
	data, err := os.ReadFile("../../incident_dict_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	d := s2.MakeDict(data, nil)
	if d == nil {
		t.Fatal("MakeDict returned nil")
	}
	return d
}

// testDocs are incidents as the store keeps them (simulated issues, mapped).
func testDocs(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open("testdata/incidents.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var docs [][]byte
	for sc.Scan() {
		docs = append(docs, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil || len(docs) == 0 {
		t.Fatalf("read testdata: %v (%d docs)", err, len(docs))
	}
	return docs
}

// inputs are the documents and the shapes an encoder gets wrong: empty, shorter than a match,
// just above the literal-only size, incompressible, long runs, and longer than the 64 KiB a
// dictionary block can refer back over.
func inputs(t testing.TB) [][]byte {
	docs := testDocs(t)
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 5000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	in := [][]byte{nil, []byte("a"), []byte(`{"name":"x"}`), bytes.Repeat([]byte("a"), 31),
		bytes.Repeat([]byte("a"), 32), bytes.Repeat([]byte("ab"), 5000), random, bytes.Join(docs, nil)}
	for _, d := range docs {
		in = append(in, d, d[:len(d)/2], d[len(d)/3:], append(bytes.Clone(d), random[:200]...))
	}
	big := bytes.Join(append(docs, docs...), []byte("\n")) // > s2.MaxDictSrcOffset
	for len(big) <= s2.MaxDictSrcOffset+1000 {
		big = append(big, big...)
	}
	return append(in, big)
}

func TestRoundTrip(t *testing.T) {
	d := testDict(t)
	e := New(d)
	for i, src := range inputs(t) {
		enc := e.Encode(nil, src)
		dec, err := d.Decode(nil, enc)
		if err != nil {
			t.Fatalf("input %d (%d bytes): s2 cannot decode the block: %v", i, len(src), err)
		}
		if !bytes.Equal(dec, src) {
			t.Fatalf("input %d (%d bytes): the block decodes to %d other bytes", i, len(src), len(dec))
		}
		if n := s2.MaxEncodedLen(len(src)); len(enc) > n {
			t.Fatalf("input %d: %d encoded bytes, above s2.MaxEncodedLen %d", i, len(enc), n)
		}
	}
}

// TestReusesDst pins the contract the store relies on: with room enough, the block is written
// into dst and nothing is allocated.
func TestReusesDst(t *testing.T) {
	e := New(testDict(t))
	src := testDocs(t)[0]
	dst := make([]byte, s2.MaxEncodedLen(len(src)))
	if enc := e.Encode(dst, src); &enc[0] != &dst[0] {
		t.Fatal("Encode did not write into dst")
	}
	if allocs := testing.AllocsPerRun(20, func() { e.Encode(dst, src) }); allocs != 0 {
		t.Fatalf("Encode allocated %.0f times with room in dst", allocs)
	}
}

// TestCompressesAsUpstream guards the one change against costing compression: the smaller table
// must compress the store's documents within 3 % of upstream's encoder.
func TestCompressesAsUpstream(t *testing.T) {
	d := testDict(t)
	e := New(d)
	var ours, upstream int
	for _, src := range testDocs(t) {
		ours += len(e.Encode(nil, src))
		upstream += len(d.Encode(nil, src))
	}
	if float64(ours) > 1.03*float64(upstream) {
		t.Fatalf("%d bytes encoded, against %d with s2.Dict.Encode", ours, upstream)
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, src := range inputs(f) {
		if len(src) < 20000 {
			f.Add(src)
		}
	}
	d := testDict(f)
	e := New(d)
	f.Fuzz(func(t *testing.T, src []byte) {
		enc := e.Encode(nil, src)
		dec, err := d.Decode(nil, enc)
		if err != nil {
			t.Fatalf("s2 cannot decode the block of %d bytes: %v", len(src), err)
		}
		if !bytes.Equal(dec, src) {
			t.Fatalf("%d bytes round-trip to %d other bytes", len(src), len(dec))
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	d := testDict(b)
	e := New(d)
	docs := testDocs(b)
	dst := make([]byte, 64<<10)
	size := 0
	for _, doc := range docs {
		size += len(doc)
	}
	for _, bc := range []struct {
		name   string
		encode func(dst, src []byte) []byte
	}{{"s2dict", e.Encode}, {"upstream", d.Encode}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(size / len(docs)))
			for i := 0; b.Loop(); i++ {
				bc.encode(dst, docs[i%len(docs)])
			}
		})
	}
}
