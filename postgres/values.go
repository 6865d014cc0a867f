package postgres

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/jackc/pgx/v5"
)

// A PostgreSQL column's values to and from the canonical forms of cdc.Kind, for a
// target or source of another engine. PostgreSQL to PostgreSQL never comes here:
// its values travel in PostgreSQL's own text (or COPY's binary) as they always did.
//
// The PostgreSQL text read and written here is a server's output and input with
// the session settings Config sets on every connection: DateStyle ISO (dates as
// YYYY-MM-DD, BC as a suffix), IntervalStyle postgres ("1 year 2 mons 3 days
// 04:05:06"), extra_float_digits 3 (floats in their shortest exact digits), and
// client_encoding UTF8 (pgx's). TimeZone is left as the server has it: timestamptz
// output carries its offset, which toCanonical reads whatever it is (+05:30, or
// +00:19:32 for a zone's local mean time before 1900), and fromCanonical writes
// instants with an explicit +00, so no zone is assumed. bytea is read in either
// bytea_output (hex or escape).

// The catalog's facts about a type that decide its cdc.Type.
type catalogType struct {
	oid      uint32
	name     string // typname
	category byte   // typcategory
	typtype  byte   // b base, c composite, d domain, e enum, p pseudo, r range, m multirange
	array    bool   // a true array (typinput array_in: int2vector and oidvector are not)
	elem     uint32 // an array's element type
	base     uint32 // a domain's base type
	baseMod  int32  // a domain's typmod on its base type
	labels   []string
	format   string // format_type with the column's typmod: the type as a column declares it
}

// firstUserOID is the first oid of an object not built in (FirstNormalObjectId):
// a type below it is PostgreSQL's own, known by its name.
const firstUserOID = 16384

// columnType reads from the catalog the cdc.Type of a column of type oid with
// modifier typmod (pg_attribute's atttypid and atttypmod, or a relation message's).
func columnType(ctx context.Context, conn *pgx.Conn, oid uint32, typmod int32) (cdc.Type, error) {
	t, err := readCatalogType(ctx, conn, oid, typmod)
	if err != nil {
		return cdc.Type{}, err
	}
	var inner cdc.Type
	switch {
	case t.typtype == 'd':
		inner, err = columnType(ctx, conn, t.base, t.baseMod)
	case t.array && t.elem != 0:
		inner, err = columnType(ctx, conn, t.elem, typmod) // an array's typmod is its elements'
	}
	if err != nil {
		return cdc.Type{}, fmt.Errorf("type %s: %w", t.format, err)
	}
	return typeOf(t, typmod, inner), nil
}

func readCatalogType(ctx context.Context, conn *pgx.Conn, oid uint32, typmod int32) (catalogType, error) {
	t := catalogType{oid: oid}
	var category, typtype string
	err := conn.QueryRow(ctx, `
		SELECT t.typname, t.typcategory::text, t.typtype::text, t.typinput = 'array_in'::regproc,
		       t.typelem, t.typbasetype, t.typtypmod, format_type(t.oid, $2),
		       coalesce((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}')
		FROM pg_type t WHERE t.oid = $1`, oid, typmod).Scan(
		&t.name, &category, &typtype, &t.array, &t.elem, &t.base, &t.baseMod, &t.format, &t.labels)
	if err != nil {
		return t, fmt.Errorf("read type %d from pg_type: %w", oid, err)
	}
	t.category, t.typtype = category[0], typtype[0]
	return t, nil
}

