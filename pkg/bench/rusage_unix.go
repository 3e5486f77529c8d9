//go:build unix

package bench

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// usage returns a finished child's user+sys CPU time and peak RSS in bytes.
func usage(ps *os.ProcessState) (time.Duration, int64) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return ps.UserTime() + ps.SystemTime(), 0
	}
	rss := int64(ru.Maxrss)
	if runtime.GOOS != "darwin" { // Linux and the BSDs report KiB, macOS bytes
		rss *= 1024
	}
	return ps.UserTime() + ps.SystemTime(), rss
}
