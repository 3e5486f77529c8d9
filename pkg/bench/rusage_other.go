//go:build !unix

package bench

import (
	"os"
	"time"
)

// usage returns a finished child's user+sys CPU time; peak RSS is unknown here (0).
func usage(ps *os.ProcessState) (time.Duration, int64) {
	return ps.UserTime() + ps.SystemTime(), 0
}
