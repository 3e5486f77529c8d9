//go:build !linux

package sink

import "os"

// dropPageCache is a no-op where posix_fadvise is not available.
func dropPageCache(*os.File, int64, int64) error { return nil }
