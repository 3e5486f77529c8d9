package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
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
	// TraceEnv names a file the process writes an execution trace (`go tool trace`) of the run to:
	// where the pipeline's goroutines wait, and for what.
	TraceEnv = "WIZFETCH_TRACE"
)

// StartChildHooks starts what StatsEnv, CPUProfileEnv, MemProfileEnv and TraceEnv ask for (nothing when neither is set) and
// returns the function to call once the run has returned: it stops the profile and writes the
// stats. getenv is the process environment lookup (os.Getenv).
func StartChildHooks(getenv func(string) string) (stop func() error, err error) {
	statsPath, profilePath, memPath := getenv(StatsEnv), getenv(CPUProfileEnv), getenv(MemProfileEnv)
	var profile, traceFile *os.File
	if tracePath := getenv(TraceEnv); tracePath != "" {
		if traceFile, err = os.Create(tracePath); err != nil {
			return nil, fmt.Errorf("%s: %w", TraceEnv, err)
		}
		if err := trace.Start(traceFile); err != nil {
			traceFile.Close()
			return nil, fmt.Errorf("%s: start trace: %w", TraceEnv, err)
		}
	}
	if profilePath != "" {
		if profile, err = os.Create(profilePath); err != nil {
			return nil, fmt.Errorf("%s: %w", CPUProfileEnv, err)
		}
		if err := pprof.StartCPUProfile(profile); err != nil {
			profile.Close()
			if traceFile != nil {
				trace.Stop()
				traceFile.Close()
			}
			return nil, fmt.Errorf("%s: start CPU profile: %w", CPUProfileEnv, err)
		}
	}
	return func() error {
		var errs []error
		if traceFile != nil {
			trace.Stop()
			if err := traceFile.Close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", TraceEnv, err))
			}
		}
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
