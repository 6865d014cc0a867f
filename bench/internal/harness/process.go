package harness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/internal/proc"
)

// Process is one `cutover start` running in the background, its output kept in a log.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	ready   string        // the line that says change data capture started
	Started time.Time     // when it was started
	Done    chan struct{} // closed when the process has exited
	err     error         // Wait's error, set before Done closes
	addr    chan string   // the /metrics address, once printed

	mu  sync.Mutex
	cdc time.Time // when it printed the ready line
}

// What cutover prints when its change stream starts: CDCFromSlot between PostgreSQL
// servers, CDCFromBinlog between MySQL/MariaDB servers, CDCFromOtherEngine into
// PostgreSQL from another engine.
const (
	CDCFromSlot        = "change data capture from slot"
	CDCFromBinlog      = "change data capture from the source's binary log"
	CDCFromOtherEngine = "change data capture from the source ("
)

// StartCutover runs `cutover start -c plan` with env added to its environment,
// appending its output to logPath; ready is the line (a part of it) that says change
// data capture started.
func StartCutover(bin, plan, logPath, ready string, env ...string) (*Process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "==== %s cutover start -c %s\n", time.Now().Format("15:04:05.000"), plan)
	p := &Process{logPath: logPath, ready: ready, addr: make(chan string, 1), Done: make(chan struct{})}
	p.cmd = exec.Command(bin, "start", "-c", plan)
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stderr = log
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("cutover start: %w", err)
	}
	go func() {
		p.scan(out, log)
		p.err = p.cmd.Wait()
		log.Close()
		close(p.Done)
	}()
	return p, nil
}

// scan copies the output to the log and notes the lines the benchmark waits for.
func (p *Process) scan(out io.Reader, log io.Writer) {
	const serving = "serving /metrics and /api/status on http://"
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if os.Getenv("BENCH_VERBOSE") != "" {
			fmt.Println("  cutover |", line)
		}
		if i := strings.Index(line, serving); i >= 0 {
			select {
			case p.addr <- strings.TrimSpace(line[i+len(serving):]):
			default:
			}
		}
		if strings.Contains(line, p.ready) {
			p.mu.Lock()
			p.cdc = time.Now()
			p.mu.Unlock()
		}
	}
}

// MetricsAddr waits for the address cutover serves /metrics on.
func (p *Process) MetricsAddr() (string, error) {
	select {
	case a := <-p.addr:
		return a, nil
	case <-p.Done:
		return "", p.Exited()
	case <-time.After(time.Minute):
		return "", fmt.Errorf("cutover printed no /metrics address within a minute\n%s", p.Tail())
	}
}

// CDCStarted is when the process said change data capture started (zero if not yet).
func (p *Process) CDCStarted() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cdc
}

// WaitCDC waits until the process says change data capture started: the full load is done.
func (p *Process) WaitCDC(timeout time.Duration) error {
	deadline := time.After(timeout)
	for p.CDCStarted().IsZero() {
		select {
		case <-p.Done:
			return p.Exited()
		case <-deadline:
			return fmt.Errorf("cutover did not start change data capture within %v\n%s", timeout, p.Tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Lines is how many lines of the log so far contain part (cutover's output, and
// what it wrote to stderr).
func (p *Process) Lines(part string) int {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, part) {
			n++
		}
	}
	return n
}

// WaitLines waits until at least n lines of the log contain part (Lines); the
// process must stay up meanwhile.
func (p *Process) WaitLines(part string, n int, timeout time.Duration) error {
	deadline := time.After(timeout)
	for p.Lines(part) < n {
		select {
		case <-p.Done:
			return p.Exited()
		case <-deadline:
			return fmt.Errorf("cutover did not print %q (%d times) within %v\n%s", part, n, timeout, p.Tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Stop sends SIGTERM, a clean stop, and waits for exit status 0.
func (p *Process) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(2 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.Done
		return fmt.Errorf("cutover did not stop within 2 minutes of SIGTERM\n%s", p.Tail())
	}
	if p.err != nil {
		return fmt.Errorf("cutover stopped with %v after SIGTERM (want exit status 0)\n%s", p.err, p.Tail())
	}
	return nil
}

// Exited says that the process ended while the benchmark needed it.
func (p *Process) Exited() error {
	return fmt.Errorf("cutover exited unexpectedly (%v)\n%s", p.err, p.Tail())
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// PeakRSSMB is the process's peak resident set, once it has exited.
func (p *Process) PeakRSSMB() float64 {
	if p.cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024
	}
	return 0
}

// CPUSoFar is the CPU time the process has used so far (all of it, once it has exited).
func (p *Process) CPUSoFar() time.Duration {
	if s := p.cmd.ProcessState; s != nil {
		return s.UserTime() + s.SystemTime()
	}
	return proc.CPU(p.cmd.Process.Pid)
}

// Tail is the end of the log, for error messages.
func (p *Process) Tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return "cutover's output (" + p.logPath + "):\n  " + strings.Join(lines, "\n  ")
}
