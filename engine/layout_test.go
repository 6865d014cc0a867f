package engine_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The pipeline's packages and the commands import no database driver and no engine:
// an engine is a folder the binary registers. A change that makes one of them import
// pgx (or the postgres package) fails here.
func TestPipelineImportsNoDriver(t *testing.T) {
	neutral := []string{"engine", "control", "check", "schema", "load", "cdc", "apply", "validate", "cutover", "finish", "plan", "internal/cli"}
	args := []string{"list", "-deps"}
	for _, p := range neutral {
		args = append(args, "github.com/cutover-dev/cutover/"+p)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < len(neutral) {
		t.Fatalf("go list listed %d packages", len(deps))
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/jackc/") || strings.HasPrefix(d, "github.com/go-sql-driver/") ||
			strings.HasPrefix(d, "github.com/go-mysql-org/") || d == "github.com/cutover-dev/cutover/postgres" {
			t.Errorf("%s is imported by the pipeline's packages (%s)", d, strings.Join(neutral, ", "))
		}
	}
}
