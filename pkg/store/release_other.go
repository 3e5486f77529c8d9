//go:build !linux

package store

// ReleaseMemory is a no-op where MADV_DONTNEED is not available.
func (s *Store) ReleaseMemory() error { return nil }

// release is a no-op where MADV_DONTNEED is not available.
func (s *mappedSpan) release(*Tx) {}
