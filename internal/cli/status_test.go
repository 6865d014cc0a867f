package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/control"
)

func sampleStatus() status {
	eta := 90.0
	return status{Phase: "loading", Slot: "cutover_ab12", Position: "0/16B3748", ETASeconds: &eta, Tables: []tableStatus{
		{Schema: "public", Table: "big", State: control.TableLoading, Rows: 5800, Bytes: 580 << 20, EstimatedBytes: 1000 << 20, BytesPerSecond: 10 << 20},
		{Schema: "public", Table: "over", State: control.TableLoading, Rows: 10, Bytes: 300, EstimatedBytes: 200},
		{Schema: "public", Table: "done", State: control.TableLoaded, Rows: 7, Bytes: 100, EstimatedBytes: 8192},
		{Schema: "public", Table: "todo", State: control.TableQueued, EstimatedBytes: 4096},
	}}
}

// In a pipe the table is what scripts and the tests of the binary read: no bars.
func TestStatusInAPipe(t *testing.T) {
	var out bytes.Buffer
	if err := writeStatus(&out, sampleStatus(), false); err != nil {
		t.Fatal(err)
	}
	want := `phase: loading
slot: cutover_ab12  position: 0/16B3748
estimated time left: 1m30s

TABLE        STATE    ROWS  SIZE       RATE/s
public.big   loading  5800  580.0 MiB  10.0 MiB
public.over  loading  10    300 bytes  
public.done  loaded   7     100 bytes  
public.todo  queued   0     0 bytes    
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestStatusOnATerminal(t *testing.T) {
	var out bytes.Buffer
	if err := writeStatus(&out, sampleStatus(), true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"TABLE        PROGRESS                     STATE       ROWS  SIZE       RATE/s\n",
		"public.big   [###########---------]  58%  loading     5800  580.0 MiB  10.0 MiB\n",
		"public.over  [###################-]  99%  loading", // COPY's bytes past the estimate
		"public.done  [####################] 100%  loaded",
		"public.todo  [--------------------]   0%  queued",
		"total        [###########---------]  58%  1/4 loaded  5817  580.0 MiB",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

// --watch writes each status whole; in a pipe a blank line separates them, on a
// terminal each starts by clearing the screen. It ends without error at Ctrl-C.
func TestWatchStatus(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		var out bytes.Buffer
		n := 0
		err := watchStatus(ctx, &out, time.Millisecond, terminal, func(w io.Writer) error {
			if n++; n == 3 {
				cancel() // Ctrl-C while the third is being read
				return context.Canceled
			}
			_, err := io.WriteString(w, "phase: loading\n")
			return err
		})
		cancel()
		got := out.String()
		switch {
		case err != nil:
			t.Errorf("terminal %v: %v", terminal, err)
		case terminal && (strings.Count(got, clearScreen) != 2 || strings.Count(got, "phase: loading\n") != 2):
			t.Errorf("on a terminal: %q", got)
		case !terminal && got != "phase: loading\n\nphase: loading\n":
			t.Errorf("in a pipe: %q", got)
		}
	}

	err := watchStatus(context.Background(), &bytes.Buffer{}, time.Millisecond, false, func(io.Writer) error { return errors.New("boom") })
	if err == nil || err.Error() != "boom" {
		t.Errorf("an error reading the status: %v", err)
	}
}