// typeOf maps a type to its cdc.Type. inner is, for a domain, its base type's and,
// for an array, its element type's. A type with no canonical form is cdc.KindOther
// and moves between PostgreSQL servers only: composites, ranges and multiranges,
// geometric and network types, money (its text follows lc_monetary), timetz (no
// other engine has a time with a zone), the system's own types (oids by name,
// xid, pg_lsn, ...), text search types, xml, jsonpath, and extensions' types other
// than string ones (citext).
func typeOf(t catalogType, typmod int32, inner cdc.Type) cdc.Type {
	switch {
	case t.typtype == 'd':
		inner.Name = t.format // the domain's name; its values are its base type's
		return inner
	case t.typtype == 'e':
		return cdc.Type{Kind: cdc.KindEnum, Name: t.format, Labels: t.labels}
	case t.array && t.elem != 0:
		if inner.Kind == cdc.KindOther {
			return cdc.Type{Kind: cdc.KindOther, Name: t.format}
		}
		return cdc.Type{Kind: cdc.KindArray, Name: t.format, Elem: &inner}
	case t.typtype != 'b':
		return cdc.Type{Kind: cdc.KindOther, Name: t.format}
	case t.oid >= firstUserOID: // an extension's type: a string one is text
		if t.category == 'S' {
			return cdc.Type{Kind: cdc.KindText, Name: t.format}
		}
		return cdc.Type{Kind: cdc.KindOther, Name: t.format}
	}
	ct := builtinType(t.name, typmod)
	ct.Name = t.format
	return ct
}

// builtinType maps one of PostgreSQL's own base types, by name, with its modifier.
func builtinType(name string, typmod int32) cdc.Type {
	switch name {
	case "bool":
		return cdc.Type{Kind: cdc.KindBool}
	case "int2", "int4", "int8":
		w, _ := strconv.Atoi(name[3:])
		return cdc.Type{Kind: cdc.KindInt, Width: w}
	case "oid":
		return cdc.Type{Kind: cdc.KindUint, Width: 4}
	case "numeric":
		return numericType(typmod)
	case "float4":
		return cdc.Type{Kind: cdc.KindFloat32}
	case "float8":
		return cdc.Type{Kind: cdc.KindFloat64}
	case "text":
		return cdc.Type{Kind: cdc.KindText}
	case "varchar":
		return cdc.Type{Kind: cdc.KindText, Width: lengthMod(typmod)}
	case "bpchar": // char(n); bare bpchar has no length and pads nothing
		return cdc.Type{Kind: cdc.KindText, Width: lengthMod(typmod), Fixed: typmod >= 0}
	case "name":
		return cdc.Type{Kind: cdc.KindText, Width: 63}
	case "bytea":
		return cdc.Type{Kind: cdc.KindBytes}
	case "date":
		return cdc.Type{Kind: cdc.KindDate}
	case "time":
		return cdc.Type{Kind: cdc.KindTime, Precision: secondsMod(typmod)}
	case "timestamp":
		return cdc.Type{Kind: cdc.KindTimestamp, Precision: secondsMod(typmod)}
	case "timestamptz":
		return cdc.Type{Kind: cdc.KindTimestampTZ, Precision: secondsMod(typmod)}
	case "interval":
		return cdc.Type{Kind: cdc.KindInterval, Precision: intervalMod(typmod)}
	case "json", "jsonb":
		return cdc.Type{Kind: cdc.KindJSON}
	case "bit":
		return cdc.Type{Kind: cdc.KindBits, Width: int(max(typmod, 0)), Fixed: typmod >= 0}
	case "varbit":
		return cdc.Type{Kind: cdc.KindBits, Width: int(max(typmod, 0))}
	case "uuid":
		return cdc.Type{Kind: cdc.KindUUID}
	}
	return cdc.Type{Kind: cdc.KindOther}
}

// numericType decodes numeric's typmod: ((precision << 16) | scale) + 4, the scale
// 11 bits signed (PostgreSQL 15 allows -1000 to 1000); -1 is no modifier.
func numericType(typmod int32) cdc.Type {
	if typmod < 4 {
		return cdc.Type{Kind: cdc.KindDecimal}
	}
	m := typmod - 4
	return cdc.Type{Kind: cdc.KindDecimal, Precision: int(m>>16) & 0xffff, Scale: int((m&0x7ff)^1024) - 1024}
}

// lengthMod is varchar's and char's length from its typmod (the length + 4), 0 for none.
func lengthMod(typmod int32) int {
	return int(max(typmod-4, 0))
}

// secondsMod is the fractional digits of time and timestamps: the typmod, or 6.
func secondsMod(typmod int32) int {
	if typmod < 0 {
		return 6
	}
	return int(typmod)
}

