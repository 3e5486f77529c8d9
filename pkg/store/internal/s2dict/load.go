//go:build !s2dict_checked

package s2dict

import "unsafe"

// load32 and load64 read without a bounds check, as s2 does on amd64 and arm64: the encoder only
// loads inside src and the dictionary. Built with -tags s2dict_checked (the fuzz script and CI
// do), they check every load instead, so a read out of bounds panics in the tests.

func load32(b []byte, i int) uint32 {
	return *(*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

func load64(b []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}
