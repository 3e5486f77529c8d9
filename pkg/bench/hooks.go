package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// Environment variables a `wizfetch run` child honours for the bench.
const (
	// StatsEnv names a file the process writes ChildStats to as JSON when the run ends.
	StatsEnv = "WIZFETCH_BENCH_STATS"
	// CPUProfileEnv names a file the process writes a CPU profile (pprof) of the run to.
	CPUProfileEnv = "WIZFETCH_CPUPROFILE"
	// MemProfileEnv names a file the process writes an allocation profile (pprof "allocs") of the
	// run to.
	MemProfileEnv = "WIZFETCH_MEMPROFILE"
)

// StartChildHooks starts what StatsEnv and CPUProfileEnv ask for (nothing when neither is set) and
// returns the function to call once the run has returned: it stops the profile and writes the
// stats. getenv is the process environment lookup (os.Getenv).
func StartChildHooks(getenv func(string) string) (stop func() error, err error) {
	statsPath, profilePath, memPath := getenv(StatsEnv), getenv(CPUProfileEnv), getenv(MemProfileEnv)
	var profile *os.File
	if profilePath != "" {
		if profile, err = os.Create(profilePath); err != nil {
			return nil, fmt.Errorf("%s: %w", CPUProfileEnv, err)
		}
		if err := pprof.StartCPUProfile(profile); err != nil {
			profile.Close()
			return nil, fmt.Errorf("%s: start CPU profile: %w", CPUProfileEnv, err)
		}
	}
	return func() error {
		var errs []error
		if profile != nil {
			pprof.StopCPUProfile()
			if err := profile.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", CPUProfileEnv, err))
			}
		}
		if memPath != "" {
			if err := writeAllocsProfile(memPath); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", MemProfileEnv, err))
			}
		}
		if statsPath != "" {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b, err := json.Marshal(ChildStats{Mallocs: ms.Mallocs, TotalAlloc: ms.TotalAlloc})
			if err == nil {
				err = os.WriteFile(statsPath, b, 0o600)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", StatsEnv, err))
			}
		}
		return errors.Join(errs...)
	}, nil
}

// writeAllocsProfile writes the allocation profile of the process so far to path.
func writeAllocsProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