// intervalMod is the fractional digits of an interval: the low 16 bits of its
// typmod (the high ones are its fields, YEAR TO MONTH...), 0xffff or -1 for 6.
func intervalMod(typmod int32) int {
	if p := typmod & 0xffff; typmod >= 0 && p != 0xffff {
		return int(p)
	}
	return 6
}

// errNoCanonical is the error of a type that has no canonical form.
var errNoCanonical = errors.New("no canonical form: its values move between PostgreSQL servers only")

// toCanonical converts a value from PostgreSQL's text output for type t to the
// canonical form of t's Kind.
func toCanonical(t cdc.Type, text []byte) ([]byte, error) {
	out, err := toCanonicalKind(t, text)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL %s value %q to canonical: %w", t.Name, text, err)
	}
	return out, nil
}

func toCanonicalKind(t cdc.Type, text []byte) ([]byte, error) {
	s := string(text)
	switch t.Kind {
	case cdc.KindBool:
		return pick(s, map[string]string{"t": "true", "f": "false"})
	case cdc.KindInt, cdc.KindUint:
		return text, checkInteger(t, s)
	case cdc.KindDecimal:
		return text, checkDecimal(s)
	case cdc.KindFloat32, cdc.KindFloat64:
		return floatText(t, s)
	case cdc.KindText, cdc.KindJSON, cdc.KindEnum:
		return text, checkUTF8(text)
	case cdc.KindBytes:
		return decodeBytea(text)
	case cdc.KindDate, cdc.KindTimestamp, cdc.KindTimestampTZ:
		return pgTimeToCanonical(t.Kind, s)
	case cdc.KindTime:
		return clockText(s)
	case cdc.KindInterval:
		return pgIntervalToCanonical(s)
	case cdc.KindBits:
		return text, checkBits(t, s)
	case cdc.KindUUID:
		return text, checkUUID(s)
	case cdc.KindGeometry:
		return geometryFromEWKB(s)
	case cdc.KindArray:
		return pgArrayToCanonical(t, text)
	}
	return nil, errNoCanonical
}

// fromCanonical converts a value in the canonical form of t's Kind to text that
// PostgreSQL's input for type t reads as the same value.
func fromCanonical(t cdc.Type, canonical []byte) ([]byte, error) {
	out, err := fromCanonicalKind(t, canonical)
	if err != nil {
		return nil, fmt.Errorf("canonical %s value %q to PostgreSQL %s: %w", t.Kind, canonical, t.Name, err)
	}
	return out, nil
}

func fromCanonicalKind(t cdc.Type, canonical []byte) ([]byte, error) {
	s := string(canonical)
	switch t.Kind {
	case cdc.KindBool:
		return pick(s, map[string]string{"true": "t", "false": "f"})
	case cdc.KindInt, cdc.KindUint:
		return canonical, checkInteger(t, s)
	case cdc.KindDecimal:
		return canonical, checkDecimal(s)
	case cdc.KindFloat32, cdc.KindFloat64:
		return floatText(t, s)
	case cdc.KindText, cdc.KindJSON:
		return canonical, checkPGText(canonical)
	case cdc.KindEnum:
		return canonical, checkLabel(t, s)
	case cdc.KindBytes:
		return []byte(`\x` + hex.EncodeToString(canonical)), nil
	case cdc.KindGeometry:
		return geometryToEWKB(s)
	case cdc.KindDate, cdc.KindTimestamp, cdc.KindTimestampTZ:
		return canonicalToPGTime(t.Kind, s)
	case cdc.KindTime:
		return clockText(s)
	case cdc.KindInterval:
		return canonicalToPGInterval(s)
	case cdc.KindBits:
		return canonical, checkBits(t, s)
	case cdc.KindUUID:
		return canonical, checkUUID(s)
	case cdc.KindArray:
		return canonicalToPGArray(t, canonical)
	}
	return nil, errNoCanonical
}

// pick maps s by m, refusing what m does not have.
func pick(s string, m map[string]string) ([]byte, error) {
	if v, ok := m[s]; ok {
		return []byte(v), nil
	}
	return nil, errors.New("not one of the type's values")
}

// checkInteger checks an integer is canonical and in the range of t's Width.
func checkInteger(t cdc.Type, s string) error {
	var err error
	if t.Kind == cdc.KindUint {
		_, err = strconv.ParseUint(s, 10, t.Width*8)
	} else {
		_, err = strconv.ParseInt(s, 10, t.Width*8)
	}
	if err == nil && (strings.HasPrefix(s, "+") || s != "0" && strings.HasPrefix(strings.TrimPrefix(s, "-"), "0") || s == "-0") {
		err = errors.New("not in canonical form (a sign + or a leading zero)")
	}
	return err
}

// checkDecimal checks a decimal is in plain notation (PostgreSQL's numeric output
// is: it never writes an exponent), or one of numeric's special values.
func checkDecimal(s string) error {
	if s == "NaN" || s == "Infinity" || s == "-Infinity" {
		return nil
	}
	digits := strings.TrimPrefix(s, "-")
	whole, frac, hasPoint := strings.Cut(digits, ".")
	_, err1 := atoiAll(whole)
	_, err2 := atoiAll(frac)
	switch {
	case err1 != nil || (hasPoint && err2 != nil):
		return errors.New("not a decimal in plain notation")
	case len(whole) > 1 && whole[0] == '0':
		return errors.New("a leading zero")
	case s[0] == '-' && strings.Trim(digits, "0.") == "":
		return errors.New("a negative zero")
	}
	return nil
}

// atoiAll checks s is digits only, of any length.
func atoiAll(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, errors.New("not digits")
	}
	return len(s), nil
}

// floatText reads a float in PostgreSQL's or the canonical spelling and writes the
// canonical one, which PostgreSQL reads too. PostgreSQL writes a float's shortest
// exact digits only with extra_float_digits above 0 (Config sets 3): with fewer, the
// text has lost bits before it gets here.
func floatText(t cdc.Type, s string) ([]byte, error) {
	bits := 64
	if t.Kind == cdc.KindFloat32 {
		bits = 32
	}
	f, err := cdc.ParseFloat(s, bits)
	if err != nil {
		return nil, err
	}
	return []byte(cdc.FormatFloat(f, bits)), nil
}

func checkUTF8(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not UTF-8")
	}
	return nil
}

// checkPGText refuses what no PostgreSQL text holds: a NUL character, text that is
// not UTF-8.
func checkPGText(b []byte) error {
	if bytes.IndexByte(b, 0) >= 0 {
		return errors.New("PostgreSQL text cannot hold a NUL character (0x00)")
	}
	return checkUTF8(b)
}

func checkLabel(t cdc.Type, s string) error {
	if len(t.Labels) > 0 && !slices.Contains(t.Labels, s) {
		return fmt.Errorf("not one of the enum's labels %q", t.Labels)
	}
	return nil
}

// checkBits checks a bit string has only 0 and 1, and the length its type allows.
func checkBits(t cdc.Type, s string) error {
	switch {
	case strings.Trim(s, "01") != "":
		return errors.New("not a string of 0 and 1")
	case t.Fixed && len(s) != t.Width:
		return fmt.Errorf("%d bits in a bit(%d)", len(s), t.Width)
	case t.Width > 0 && len(s) > t.Width:
		return fmt.Errorf("%d bits, at most %d", len(s), t.Width)
	}
	return nil
}

// checkUUID checks the lower-case 8-4-4-4-12 form (PostgreSQL's output).
func checkUUID(s string) error {
	if len(s) != 36 || strings.Count(s, "-") != 4 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' ||
		strings.Trim(s, "0123456789abcdef-") != "" {
		return errors.New("not a UUID in lower-case 8-4-4-4-12 form")
	}
	return nil
}

// decodeBytea reads bytea's output in either bytea_output: hex (\x0aff) or escape
// (printable bytes as they are, \\ for a backslash, \ooo in octal for the others).
func decodeBytea(text []byte) ([]byte, error) {
	if h, ok := bytes.CutPrefix(text, []byte(`\x`)); ok {
		out := make([]byte, hex.DecodedLen(len(h)))
		_, err := hex.Decode(out, h)
		return out, err
	}
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c != '\\':
			out = append(out, c)
		case i+1 < len(text) && text[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(text):
			n, err := strconv.ParseUint(string(text[i+1:i+4]), 8, 8)
			if err != nil {
				return nil, fmt.Errorf("escape at byte %d: %w", i, err)
			}
			out = append(out, byte(n))
			i += 3
		default:
			return nil, fmt.Errorf("a lone backslash at byte %d", i)
		}
	}
	return out, nil
}

// clockText checks a time of day (PostgreSQL's output of time is canonical, and
// PostgreSQL reads the canonical form) and writes it canonically.
func clockText(s string) ([]byte, error) {
	h, m, sec, us, err := cdc.ParseClock(s)
	if err == nil && (h > 24 || h == 24 && m+sec+us > 0) {
		err = errors.New("hour out of range")
	}
	if err != nil {
		return nil, err
	}
	return []byte(cdc.FormatClock(h, m, sec, us)), nil
}

// pgTimeToCanonical converts a date, timestamp or timestamptz from PostgreSQL's ISO
// output: "YYYY-MM-DD[ HH:MM:SS[.f][±HH[:MM[:SS]]]][ BC]", its year counted from
// 1 BC backwards with the suffix, "infinity" and "-infinity".
func pgTimeToCanonical(k cdc.Kind, s string) ([]byte, error) {
	if s == "infinity" || s == "-infinity" {
		return []byte(s), nil
	}
	body, bc := strings.CutSuffix(s, " BC")
	date, clock, _ := strings.Cut(body, " ")
	var off time.Duration
	if k == cdc.KindTimestampTZ {
		i := strings.LastIndexAny(clock, "+-")
		if i < 0 {
			return nil, errors.New("no offset after the time")
		}
		var err error
		if off, err = parseOffset(clock[i:]); err != nil {
			return nil, err
		}
		clock = clock[:i]
	}
	t, err := pgDate(date, bc)
	if err != nil {
		return nil, err
	}
	if k == cdc.KindDate {
		if clock != "" {
			return nil, errors.New("a time after the date")
		}
		return []byte(cdc.FormatDate(t)), nil
	}
	h, m, sec, us, err := cdc.ParseClock(clock)
	if err != nil {
		return nil, err
	}
	if h > 23 {
		return nil, errors.New("hour out of range")
	}
	t = t.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond)
	if k == cdc.KindTimestamp {
		return []byte(cdc.FormatTimestamp(t)), nil
	}
	return []byte(cdc.FormatInstant(t.Add(-off))), nil
}

// pgDate reads "YYYY-MM-DD" as midnight UTC of that day, in year BC if bc.
func pgDate(s string, bc bool) (time.Time, error) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 || len(parts[0]) < 4 || len(parts[1]) != 2 || len(parts[2]) != 2 {
		return time.Time{}, errors.New("not an ISO date (DateStyle ISO)")
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || strings.Trim(p, "0123456789") != "" {
			return time.Time{}, errors.New("not an ISO date (DateStyle ISO)")
		}
		n[i] = v
	}
	y := n[0]
	if bc {
		y = 1 - y // astronomical: 1 BC is year 0
	}
	t := time.Date(y, time.Month(n[1]), n[2], 0, 0, 0, 0, time.UTC)
	if n[0] < 1 || t.Day() != n[2] || int(t.Month()) != n[1] {
		return time.Time{}, errors.New("no such day")
	}
	return t, nil
}

// parseOffset reads a UTC offset as PostgreSQL writes it: ±HH, ±HH:MM or ±HH:MM:SS.
func parseOffset(s string) (time.Duration, error) {
	parts := strings.Split(s[1:], ":")
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if i >= len(parts) {
			break
		}
		n, err := strconv.Atoi(parts[i])
		if err != nil || len(parts[i]) != 2 {
			return 0, fmt.Errorf("offset %q", s)
		}
		d += time.Duration(n) * unit
	}
	if len(parts) > 3 {
		return 0, fmt.Errorf("offset %q", s)
	}
	if s[0] == '-' {
		d = -d
	}
	return d, nil
}

