package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// background is a cutover command running while the demo goes on: its output is
// printed as it comes, each line marked, and kept so the demo can wait for the lines
// that say where it is.
type background struct {
	name string
	cmd  *exec.Cmd
	hide *lineFilter // the lines not printed (nil: none); kept all the same

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
	done    chan struct{} // closed once the output ended and the process was reaped
	err     error         // Wait's, once done
}

func (d *demo) background(ctx context.Context, args ...string) (*background, error) {
	return d.backgroundHiding(ctx, nil, args...)
}

// lineFilter is the lines of a background command the demo does not print, and why.
type lineFilter struct {
	hide func(line string) bool
	why  string
}

// backgroundHiding is background that does not print the lines hide leaves out (a
// line says how many, where they were, and why).
func (d *demo) backgroundHiding(ctx context.Context, hide *lineFilter, args ...string) (*background, error) {
	say("\n  $ cutover %s &\n", strings.Join(masked(args), " "))
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = append(os.Environ(), d.env...)
	// Stopped the way an operator stops it; and a demo killed with -9 takes it along,
	// rather than leave it retrying against servers that died with the demo.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	b := &background{name: args[0], cmd: cmd, hide: hide, changed: make(chan struct{}), done: make(chan struct{})}
	go b.read(r)
	return b, nil
}

func (b *background) read(r *os.File) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	hidden := 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case b.hide != nil && b.hide.hide(line):
			hidden++
		case hidden > 0:
			say("  %s | [... %d lines left out: %s]\n  %s | %s\n", b.name, hidden, b.hide.why, b.name, line)
			hidden = 0
		default:
			say("  %s | %s\n", b.name, line)
		}
		b.mu.Lock()
		b.lines = append(b.lines, line)
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
	}
	err := b.cmd.Wait()
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
	close(b.done)
}

// waitLine waits for a line containing s and returns it.
func (b *background) waitLine(ctx context.Context, s string, timeout time.Duration) (string, error) {
	return b.waitNth(ctx, s, 1, timeout)
}

// waitNth waits for the nth line containing s and returns it.
func (b *background) waitNth(ctx context.Context, s string, nth int, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for seen, found := 0, 0; ; {
		b.mu.Lock()
		lines, changed := b.lines, b.changed
		b.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if strings.Contains(lines[seen], s) {
				if found++; found == nth {
					return lines[seen], nil
				}
			}
		}
		select {
		case <-changed:
		case <-b.done:
			if len(b.linesWith(s)) >= nth {
				continue
			}
			return "", fmt.Errorf("cutover %s ended (%v) before printing %q", b.name, b.exitErr(), s)
		case <-deadline.C:
			return "", fmt.Errorf("cutover %s printed no %q within %v", b.name, s, timeout)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (b *background) exitErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// stop sends SIGTERM and waits for the process to end; its exit code, or an error
// when it did not end in time.
func (b *background) stop(timeout time.Duration) (int, error) {
	select {
	case <-b.done:
	default:
		if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return -1, err
		}
		select {
		case <-b.done:
		case <-time.After(timeout):
			b.cmd.Process.Kill()
			<-b.done
			return -1, fmt.Errorf("cutover %s did not stop within %v of SIGTERM; killed it", b.name, timeout)
		}
	}
	var exit *exec.ExitError
	if err := b.exitErr(); errors.As(err, &exit) {
		return exit.ExitCode(), nil
	} else if err != nil {
		return -1, err
	}
	return 0, nil
}

// linesWith returns the output lines so far that contain any of subs.
func (b *background) linesWith(subs ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range b.lines {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}
