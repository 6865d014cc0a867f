package main

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

// process is one `cutover start` running in the background, its output kept in a log.
type process struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	timed   bool          // it timed a backlog catch-up: its peak RSS counts
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's error, set before done closes

	mu  sync.Mutex
	cdc time.Time // when it printed that change data capture started
}

// cdcLine is what cutover prints when its change stream starts on MySQL/MariaDB.
const cdcLine = "change data capture from the source's binary log"

// startCutover runs `cutover start -c plan`, appending its output to logPath.
func startCutover(bin, plan, logPath string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "==== %s cutover start -c %s\n", time.Now().Format("15:04:05.000"), plan)
	p := &process{logPath: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "start", "-c", plan)
	p.cmd.Stderr = log
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("cutover start: %w", err)
	}
	go func() {
		p.scan(out, log)
		p.err = p.cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// scan copies the output to the log and notes the line the benchmark waits for.
func (p *process) scan(out io.Reader, log io.Writer) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if os.Getenv("BENCH_VERBOSE") != "" {
			fmt.Println("  cutover |", line)
		}
		if strings.Contains(line, cdcLine) {
			p.mu.Lock()
			p.cdc = time.Now()
			p.mu.Unlock()
		}
	}
}

// cdcStarted is when the process said change data capture started (zero if not yet).
func (p *process) cdcStarted() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cdc
}

// waitCDC waits until the process says change data capture started: the full load is done.
func (p *process) waitCDC(timeout time.Duration) error {
	deadline := time.After(timeout)
	for p.cdcStarted().IsZero() {
		select {
		case <-p.done:
			return p.exited()
		case <-deadline:
			return fmt.Errorf("cutover did not start change data capture within %v\n%s", timeout, p.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// stop sends SIGTERM, a clean stop, and waits for exit status 0.
func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("cutover did not stop within 2 minutes of SIGTERM\n%s", p.tail())
	}
	if p.err != nil {
		return fmt.Errorf("cutover stopped with %v after SIGTERM (want exit status 0)\n%s", p.err, p.tail())
	}
	return nil
}

// exited says that the process ended while the benchmark needed it.
func (p *process) exited() error {
	return fmt.Errorf("cutover exited unexpectedly (%v)\n%s", p.err, p.tail())
}

// peakRSSMB is the process's peak resident set, once it has exited.
func (p *process) peakRSSMB() float64 {
	if p.cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024
	}
	return 0
}

// cpuSoFar is the CPU time the running process has used so far.
func (p *process) cpuSoFar() time.Duration { return proc.CPU(p.cmd.Process.Pid) }

// tail is the end of the log, for error messages.
func (p *process) tail() string {
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
