// Package api is the HTTP server of a running task: /metrics for Prometheus and
// /api/status as JSON. When the plan sets a token, every request must carry it
// (Authorization: Bearer TOKEN); the plan requires one when the server listens
// beyond the loopback interface.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/cutover-dev/cutover/internal/metrics"
)

// StatusFunc returns the task's status, marshalled as JSON by the server.
type StatusFunc func(ctx context.Context) (any, error)

// Server is a running HTTP server.
type Server struct {
	srv  *http.Server
	addr string
	done chan error
}

// Start listens on listen and serves until Close.
func Start(listen, token string, m *metrics.Metrics, status StatusFunc) (*Server, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("api.listen %s: %w (set api.listen in the plan to a free address, or \"\" to turn the server off)", listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		st, err := status(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	})
	s := &Server{addr: ln.Addr().String(), done: make(chan error, 1),
		srv: &http.Server{Handler: requireToken(token, mux), ReadHeaderTimeout: 10 * time.Second}}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover"`)
			http.Error(w, "this server needs the token from the plan's api.token: Authorization: Bearer TOKEN", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
