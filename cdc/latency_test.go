package cdc

import (
	"testing"
	"time"
)

func TestLatency(t *testing.T) {
	var l Latency
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if s := l.At(t0); s.Source != 0 || s.Target != 0 || s.Pending != 0 {
		t.Fatalf("idle: %+v", s)
	}
	l.Read(t0)
	l.Read(t0.Add(2 * time.Second))
	s := l.At(t0.Add(5 * time.Second))
	if s.Source != 3*time.Second || s.Target != 5*time.Second || s.Pending != 2 {
		t.Fatalf("two read: %+v", s)
	}
	l.Applied(1)
	if s := l.At(t0.Add(5 * time.Second)); s.Target != 3*time.Second || s.Pending != 1 || s.Applied != 1 {
		t.Fatalf("one applied: %+v", s)
	}
	l.CaughtUp(true)
	l.Applied(1)
	if s := l.At(t0.Add(9 * time.Second)); s.Source != 0 || s.Target != 0 || s.Pending != 0 || s.Applied != 2 {
		t.Fatalf("caught up: %+v", s)
	}
}
