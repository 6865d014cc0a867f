//go:build !linux

package postgres

import "net"

func setReadLowWater(net.Conn, int) {}
