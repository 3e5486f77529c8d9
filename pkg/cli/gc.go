package cli

import "runtime/debug"

// Garbage collector defaults for the daemon (`run`, `demo`), used unless the operator sets GOGC or
// GOMEMLIMIT. wizfetch's live heap is small (about 15-25 MiB: two pages in flight, the sinks'
// batches) while a backfill allocates about 45 KiB per issue, so at Go's default GOGC=100 the
// collector runs very often: `wizfetch bench --issues 50000` measured 0.063 ms of CPU per issue at
// GOGC=100 and 0.053 at 200, for about 15 MiB more peak RSS. The soft memory limit is a backstop
// should the live set ever grow large: the collector then works harder instead of letting the heap
// reach three times the live set.
const (
	daemonGOGC        = 200
	daemonMemoryLimit = 512 << 20
)

// tuneDaemonGC applies the defaults above where the environment does not set its own. Only the
// long-running commands call it: the collector settings are process-wide.
func tuneDaemonGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGOGC)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(daemonMemoryLimit)
	}
}
