// Package proc starts and watches the throwaway database servers of the test
// harnesses (pgtest, mytest): a server dies with the process that started it, and a
// later run removes what a killed run left behind.
package proc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FreePort is a TCP port on 127.0.0.1 free at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts cmd in a process group of its own that gets sig when this process
// dies, so that no server outlives its tests; done is closed when it exits.
func Start(cmd *exec.Cmd, sig syscall.Signal) (done chan struct{}, err error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = sig
	done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that forked exits, so fork from
		// a locked thread that lives exactly as long as the server.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	return done, <-started
}

// Exited says whether done (from Start) is closed.
func Exited(done chan struct{}) bool {
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// WriteOwner records in dir that this process owns it, for SweepStale.
func WriteOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// SweepStale removes the directories under the temporary directory whose names begin
// with prefix and whose owner (WriteOwner) is gone; kill is called first with each,
// to kill a server a killed run left running.
func SweepStale(prefix string, kill func(dir string)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || Exists(owner) {
			continue
		}
		kill(dir)
		_ = os.RemoveAll(dir)
	}
}

// KillIf kills the process (and its group) whose pid is the first line of pidFile,
// when it runs and its command line holds name.
func KillIf(pidFile, name string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if pid <= 0 || !Exists(pid) {
		return
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.Contains(string(cmdline), name) {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Exists says whether a process pid exists (perhaps another user's, or a zombie).
func Exists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Alive says whether pid exists and is not a zombie (a zombie holds no memory).
func Alive(pid int) bool {
	_, state, ok := stat(pid)
	return ok && state != "Z"
}

// Children lists the processes whose parent is pid (from /proc).
func Children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := stat(child); ok && ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// stat reads a process's parent and state from /proc/PID/stat.
func stat(pid int) (ppid int, state string, ok bool) {
	f := statFields(pid)
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// statFields are the fields of /proc/PID/stat after the command's name (the state
// first); nil when it cannot be read.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// CPU is the user and system CPU time a running process has used so far (Linux,
// counted in ticks of 10 ms); 0 when it cannot be read. For benchmarks.
func CPU(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// A Server is a throwaway server a harness started.
type Server interface{ Destroy() error }

// The servers this process started, destroyed by DestroyAll.
var (
	mu      sync.Mutex
	servers = map[Server]bool{}
)

// Track records a server started, for DestroyAll.
func Track(s Server) { mu.Lock(); servers[s] = true; mu.Unlock() }

// Untrack forgets a server destroyed.
func Untrack(s Server) { mu.Lock(); delete(servers, s); mu.Unlock() }

// DestroyAll destroys every server this process started (and did not destroy), at once.
func DestroyAll() {
	mu.Lock()
	list := make([]Server, 0, len(servers))
	for s := range servers {
		list = append(list, s)
	}
	mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range list {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Destroy() }()
	}
	wg.Wait()
}
