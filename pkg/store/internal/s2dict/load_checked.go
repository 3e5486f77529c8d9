//go:build !(amd64 || arm64 || ppc64le || riscv64) || s2dict_checked || purego

package s2dict

import "encoding/binary"

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }
