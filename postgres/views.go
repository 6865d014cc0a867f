package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cutover-dev/cutover/check"
	"github.com/cutover-dev/cutover/schema"
	"github.com/jackc/pgx/v5"
)

// Views between engines. A MySQL view's SELECT (information_schema's VIEW_DEFINITION,
// every table and column named in backquotes, qualified by the database) is written in
// PostgreSQL's quoting: each name folded as the tables' and columns' are, each string
// without MySQL's character set introducer and backslash escapes. The rest of the SQL
// (MySQL's functions and operators) stays as it is, and the view is carried when
// PostgreSQL takes it: cutover check tries every view in a transaction it rolls back,
// and the load creates them once the tables hold their rows; a view PostgreSQL refuses
// is listed with its MySQL definition and PostgreSQL's error, for the operator to write.

// translatedView is a source view and its statement on the target.
type translatedView struct {
	source schema.Object
	create string // CREATE OR REPLACE VIEW; "" when the SQL cannot be read (problem)
	// problem is why the SQL could not be written in PostgreSQL's quoting.
	problem string
}

// translateView writes a view's CREATE statement in the target's schema.
func (tr *translation) translateView(o schema.Object) *translatedView {
	v := &translatedView{source: o}
	sql, err := mysqlQuoting(o.Definition)
	if err != nil {
		v.problem = err.Error()
		return v
	}
	v.create = "CREATE OR REPLACE VIEW " + quoteQualified(tr.schema, truncName(foldName(o.Name))) + " AS " + sql
	return v
}

// mysqlQuoting writes MySQL SQL in PostgreSQL's quoting (see above).
func mysqlQuoting(sql string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '`':
			name, n, err := schema.MySQLUnquote(sql[i:], '`')
			if err != nil {
				return "", err
			}
			b.WriteString(qident(truncName(foldName(name))))
			i += n
		case c == '\'' || c == '"':
			s, n, err := schema.MySQLUnquote(sql[i:], c)
			if err != nil {
				return "", err
			}
			if strings.ContainsRune(s, 0) {
				return "", errors.New("a string holds a NUL character, which PostgreSQL's text cannot")
			}
			b.WriteString(quoteLiteral(s))
			i += n
		case c == '_' && (i == 0 || !identByte(sql[i-1])):
			// a character set introducer (_utf8mb4'text'): the string alone
			j := i + 1
			for j < len(sql) && identByte(sql[j]) {
				j++
			}
			if j < len(sql) && sql[j] == '\'' && j > i+1 {
				i = j
				continue
			}
			b.WriteString(sql[i:j])
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func identByte(c byte) bool {
	return c == '_' || c == '$' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

// createViews creates, in the open transaction on conn, each view PostgreSQL takes,
// each in a savepoint, round after round while one more is created (a view may select
// from another); it returns PostgreSQL's error for each view not created, by name.
func (tr *translation) createViews(ctx context.Context, conn *pgx.Conn) (map[string]error, error) {
	failed := map[string]error{}
	var todo []*translatedView
	for _, v := range tr.views {
		if v.create == "" {
			failed[v.source.Name] = errors.New(v.problem)
			continue
		}
		todo = append(todo, v)
	}
	for progress := true; progress && len(todo) > 0; {
		progress = false
		var next []*translatedView
		for _, v := range todo {
			if _, err := conn.Exec(ctx, "SAVEPOINT view"); err != nil {
				return nil, err
			}
			if _, err := conn.Exec(ctx, v.create); err != nil {
				if _, rerr := conn.Exec(ctx, "ROLLBACK TO SAVEPOINT view"); rerr != nil {
					return nil, rerr
				}
				failed[v.source.Name] = err
				next = append(next, v)
				continue
			}
			delete(failed, v.source.Name)
			progress = true
		}
		todo = next
	}
	return failed, nil
}

// viewFindings are check's findings on the views: created is false when check could
// not try them on the target (why).
func (tr *translation) viewFindings(failed map[string]error, why error) []check.Finding {
	var out []check.Finding
	for _, v := range tr.views {
		what := "view " + v.source.Schema + "." + v.source.Name
		fix := "write it in PostgreSQL's SQL (" + objectWhen("view") + ")"
		err, refused := failed[v.source.Name]
		switch {
		case why != nil:
			out = append(out, check.Finding{Severity: check.Warning, Check: "translate_object", Object: what,
				Problem: fmt.Sprintf("carried if PostgreSQL takes its SQL, which cutover check could not try on the target (%v); its MySQL definition: %s", why, v.source.Definition), Fix: fix})
		case refused:
			out = append(out, check.Finding{Severity: check.Warning, Check: "translate_object", Object: what,
				Problem: fmt.Sprintf("not carried: PostgreSQL refuses its SQL (%v): create it by hand; its MySQL definition: %s", err, v.source.Definition), Fix: fix})
		default:
			out = append(out, check.Finding{Severity: check.Info, Check: "translate_object", Object: what,
				Problem: "carried: created after the load, its SQL in PostgreSQL's quoting: " + v.create, Fix: ""})
		}
	}
	return out
}

// tryViews tries the views on the target in a transaction it rolls back, with the
// translated schema made in it first when the target has none yet; why is the error
// that kept it from trying.
func (tr *translation) tryViews(ctx context.Context, conn *pgx.Conn) (failed map[string]error, why error) {
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regnamespace($1) IS NOT NULL", qident(tr.schema)).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		for _, q := range tr.preData() {
			if _, err := conn.Exec(ctx, q); err != nil {
				return nil, fmt.Errorf("make the translated tables to try them on: %w", err)
			}
		}
	}
	return tr.createViews(ctx, conn)
}
