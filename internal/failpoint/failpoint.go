// Package failpoint lets the fault tests make cutover fail or die at a named point:
// the environment variable CUTOVER_FAILPOINT holds a comma-separated list of
// point:fault, such as "switch:sync:kill" or "start:copy:public.t:kill". Nobody sets it
// but a test; where a point is set the program says so.
package failpoint

import (
	"os"
	"strings"
)

// Env names the environment variable.
const Env = "CUTOVER_FAILPOINT"

// Faults.
const (
	Fail   = "fail"   // the step fails
	Kill   = "kill"   // the process kills itself (SIGKILL): a crash, kill -9
	Budget = "budget" // the step holds until the downtime budget runs out
	Undo   = "undo"   // the step's undo fails
)

// Faults lists the faults set for point.
func Faults(point string) []string {
	v := os.Getenv(Env)
	if v == "" {
		return nil // the case of every run but a test's: KillAt sits on the applier's commit
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		if i := strings.LastIndexByte(f, ':'); i > 0 && f[:i] == point {
			out = append(out, f[i+1:])
		}
	}
	return out
}

// Set is the variable's value, "" when no point is set.
func Set() string { return os.Getenv(Env) }

// Die kills the process at once (SIGKILL), as kill -9 would: no deferred function,
// no cleanup runs.
func Die() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	select {} // the signal is on its way
}

// KillAt kills the process when point:kill is set.
func KillAt(point string) {
	for _, f := range Faults(point) {
		if f == Kill {
			Die()
		}
	}
}
