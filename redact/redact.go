// Package redact keeps passwords out of everything cutover prints or logs.
//
// Two layers: connection strings are shown with their password masked, and
// every byte written to the terminal or the log passes a Writer that replaces
// any known secret, so a password quoted back in a driver error is caught too.
package redact

import (
	"bytes"
	"io"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Mask replaces a secret in output.
const Mask = "xxxxx"

// minSecret is the shortest secret the Writer replaces: masking every "a" or "12"
// would garble all output, and a password that short offers no protection anyway.
const minSecret = 4

// KVPassword matches password=... in a key=value connection string.
var KVPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]+)`)

// Password returns the password a connection string (URL or key=value) holds, or "".
func Password(conn string) string {
	if strings.Contains(conn, "://") {
		u, err := url.Parse(conn)
		if err != nil {
			return ""
		}
		if pw, ok := u.User.Password(); ok {
			return pw
		}
		return u.Query().Get("password")
	}
	m := KVPassword.FindStringSubmatch(conn)
	if m == nil {
		return ""
	}
	v := m[2]
	if strings.HasPrefix(v, "'") {
		v = strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'")
		v = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(v)
	}
	return v
}

// ConnString returns conn with its password masked.
func ConnString(conn string) string {
	if strings.Contains(conn, "://") {
		u, err := url.Parse(conn)
		if err != nil {
			// Unparseable: mask everything between :// and @ to be safe.
			if i, j := strings.Index(conn, "://"), strings.LastIndex(conn, "@"); j > i {
				return conn[:i+3] + Mask + conn[j:]
			}
			return conn
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", Mask)
			u.RawQuery = q.Encode()
		}
		return strings.Replace(u.String(), ":"+url.QueryEscape(Mask)+"@", ":"+Mask+"@", 1)
	}
	return KVPassword.ReplaceAllString(conn, "${1}"+Mask)
}

// StripPassword removes the password from a connection string; ok reports whether it had one.
func StripPassword(conn string) (string, bool) {
	if Password(conn) == "" {
		return conn, false
	}
	if strings.Contains(conn, "://") {
		u, err := url.Parse(conn)
		if err != nil {
			return conn, false
		}
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		return u.String(), true
	}
	return strings.TrimSpace(KVPassword.ReplaceAllString(conn, "")), true
}

// Writer passes writes through to an underlying writer with every secret masked.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
}

// NewWriter returns a Writer that masks secrets added with Add.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Add registers secrets to mask; their URL-escaped forms are masked as well.
func (w *Writer) Add(secrets ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range secrets {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if len(form) >= minSecret {
				w.secrets = append(w.secrets, []byte(form))
			}
		}
	}
}

func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := p
	for _, s := range w.secrets {
		if bytes.Contains(out, s) {
			out = bytes.ReplaceAll(out, s, []byte(Mask))
		}
	}
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
