package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// pipelineSpec is what runPipeline needs.
type pipelineSpec struct {
	binary     string
	dir        string
	simURL     string
	pageSize   int
	rate       float64 // wiz.requests_per_second; 0 = unthrottled
	cpuProfile string
	memProfile string
}

// pipelineResult is what the pipeline child measured.
type pipelineResult struct {
	events      int
	wall        time.Duration
	cpu         time.Duration
	maxRSSBytes int64
	stats       ChildStats
}

// unthrottledRPS is the pipeline's wiz.requests_per_second without an API rate: far above what the
// simulator answers, so the client never waits for its pacer.
const unthrottledRPS = 1000

// pipelineConfig renders the child's config: every status (so every issue is emitted), no updates
// feed, the largest page the contract allows, a client paced at rate (unthrottled when 0), lookback
// 8d (the simulator spans 7 days), a JSONL sink and a store in dir, and an HTTP server on a free
// loopback port.
func pipelineConfig(dir, simURL string, pageSize int, rate float64) string {
	q := strconv.Quote
	if rate <= 0 {
		rate = unthrottledRPS
	}
	return fmt.Sprintf(`wiz:
  api_url: %s
  auth_url: %s
  audience: %s
  client_id: %s
  client_secret: %s
  requests_per_second: %s
fetch:
  interval: 1s
  lookback: 8d
  max_per_fetch: %d
  catch_up: true
  updates: false
  status: [OPEN, IN_PROGRESS, RESOLVED, REJECTED]
store:
  path: %s
sinks:
  - {name: file, type: jsonl, path: %s}
server:
  listen: 127.0.0.1:0
`, q(simURL+"/graphql"), q(simURL+"/oauth/token"), simAudience, simClientID, simClientSecret,
		strconv.FormatFloat(rate, 'g', -1, 64), pageSize,
		q(filepath.Join(dir, "wizfetch.db")), q(filepath.Join(dir, "incidents.jsonl")))
}

// runPipeline runs `wizfetch run --until-idle` in a child process against the simulator and
// measures it: wall time, rusage (CPU, peak RSS), events written and the child's own allocation
// counters (StatsEnv).
func runPipeline(ctx context.Context, p pipelineSpec) (pipelineResult, error) {
	cfgPath := filepath.Join(p.dir, "wizfetch.yaml")
	if err := os.WriteFile(cfgPath, []byte(pipelineConfig(p.dir, p.simURL, p.pageSize, p.rate)), 0o600); err != nil {
		return pipelineResult{}, fmt.Errorf("write the pipeline config: %w", err)
	}
	logPath := filepath.Join(p.dir, "run.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return pipelineResult{}, fmt.Errorf("create the pipeline log: %w", err)
	}
	defer logFile.Close()
	statsPath := filepath.Join(p.dir, "stats.json")
	extra := []string{StatsEnv + "=" + statsPath}
	if p.cpuProfile != "" {
		extra = append(extra, CPUProfileEnv+"="+p.cpuProfile)
	}
	if p.memProfile != "" {
		extra = append(extra, MemProfileEnv+"="+p.memProfile)
	}

	cmd := exec.CommandContext(ctx, p.binary, "run", "--until-idle", "--config", cfgPath)
	cmd.Env = childEnv(extra)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// On cancellation the daemon gets SIGTERM (it shuts down within 10 s), then SIGKILL.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return pipelineResult{}, fmt.Errorf("start %s run: %w", p.binary, err)
	}
	runErr := cmd.Wait()
	wall := time.Since(start)
	if runErr != nil {
		if ctx.Err() != nil {
			return pipelineResult{}, fmt.Errorf("pipeline: %w", ctx.Err())
		}
		return pipelineResult{}, fmt.Errorf("pipeline run --until-idle: %w; log tail:\n%s", runErr, tailFile(logPath, 3000))
	}
	res := pipelineResult{wall: wall}
	res.cpu, res.maxRSSBytes = usage(cmd.ProcessState)

	if res.events, err = countLines(filepath.Join(p.dir, "incidents.jsonl")); err != nil {
		return res, err
	}
	b, err := os.ReadFile(statsPath)
	if err != nil {
		return res, fmt.Errorf("read the pipeline's stats (is %s a wizfetch with the %s hook?): %w", p.binary, StatsEnv, err)
	}
	if err := json.Unmarshal(b, &res.stats); err != nil {
		return res, fmt.Errorf("decode %s: %w", statsPath, err)
	}
	return res, nil
}

// countLines counts the complete lines of a file.
func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n := 0
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("count events in %s: %w", path, err)
		}
	}
}

// ChildStats is what a `wizfetch run` child writes to the file named by StatsEnv when it exits.
type ChildStats struct {
	// Mallocs is runtime.MemStats.Mallocs: heap objects allocated over the process's life.
	Mallocs uint64 `json:"mallocs"`
	// TotalAlloc is runtime.MemStats.TotalAlloc: bytes allocated over the process's life.
	TotalAlloc uint64 `json:"total_alloc"`
}
