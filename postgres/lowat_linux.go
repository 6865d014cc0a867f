//go:build linux

package postgres

import (
	"crypto/tls"
	"net"
	"syscall"
)

// setReadLowWater asks the kernel to wake a reader of conn only once n bytes are
// waiting (a read still returns what is there).
func setReadLowWater(conn net.Conn, n int) {
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	})
}