// canonicalToPGTime writes a canonical date, timestamp or instant as PostgreSQL's
// input reads it whatever its DateStyle's order: the ISO form, with BC as a suffix
// and an instant's offset as +00.
func canonicalToPGTime(k cdc.Kind, s string) ([]byte, error) {
	if s == "infinity" || s == "-infinity" {
		return []byte(s), nil
	}
	var t time.Time
	var err error
	switch k {
	case cdc.KindDate:
		t, err = cdc.ParseDate(s)
	case cdc.KindTimestamp:
		t, err = cdc.ParseTimestamp(s)
	default:
		if !strings.HasSuffix(s, "Z") {
			return nil, errors.New("an instant ends in Z")
		}
		t, err = cdc.ParseTimestamp(s)
	}
	if err != nil {
		return nil, err
	}
	y, bc := t.Year(), ""
	if y <= 0 {
		y, bc = 1-y, " BC"
	}
	out := fmt.Sprintf("%04d-%02d-%02d", y, int(t.Month()), t.Day())
	if k != cdc.KindDate {
		out += " " + cdc.FormatClock(t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000)
	}
	if k == cdc.KindTimestampTZ {
		out += "+00"
	}
	return []byte(out + bc), nil
}

// pgIntervalToCanonical reads an interval in IntervalStyle postgres: parts
// "[+-]N year(s)|mon(s)|day(s)" then, unless zero, "[+-]HH:MM:SS[.f]" (its hours
// unbounded), "00:00:00" for the zero interval.
func pgIntervalToCanonical(s string) ([]byte, error) {
	if s == "infinity" || s == "-infinity" {
		return []byte(s), nil
	}
	var iv cdc.Interval
	fields := strings.Fields(s)
	if n := len(fields); n > 0 && strings.Contains(fields[n-1], ":") {
		us, err := pgClockMicros(fields[n-1])
		if err != nil {
			return nil, err
		}
		iv.Micros, fields = us, fields[:n-1]
	}
	if len(fields)%2 != 0 {
		return nil, errors.New("not IntervalStyle postgres")
	}
	for i := 0; i < len(fields); i += 2 {
		n, err := strconv.ParseInt(fields[i], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("part %q: %w", fields[i], err)
		}
		switch strings.TrimSuffix(fields[i+1], "s") {
		case "year":
			n *= 12
			fallthrough
		case "mon":
			iv.Months += int32(n)
		case "day":
			iv.Days += int32(n)
		default:
			return nil, fmt.Errorf("unit %q", fields[i+1])
		}
	}
	return []byte(iv.String()), nil
}

// pgClockMicros reads an interval's "[+-]H+:MM:SS[.f]" as microseconds.
func pgClockMicros(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	h, m, sec, us, err := cdc.ParseClock(strings.TrimLeft(s, "+-"))
	if err != nil {
		return 0, err
	}
	// Built negative, the most negative interval (-2562047788:00:54.775808) fits.
	total := -(int64(h)*3600e6 + int64(m)*60e6 + int64(sec)*1e6) - int64(us)
	if !neg {
		total = -total
	}
	return total, nil
}

// canonicalToPGInterval writes an interval as PostgreSQL's input reads it in any
// IntervalStyle: "M mons D days H hours M mins S.ffffff secs". Not as IntervalStyle
// postgres writes it: PostgreSQL (15) writes the most negative interval's time as
// -2562047788:00:54.775808 and refuses that text on input.
func canonicalToPGInterval(s string) ([]byte, error) {
	if s == "infinity" || s == "-infinity" {
		return []byte(s), nil
	}
	iv, err := cdc.ParseInterval(s)
	if err != nil {
		return nil, err
	}
	sign, us := "", uint64(iv.Micros)
	if iv.Micros < 0 {
		sign, us = "-", uint64(-iv.Micros) // -MinInt64 wraps to 1<<63: right as a uint64
	}
	return fmt.Appendf(nil, "%[1]d mons %[2]d days %[3]s%[4]d hours %[3]s%[5]d mins %[3]s%[6]d.%06[7]d secs", iv.Months, iv.Days, sign,
		us/3600e6, us/60e6%60, us/1e6%60, us%1e6), nil
}

