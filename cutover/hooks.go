package cutover

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/plan"
	"github.com/cutover-dev/cutover/redact"
)

// Hooks runs the operator's commands and webhooks.
type Hooks struct {
	Timeout time.Duration // per command and per webhook
	Env     []string      // NAME=value, added to every command's environment
	Out     io.Writer     // the commands' output, line by line
	Dry     bool          // print what would run
}

// PlanHooks runs the hooks of plan p, with what every hook command gets: where both
// databases are (without the passwords, which stay in the plan) and the plan.
func PlanHooks(p *plan.Plan, out io.Writer, dry bool) Hooks {
	return Hooks{Timeout: p.Cutover.HookTimeout.D(), Out: out, Dry: dry, Env: []string{
		"CUTOVER_SOURCE_URL=" + redact.ConnString(p.Source.URL),
		"CUTOVER_TARGET_URL=" + redact.ConnString(p.Target.URL),
		"CUTOVER_PLAN=" + p.Path,
		"CUTOVER_CONTROL_SCHEMA=" + p.ControlSchema,
	}}
}

// Commands runs each command with sh -c, in order, and stops at the first that fails
// or outlives the timeout (its whole process group is killed). extra is added to Env.
func (h Hooks) Commands(ctx context.Context, kind string, cmds []string, extra ...string) error {
	for _, c := range cmds {
		if h.Dry {
			fmt.Fprintf(h.Out, "      would run the %s hook: %s\n", kind, c)
			continue
		}
		if err := h.command(ctx, kind, c, extra); err != nil {
			return err
		}
	}
	return nil
}

func (h Hooks) command(ctx context.Context, kind, command string, extra []string) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	cmd := exec.Command("sh", "-c", command)
	cmd.Env = append(append(os.Environ(), h.Env...), extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &prefixWriter{w: h.Out, prefix: "      " + kind + "> "}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s hook %q: %w", kind, command, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) && context.Cause(ctx) == context.DeadlineExceeded {
			err = fmt.Errorf("killed after the hook timeout of %v", h.Timeout)
		}
	}
	out.flush()
	if err != nil {
		return fmt.Errorf("%s hook %q: %w", kind, command, err)
	}
	return nil
}

// Webhooks posts payload as JSON to each URL; a reply other than 2xx is an error.
func (h Hooks) Webhooks(ctx context.Context, urls []string, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range urls {
		if h.Dry {
			fmt.Fprintf(h.Out, "      would POST to %s: %s\n", u, body)
			continue
		}
		if err := h.post(ctx, u, body); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h Hooks) post(ctx context.Context, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: the server answered %s", url, resp.Status)
	}
	return nil
}

// prefixWriter writes whole lines, each with a prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		sc := bufio.NewScanner(bytes.NewReader(p.buf))
		for sc.Scan() {
			fmt.Fprintf(p.w, "%s%s\n", p.prefix, strings.TrimRight(sc.Text(), "\r"))
		}
		p.buf = nil
	}
}
