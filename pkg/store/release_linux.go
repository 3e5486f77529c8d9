package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleaseMemory drops the store's memory-mapped pages from the process's resident set (MADV_DONTNEED).
// bbolt reads through a read-only shared mmap of the whole file, so every page a lookup touches stays
// resident: with issue ids as random keys, a long backfill would make the whole file resident and the
// daemon's RSS would grow with the store. The data stays in the file and the kernel's page cache, so the
// next access is a cheap minor fault. It runs inside a read transaction, which keeps bbolt from
// remapping the file meanwhile (a remap needs every reader gone), and only covers the file's used size.
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
