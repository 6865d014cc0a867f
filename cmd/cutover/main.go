// Command cutover migrates a live database to a new server and cuts over to it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/cutover-dev/cutover/engine"
	"github.com/cutover-dev/cutover/internal/cli"
	"github.com/cutover-dev/cutover/mysql"
	"github.com/cutover-dev/cutover/postgres"
)

func main() {
	// The engines this binary migrates from and to.
	engine.Register(postgres.Engine{})
	engine.Register(mysql.Engine{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// CUTOVER_CPUPROFILE=PREFIX writes a CPU profile to PREFIX.PID, for development.
	if prefix := os.Getenv("CUTOVER_CPUPROFILE"); prefix != "" {
		if f, err := os.Create(fmt.Sprintf("%s.%d", prefix, os.Getpid())); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
	}
	code := cli.Main(ctx, os.Args[1:])
	stop()
	if code != 0 {
		pprof.StopCPUProfile()
		os.Exit(code)
	}
}
