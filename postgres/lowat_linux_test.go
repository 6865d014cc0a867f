//go:build linux

package postgres

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The stream relies on the kernel not waking a reader for less than the low-water mark,
// and on a read returning what is there all the same.
func TestReadLowWater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	reader, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	writer := <-accepted
	if writer == nil {
		t.Fatal("accept failed")
	}
	defer writer.Close()
	setReadLowWater(reader, 1024)

	raw, err := reader.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// queued is what waits in the socket; readable is what poll(2) says of it.
	state := func() (queued int, readable bool) {
		if err := raw.Control(func(fd uintptr) {
			queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, 0); err != nil {
				t.Error(err)
			}
			readable = fds[0].Revents&unix.POLLIN != 0
		}); err != nil {
			t.Fatal(err)
		}
		return queued, readable
	}
	waitQueued := func(n int) bool {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			q, readable := state()
			if q >= n {
				return readable
			}
			runtime.Gosched()
		}
		t.Fatalf("%d bytes never reached the socket", n)
		return false
	}

	if _, err := writer.Write(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if waitQueued(10) {
		t.Fatal("10 bytes waiting, below the low-water mark of 1024, and poll says the socket is readable: the reader would be woken for every message")
	}
	// A read (the stream's poll) still returns what is there.
	if err := reader.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if n, err := reader.Read(buf); err != nil || n != 10 {
		t.Fatalf("read %d bytes (%v), want the 10 waiting", n, err)
	}
	if _, err := writer.Write(make([]byte, 2000)); err != nil {
		t.Fatal(err)
	}
	if !waitQueued(2000) {
		t.Fatal("2000 bytes waiting, above the low-water mark, and poll says the socket is not readable")
	}
	if _, err := io.ReadFull(reader, buf[:2000]); err != nil {
		t.Fatal(err)
	}
}
