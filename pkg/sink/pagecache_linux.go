package sink

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropPageCache advises the kernel that f's bytes [off, off+n) will not be read again
// (POSIX_FADV_DONTNEED): clean pages are dropped from the page cache at once.
func dropPageCache(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var adviseErr error
	if err := rc.Control(func(fd uintptr) {
		adviseErr = unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED)
	}); err != nil {
		return err
	}
	return adviseErr
}
