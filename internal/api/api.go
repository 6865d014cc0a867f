// Package api is the HTTP server of a running task: the web dashboard at /,
// /metrics for Prometheus, /api/status and /api/dashboard as JSON. When the plan
// sets a token, every request for data must carry it (Authorization: Bearer
// TOKEN); the plan requires one when the server listens beyond the loopback
// interface. The dashboard's own files hold no data and need no token.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/internal/metrics"
	"github.com/cutover-dev/cutover/redact"
)

// StatusFunc returns a document the server marshals as JSON.
type StatusFunc func(ctx context.Context) (any, error)

// Options are what the server serves besides /metrics.
type Options struct {
	Token string
	// Status serves /api/status; Dashboard /api/dashboard, what the web page draws.
	Status, Dashboard StatusFunc
	// Secrets are masked in every JSON document served, should one hold them.
	Secrets []string
}

// Server is a running HTTP server.
type Server struct {
	srv  *http.Server
	addr string
	done chan error
}

//go:embed dashboard
var assets embed.FS

// Start listens on listen and serves until Close: / the dashboard (static files,
// no data), /metrics, /api/status and /api/dashboard (the data, behind the token).
func Start(listen string, m *metrics.Metrics, o Options) (*Server, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("api.listen %s: %w (set api.listen in the plan to a free address, or \"\" to turn the server off)", listen, err)
	}
	var secrets []string
	for _, s := range o.Secrets {
		quoted, _ := json.Marshal(s) // the form a JSON document holds it in
		secrets = append(secrets, s, strings.Trim(string(quoted), `"`))
	}
	serveJSON := func(f StatusFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			doc, err := f(ctx)
			var b bytes.Buffer
			if err == nil {
				enc := json.NewEncoder(&b)
				enc.SetIndent("", "  ")
				err = enc.Encode(doc)
			}
			if err != nil {
				b.Reset()
				b.WriteString(err.Error())
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusServiceUnavailable)
			} else {
				w.Header().Set("Content-Type", "application/json")
			}
			w.Header().Set("Cache-Control", "no-store")
			out := redact.NewWriter(w)
			out.Add(secrets...)
			_, _ = out.Write(b.Bytes())
		})
	}
	data := http.NewServeMux()
	data.Handle("GET /metrics", m.Handler())
	if o.Status != nil {
		data.Handle("GET /api/status", serveJSON(o.Status))
	}
	if o.Dashboard != nil {
		data.Handle("GET /api/dashboard", serveJSON(o.Dashboard))
	}
	page, _ := fs.Sub(assets, "dashboard")
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", static(page))
	mux.Handle("GET /dashboard/", http.StripPrefix("/dashboard/", static(page)))
	mux.Handle("/", requireToken(o.Token, data))
	s := &Server{addr: ln.Addr().String(), done: make(chan error, 1),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// static serves the dashboard's files: they hold no data, so they need no token
// (the page asks for it, and sends it with each request for data).
func static(page fs.FS) http.Handler {
	files := http.FileServerFS(page)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
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
