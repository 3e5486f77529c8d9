package store

import "unsafe"

// mappedSpan is the address range covered by values read from the memory-mapped file within one
// transaction.
type mappedSpan struct{ lo, hi uintptr }

// add widens the span to cover v, a value slice that aliases the mapping.
func (s *mappedSpan) add(v []byte) {
	if len(v) == 0 {
		return
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	hi := lo + uintptr(len(v))
	if s.hi == 0 || lo < s.lo {
		s.lo = lo
	}
	if hi > s.hi {
		s.hi = hi
	}
}
