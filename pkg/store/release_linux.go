package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleaseMemory drops the store's memory-mapped pages from the process's resident set (MADV_DONTNEED).
// bbolt reads through a read-only shared mmap of the whole file, so every page a read touches stays
// resident until the kernel needs the memory: without this, reading every event of a long backfill
// (and walking the indexes) would make the daemon's RSS grow with the store. The data stays in the
// file and the kernel's page cache, so the next access is a cheap minor fault. It runs inside a read
// transaction, which keeps bbolt from remapping the file meanwhile (a remap needs every reader
// gone), and only covers the file's used size. Outbox reads and acknowledgements also drop the pages
// they touched right away (mappedSpan).
func (s *Store) ReleaseMemory() error {
	return s.db.View(func(btx *bolt.Tx) error {
		info := s.db.Info()
		size := uintptr(btx.Size())
		if info == nil || info.Data == 0 || size == 0 {
			return nil
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, info.Data, size, unix.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("release store memory: %w", errno)
		}
		return nil
	})
}

// maxSpanRelease bounds the range one mappedSpan.release covers: values scattered across a large
// file are left to the periodic ReleaseMemory instead of walking a huge range.
const maxSpanRelease = 64 << 20

// release drops the whole OS pages inside the span from the resident set, if the span lies inside
// the file's mapping as tx sees it. It must run inside the transaction that read the values (bbolt
// cannot remap the file meanwhile). Values do not always alias the mapping — bbolt copies an
// unaligned inline bucket to the heap, for one — and MADV_DONTNEED on heap memory would zero it, so
// anything outside the mapping is left alone. The data stays in the file and the page cache; a later
// read of a page that still holds live values is a minor fault.
func (s *mappedSpan) release(tx *Tx) {
	info := tx.store.db.Info()
	if info == nil || info.Data == 0 || s.hi == 0 {
		return
	}
	start, end := info.Data, info.Data+uintptr(tx.btx.Size())
	page := uintptr(unix.Getpagesize())
	lo := s.lo &^ (page - 1)
	hi := (s.hi + page - 1) &^ (page - 1)
	if s.lo < start || s.hi > end || lo < start || hi > end || hi <= lo || hi-lo > maxSpanRelease {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_DONTNEED)
}
