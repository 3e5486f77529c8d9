package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SimListeningPrefix starts the one line the simulator prints once it serves (cmd/wizsim and
// `wizfetch bench-sim` alike).
const SimListeningPrefix = "wizsim listening on "

// simStartTimeout bounds how long the simulator may take to generate its data and listen (a
// million issues take a while on two cores).
const simStartTimeout = 10 * time.Minute

// simStopTimeout bounds how long the simulator may take to exit once told to.
const simStopTimeout = 15 * time.Second

// simProcess is the simulator child process.
type simProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   *os.File
	url   string
	done  chan error // Wait's result
}

// simSpec is the simulator the bench starts.
type simSpec struct {
	issues int
	seed   int64
	api    APIModel
}

// args are the `bench-sim` arguments serving spec with every generated issue visible.
func (spec simSpec) args() []string {
	args := []string{"bench-sim", "--listen", "127.0.0.1:0",
		"--issues", strconv.Itoa(spec.issues), "--seed", strconv.FormatInt(spec.seed, 10), "--reveal"}
	if spec.api.Rate > 0 {
		args = append(args, "--rate", strconv.FormatFloat(spec.api.Rate, 'g', -1, 64))
	}
	if spec.api.Latency > 0 {
		args = append(args, "--latency", spec.api.Latency.String())
	}
	if spec.api.LatencyPerIssue > 0 {
		args = append(args, "--latency-per-issue", spec.api.LatencyPerIssue.String())
	}
	return args
}

// startSim starts `bin bench-sim` serving spec, and waits for its URL. Its stderr goes to logPath.
// Closing its stdin (stop, or this process dying) stops it.
func startSim(ctx context.Context, bin string, spec simSpec, logPath string) (*simProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create the simulator log: %w", err)
	}
	cmd := exec.Command(bin, spec.args()...)
	cmd.Env = childEnv(nil)
	cmd.Stderr = logFile
	lw := &lineWatcher{prefix: SimListeningPrefix, found: make(chan string, 1)}
	cmd.Stdout = lw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("simulator stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start the simulator %s: %w", bin, err)
	}
	s := &simProcess{cmd: cmd, stdin: stdin, log: logFile, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()

	timer := time.NewTimer(simStartTimeout)
	defer timer.Stop()
	select {
	case s.url = <-lw.found:
		return s, nil
	case err := <-s.done:
		s.done <- err
		_ = s.stop()
		return nil, fmt.Errorf("the simulator exited before listening (%v): %s", err, tailFile(logPath, 2000))
	case <-ctx.Done():
		_ = s.stop()
		return nil, fmt.Errorf("wait for the simulator: %w", ctx.Err())
	case <-timer.C:
		_ = s.stop()
		return nil, fmt.Errorf("the simulator did not listen within %s: %s", simStartTimeout, tailFile(logPath, 2000))
	}
}

// stop closes the simulator's stdin, waits for it to exit (SIGTERM, then SIGKILL if it hangs) and
// closes its log. It reports an unclean exit.
func (s *simProcess) stop() error {
	if s.cmd == nil {
		return nil // a simulator the bench did not start (Options.SimURL)
	}
	defer s.log.Close()
	_ = s.stdin.Close()
	timer := time.NewTimer(simStopTimeout)
	defer timer.Stop()
	select {
	case err := <-s.done:
		if err != nil {
			return fmt.Errorf("simulator exit: %w", err)
		}
		return nil
	case <-timer.C:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer.Reset(simStopTimeout)
	select {
	case <-s.done:
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return fmt.Errorf("the simulator did not exit within %s of its stdin closing", simStopTimeout)
}

// lineWatcher is a child's stdout: it reports the rest of the first line starting with prefix and
// discards everything else.
type lineWatcher struct {
	prefix string
	found  chan string

	mu   sync.Mutex
	buf  []byte
	done bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 64<<10 { // no line this long is expected; keep memory bounded
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		line := strings.TrimSpace(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
		if rest, ok := strings.CutPrefix(line, w.prefix); ok {
			w.done = true
			w.buf = nil
			w.found <- strings.TrimSpace(rest)
			return len(p), nil
		}
	}
}

// childEnv is this process's environment without anything that would change a child's behaviour
// behind the bench's back (WIZFETCH_* config overrides, GODEBUG), plus extra.
func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WIZFETCH_") || strings.HasPrefix(kv, "GODEBUG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// tailFile returns at most the last n bytes of a log file, for error messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty log)"
	}
	return s
}
