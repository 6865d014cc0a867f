// Command cutover migrates a live database to a new server and cuts over to it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cutover-dev/cutover/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
