//go:build (amd64 || arm64 || ppc64le || riscv64) && !s2dict_checked && !purego

package s2dict

import "unsafe"

// load32 and load64 read without a bounds check, as s2 does on the same 64-bit little-endian
// platforms (its internal/le): the encoder only loads inside src and the dictionary, and relies
// on little-endian order (match lengths come from the trailing zeros of two loads XORed).
// Elsewhere, with -tags purego, or with -tags s2dict_checked (the fuzz script and CI build with
// it), load_checked.go reads little-endian with a bounds check, so a read out of bounds panics in
// the tests.

func load32(b []byte, i int) uint32 {
	return *(*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

func load64(b []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}