// pgArrayToCanonical converts an array's text output ({1,NULL,"a b"}, nested braces
// per dimension) to the canonical JSON array, each element converted by its type.
func pgArrayToCanonical(t cdc.Type, text []byte) ([]byte, error) {
	if bytes.HasPrefix(text, []byte("[")) {
		return nil, errors.New("an array whose indexes do not start at 1 has no canonical form")
	}
	elems, rest, err := parsePGArray(text)
	if err == nil && len(rest) > 0 {
		err = errors.New("text after the array")
	}
	if err != nil {
		return nil, err
	}
	canonical, err := mapArray(elems, func(e []byte) (string, error) {
		c, err := toCanonicalKind(*t.Elem, e)
		if t.Elem.Kind == cdc.KindBytes {
			return hex.EncodeToString(c), err // JSON strings hold characters, not bytes
		}
		return string(c), err
	})
	if err != nil {
		return nil, err
	}
	return cdc.FormatArray(canonical)
}

// mapArray applies f to each element of a parsed array ([]byte, nil or []any).
func mapArray(elems []any, f func([]byte) (string, error)) ([]any, error) {
	out := make([]any, len(elems))
	for i, e := range elems {
		var err error
		switch v := e.(type) {
		case []byte:
			out[i], err = f(v)
		case []any:
			out[i], err = mapArray(v, f)
		}
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i+1, err)
		}
	}
	return out, nil
}

// parsePGArray reads one dimension of an array's text at the start of s: elements
// are []byte (an element's text, unquoted), nil (NULL) or []any (a dimension below).
// The delimiter is "," (every type with a canonical form has it; box's ";" does not).
func parsePGArray(s []byte) ([]any, []byte, error) {
	if len(s) == 0 || s[0] != '{' {
		return nil, nil, errors.New("an array does not start with {")
	}
	s = s[1:]
	elems := []any{}
	if len(s) > 0 && s[0] == '}' {
		return elems, s[1:], nil
	}
	for {
		var e any
		var err error
		switch {
		case len(s) == 0:
			return nil, nil, errors.New("the array ends early")
		case s[0] == '{':
			e, s, err = parsePGArray(s)
		case s[0] == '"':
			e, s, err = quotedElement(s)
		default:
			i := bytes.IndexAny(s, ",}")
			if i < 0 {
				return nil, nil, errors.New("the array ends early")
			}
			e, s = bytes.Clone(s[:i]), s[i:]
			if string(e.([]byte)) == "NULL" {
				e = nil
			}
		}
		if err != nil {
			return nil, nil, err
		}
		elems = append(elems, e)
		if len(s) == 0 {
			return nil, nil, errors.New("the array ends early")
		}
		c := s[0]
		s = s[1:]
		if c == '}' {
			return elems, s, nil
		}
		if c != ',' {
			return nil, nil, fmt.Errorf("%q between elements", c)
		}
	}
}

// quotedElement reads a double-quoted array element, backslash escaping the next byte.
func quotedElement(s []byte) ([]byte, []byte, error) {
	var out []byte
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			return append([]byte{}, out...), s[i+1:], nil
		case '\\':
			i++
			if i == len(s) {
				return nil, nil, errors.New("the array ends early")
			}
		}
		out = append(out, s[i])
	}
	return nil, nil, errors.New("an element's quote is not closed")
}

// canonicalToPGArray writes a canonical JSON array as an array literal, every
// element converted by its type and double-quoted, NULL for null.
func canonicalToPGArray(t cdc.Type, canonical []byte) ([]byte, error) {
	elems, err := cdc.ParseArray(canonical)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := writePGArray(&b, *t.Elem, elems); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writePGArray(b *bytes.Buffer, elem cdc.Type, elems []any) error {
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		switch v := e.(type) {
		case nil:
			b.WriteString("NULL")
		case []any:
			if err := writePGArray(b, elem, v); err != nil {
				return err
			}
		case string:
			c := []byte(v)
			if elem.Kind == cdc.KindBytes {
				var err error
				if c, err = hex.DecodeString(v); err != nil {
					return fmt.Errorf("element %d: bytes in hex: %w", i+1, err)
				}
			}
			pg, err := fromCanonicalKind(elem, c)
			if err != nil {
				return fmt.Errorf("element %d %q: %w", i+1, v, err)
			}
			b.WriteByte('"')
			for _, c := range pg {
				if c == '"' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(c)
			}
			b.WriteByte('"')
		}
	}
	b.WriteByte('}')
	return nil
}
