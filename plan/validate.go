package plan

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/redact"
)

func (d *decoder) validate(p *Plan) {
	d.validateEndpoint("source", p.Source)
	d.validateEndpoint("target", p.Target)
	if p.Source.URL != "" && p.Source.URL == p.Target.URL {
		d.errKey("target.url", "is the same as source.url: the target must be another database")
	}
	if len(p.Tables.Include) == 0 {
		d.errKey("tables.include", "is empty, so nothing would be migrated: list patterns such as \"public.*\", or leave the key out to include every table")
	}
	if n := p.FullLoad.Parallel; n < 1 || n > 64 {
		d.errKey("full_load.parallel", "expected a number of workers from 1 to 64, got %d", n)
	}
	d.oneOf("cdc.no_identity", string(p.CDC.NoIdentity), noIdentityPolicies)
	d.oneOf("cdc.on_error", string(p.CDC.OnError), errorPolicies)
	d.oneOf("cdc.ddl", string(p.CDC.DDL), ddlPolicies)
	if h := time.Duration(p.CDC.Heartbeat); h < 100*time.Millisecond || h > time.Hour {
		d.errKey("cdc.heartbeat", "expected a duration from 100ms to 1h, got %v", h)
	}
	if i := time.Duration(p.Validation.Interval); i < time.Second || i > 24*time.Hour {
		d.errKey("validation.interval", "expected a duration from 1s to 24h, got %v", i)
	}
	if n := p.Validation.ChunkRows; n < 100 || n > 10_000_000 {
		d.errKey("validation.chunk_rows", "expected a number of rows from 100 to 10000000, got %d", n)
	}
	if n := p.Validation.BusyPercent; n < 1 || n > 100 {
		d.errKey("validation.busy_percent", "expected a percentage from 1 to 100, got %d", n)
	}
	if p.Validation.Continuous && !p.CDC.Enabled {
		d.errKey("validation.continuous", "validates during change data capture, and cdc.enabled is false (a one-shot copy): use validation.after_load: true")
	}
	if p.Validation.AfterLoad && p.CDC.Enabled {
		d.errKey("validation.after_load", "validates at the end of a one-shot copy (cdc.enabled: false); with change data capture, use validation.continuous or cutover validate")
	}
	d.oneOf("translation.case_insensitive", p.Translation.CaseInsensitive, []string{"none", "icu", "citext"})
	d.oneOf("translation.enums", p.Translation.Enums, []string{"type", "check"})
	d.oneOf("translation.zero_dates", p.Translation.ZeroDates, []string{"null", "error"})
	for k, v := range p.Types {
		if strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			d.errKey("types", "expected source type or column: target type, got %q: %q", k, v)
		}
	}
	d.validateListen(p.API)
	d.validateControlSchema(p.ControlSchema)
	d.validateCutover(&p.Cutover)
}

func (d *decoder) oneOf(key, v string, allowed []string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	d.errKey(key, "expected one of %s, got %q", strings.Join(allowed, ", "), v)
}

func (d *decoder) validateEndpoint(side string, e Endpoint) {
	d.validateURL(side+".url", e.URL)
	if e.Password != "" && redact.Password(e.URL) != "" {
		d.errKey(side+".password", "the password is also in %s.url: keep it in one place (password: ${VAR} is the safer one)", side)
	}
}

func (d *decoder) validateURL(key, conn string) {
	if conn == "" {
		d.errKey(key, "is required: a connection URL such as postgres://migrator@db.example.com:5432/app")
		return
	}
	if strings.Contains(conn, "://") {
		u, err := url.Parse(conn)
		if err != nil {
			d.errKey(key, "is not a valid URL (%s): special characters in the user or password must be percent-encoded", redact.ConnString(err.Error()))
			return
		}
		if u.Scheme == "" {
			d.errKey(key, "has no scheme: write it as a URL, such as postgres://migrator@db.example.com:5432/app")
			return
		}
	}
	if d.check != nil {
		if err := d.check(conn); err != nil {
			d.errKey(key, "%s", redact.ConnString(err.Error()))
		}
	}
}

func (d *decoder) validateListen(a API) {
	if a.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		d.errKey("api.listen", "expected host:port such as 127.0.0.1:8420, got %q", a.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		d.errKey("api.listen", "port %q is not a number from 0 to 65535", port)
		return
	}
	if !isLoopback(host) && a.Token == "" {
		d.errKey("api.listen", "%q is reachable from other hosts, so api.token is required: set api.token to a long random string (for example ${CUTOVER_API_TOKEN}), or listen on 127.0.0.1", a.Listen)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *decoder) validateControlSchema(s string) {
	switch {
	case s == "":
		d.errKey("control_schema", "is empty: name a schema for cutover's state, for example cutover")
	case len(s) > 63:
		d.errKey("control_schema", "%q is longer than 63 bytes, PostgreSQL's limit for a name", s)
	case strings.HasPrefix(s, "pg_") || s == "information_schema" || s == "public":
		d.errKey("control_schema", "%q is reserved or holds user data: pick a schema of cutover's own, such as cutover", s)
	}
}

func (d *decoder) validateCutover(c *Cutover) {
	for _, dur := range []struct {
		key string
		v   Duration
	}{
		{"cutover.max_downtime", c.MaxDowntime},
		{"cutover.max_latency", c.MaxLatency},
		{"cutover.sync_timeout", c.SyncTimeout},
		{"cutover.hook_timeout", c.HookTimeout},
	} {
		if dur.v <= 0 {
			d.errKey(dur.key, "must be longer than 0s")
		}
	}
	d.oneOf("cutover.block", string(c.Block), []string{string(BlockRoles), string(BlockReadOnly)})
	for i, r := range c.ExemptRoles {
		if strings.TrimSpace(r) == "" {
			d.errKey(fmt.Sprintf("cutover.exempt_roles[%d]", i), "is empty: name a role")
		}
	}
	if c.SequenceHeadroom < 0 {
		d.errKey("cutover.sequence_headroom", "must be 0 or more, got %d", c.SequenceHeadroom)
	}
	for i, w := range c.Webhooks {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.errKey(fmt.Sprintf("cutover.webhooks[%d]", i), "expected an http:// or https:// URL, got %q", redact.ConnString(w))
		}
	}
	checkNonEmpty := func(key string, list []string, what string) {
		for i, s := range list {
			if strings.TrimSpace(s) == "" {
				d.errKey(fmt.Sprintf("%s[%d]", key, i), "is empty: give %s", what)
			}
		}
	}
	checkNonEmpty("cutover.qa.sql", c.QA.SQL, "a query")
	checkNonEmpty("cutover.qa.commands", c.QA.Commands, "a command")
	h := c.Hooks
	checkNonEmpty("cutover.hooks.notify", h.Notify, "a command")
	checkNonEmpty("cutover.hooks.suspend_jobs", h.SuspendJobs, "a command")
	checkNonEmpty("cutover.hooks.resume_jobs", h.ResumeJobs, "a command")
	checkNonEmpty("cutover.hooks.switch", h.Switch, "a command")
	checkNonEmpty("cutover.hooks.switch_back", h.SwitchBack, "a command")
}
