// Package schema is a source's tables as every engine reads them: columns with their
// cdc.Type, keys, indexes, foreign keys, checks and the objects around the tables. A
// migration between two engines (MySQL to PostgreSQL) goes through it: the source
// engine reads its catalog into a Schema, the target engine translates each table
// into its own DDL by rules it documents, and says what it does not carry. Between
// two servers of one engine, the engine copies its own DDL and needs none of this.
//
// Expressions (defaults, generated columns, checks, view bodies) are kept in the
// source's dialect, with the dialect named: a target translates those it can and
// reports the rest, never guessing.
package schema

import (
	"strings"

	"github.com/cutover-dev/cutover/cdc"
)

// Schema is what a migration carries from its source.
type Schema struct {
	// Dialect is the source engine's SQL, for its expressions: "mysql" (MySQL and
	// MariaDB), "postgres".
	Dialect string
	Tables  []*Table
	// Objects are the rest: views, triggers, routines, events. A target creates the
	// ones it can translate (views) and lists the others with what to do.
	Objects []Object
}

// Table is one table.
type Table struct {
	Schema, Name string
	Columns      []Column
	// PrimaryKey names the primary key's columns in key order; nil for none.
	PrimaryKey []string
	Indexes    []Index
	// ForeignKeys are the table's references to other tables.
	ForeignKeys []ForeignKey
	Checks      []Check
	// NextAutoIncrement is the value the source's counter gives next (MySQL's
	// AUTO_INCREMENT table option); 0 when the table has no such column.
	NextAutoIncrement uint64
	Comment           string
}

// Column is one column.
type Column struct {
	Name    string
	Type    cdc.Type
	NotNull bool
	// Default is the column's default; nil for none (NULL).
	Default *Default
	// AutoIncrement is a column the source numbers itself (MySQL's AUTO_INCREMENT).
	AutoIncrement bool
	// Generated is the expression of a generated column, in the source's dialect
	// ("" for a stored column); Stored says whether its values are stored.
	Generated string
	Stored    bool
	// OnUpdateNow is MySQL's ON UPDATE CURRENT_TIMESTAMP.
	OnUpdateNow bool
	// ZeroDates says the source holds MySQL's zero dates in the column (0000-00-00,
	// a zero month or day), which are no dates: they cross as NULL, and a target
	// lets the column hold NULL.
	ZeroDates bool
	// Charset and Collation are the column's (MySQL's, "" for types without them);
	// CaseInsensitive and PadInsensitive say how the collation compares.
	Charset, Collation              string
	CaseInsensitive, PadInsensitive bool
	Comment                         string
}

// Default is a column's default: a constant, the current time, or another
// expression.
type Default struct {
	// Value is a constant in the canonical form of the column's Kind; Expr is empty
	// then.
	Value string
	// Now is the current date and time (CURRENT_TIMESTAMP, with Precision digits).
	Now       bool
	Precision int
	// Expr is any other expression, in the source's dialect.
	Expr string
}

// Index is a secondary index, or a unique one (the primary key is Table.PrimaryKey).
type Index struct {
	Name    string
	Unique  bool
	Columns []IndexColumn
	// Method is "btree" (the default), "hash", "fulltext" or "spatial".
	Method string
}

// IndexColumn is one part of an index: a column (a prefix of it, descending) or an
// expression.
type IndexColumn struct {
	Name string
	// Prefix is the length of a prefix part (MySQL's col(10)), in characters for a
	// text and bytes for bytes; 0 for the whole value.
	Prefix int
	Desc   bool
	// Expr is an expression part in the source's dialect; Name is empty then.
	Expr string
}

// ForeignKey is a reference from a table's columns to another table's.
type ForeignKey struct {
	Name                string
	Columns             []string
	RefSchema, RefTable string
	RefColumns          []string
	// OnDelete and OnUpdate are the actions in SQL's words: "NO ACTION" (the
	// default), "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT".
	OnDelete, OnUpdate string
}

// Check is a CHECK constraint, its expression in the source's dialect.
type Check struct {
	Name, Expr string
}

// Object is a view, trigger, routine or event.
type Object struct {
	// Kind is "view", "trigger", "procedure", "function" or "event".
	Kind         string
	Schema, Name string
	// Table is a trigger's table.
	Table string
	// Definition is the object's SQL in the source's dialect (a view's SELECT, the
	// others' whole CREATE statement).
	Definition string
}

// Column finds a column by name; nil when the table has none.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// String is the table's name, schema first, for messages.
func (t *Table) String() string { return t.Schema + "." + t.Name }

// Action writes a foreign key action as SQL does, "NO ACTION" for none.
func Action(a string) string {
	if a = strings.ToUpper(strings.TrimSpace(a)); a == "" {
		return "NO ACTION"
	}
	return a
}
