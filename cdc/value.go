package cdc

import "strconv"

// How a value travels
//
// A Value's Text is in one of two forms, and which one is decided by the pair of
// engines, not by the value:
//
//   - Source and target are the same engine (PostgreSQL to PostgreSQL, MySQL to
//     MySQL): the source engine's own text output, written to the target as is. This
//     is the fast path (PostgreSQL's COPY, text or binary, and pgoutput's text) and
//     it is unchanged by anything below: no value is converted.
//   - Source and target are different engines: the canonical text form of the
//     column's Kind, documented on each Kind below. The source engine converts its
//     own text to the canonical form, the target engine converts the canonical form
//     to what its server reads. Neither engine knows the other's text.
//
// In both forms NULL is Null (Text nil), never a text such as "NULL" or "\N"; and a
// value the source did not send (PostgreSQL's unchanged TOAST value in an update) is
// Unchanged: the target keeps what it has and never writes it as NULL.
//
// A canonical form is text, so one reader can log it, compare it and put it in
// apply_exceptions; it is exact (no value loses a digit or a bit on the way), and
// it has one spelling per value where the engines agree on what the value is, so a
// validation can compare canonical texts. Where a Kind's values have more than one
// text that both engines read as equal but keep apart (numeric 1.0 and 1.00, JSON
// key order), the canonical form keeps the source's.
//
// A value an engine cannot hold (a PostgreSQL date of infinity, a BC date, NaN in a
// MySQL DECIMAL, a NUL character in PostgreSQL text) is refused by the target engine
// with an error naming the column, the value and why; it is never rounded, clamped
// or written as NULL.

// Kind is the kind of a column's type, the same for every engine: it says what the
// canonical text form of the column's values is.
type Kind uint8

// The kinds. Each one's comment is its canonical text form.
const (
	// KindOther is a type with no canonical form (PostgreSQL's ranges, geometric and
	// network types, money, tsvector, composites, ...; an unknown type). Its values
	// travel in the source engine's own text, between servers of that engine only: a
	// target of another engine refuses the column before any row moves.
	KindOther Kind = iota

	// KindBool: "true" or "false".
	KindBool

	// KindInt is a signed integer of Type.Width bytes (1, 2, 3, 4 or 8): in decimal,
	// "-" before a negative value, no "+", no leading zeros, "0" for zero.
	KindInt

	// KindUint is an unsigned integer of Type.Width bytes (MySQL's UNSIGNED, a
	// PostgreSQL oid): in decimal, no sign, no leading zeros.
	KindUint

	// KindDecimal is an exact decimal number of Type.Precision digits, Type.Scale of
	// them after the point (Precision 0: no declared precision or scale, PostgreSQL's
	// bare numeric). Plain notation, never an exponent: "-" before a negative value,
	// at least one digit before the point, no leading zeros ("0.5", not ".5" or
	// "00.5"), zero never negative ("0.00", not "-0.00"). With a declared scale
	// above 0 exactly Scale digits follow the point ("1.50" in a DECIMAL(5,2)); with
	// a scale of 0 or below there is no point. Without one the value keeps its own
	// scale as the source has it (PostgreSQL keeps 1.0 and 1.00 apart: so does the
	// canonical form). PostgreSQL's special values are "NaN", "Infinity" and
	// "-Infinity"; MySQL has none and refuses them.
	KindDecimal

	// KindFloat32 and KindFloat64 are IEEE 754 binary32 and binary64 numbers: the
	// shortest decimal that reads back to the same bits. With its digits d1 d2 ... dn
	// (no trailing zeros) and its decimal exponent X (value = d1.d2...dn × 10^X):
	// plain notation when -4 <= X < 21 ("0.0001", "1.5", "100", "123456789012345680000"),
	// otherwise d1[.d2...dn]e±X with the exponent's sign always written and no
	// leading zeros in it ("1e+21", "1.5e-7", "3.4028235e+38"). "-" before a
	// negative value, and negative zero is "-0" (it is a different value: its bits
	// differ). The special values are "NaN", "Infinity" and "-Infinity"; MySQL has
	// none and refuses them. A float32 is written with the digits of a float32: the
	// float32 nearest 0.1 is "0.1", not the 0.10000000149011612 of its float64 value.
	KindFloat32
	KindFloat64

	// KindText is a character string, UTF-8 encoded, exactly as the source holds it:
	// no trimming, no case or Unicode normalization. Type.Width is the declared
	// maximum length in characters (0: none). Type.Fixed is a blank-padded type
	// (CHAR(n)): the padding is part of the text when the source gives it
	// (PostgreSQL's char(n) output does, MySQL's CHAR strips it); a target may pad
	// or strip by its own type's rule. PostgreSQL refuses a NUL character.
	KindText

	// KindBytes is a binary string: the raw bytes, not hex or escaped. Type.Width is
	// the declared maximum length in bytes (0: none), Type.Fixed a zero-padded type
	// (MySQL's BINARY(n)).
	KindBytes

	// KindDate is a calendar date in the proleptic Gregorian calendar: "YYYY-MM-DD".
	// The year has at least 4 digits, zero-padded ("0044-03-15"), and more when it is
	// past 9999 ("12345-01-01", no "+"). Years before year 1 use astronomical
	// numbering, ISO 8601's: year 0 is 1 BC, year -1 is 2 BC, written with "-" and
	// at least 4 digits ("-0043-03-15" is 15 March 44 BC). PostgreSQL's special
	// dates are "infinity" and "-infinity". MySQL has no BC date and no infinity, and
	// its zero dates ("0000-00-00", a zero month or day) are not dates: the MySQL
	// engine says what becomes of them (refused, or NULL when the plan says so).
	KindDate

	// KindTime is a time of day without a zone, Type.Precision digits of fractional
	// seconds declared (0 to 6): "HH:MM:SS" then, when the fraction is not zero, "."
	// and its digits without trailing zeros ("12:34:56.5", not "12:34:56.500000").
	// Hours are two digits, "24:00:00" is the end of the day (PostgreSQL has it).
	// MySQL's TIME is a duration of -838:59:59.999999 to 838:59:59.999999 (MySQL 8:
	// to 838:59:59.000000). Its canonical text is the form above with a "-" before a
	// negative duration and as many hour digits as the hours need, 2 at least:
	// "-100:00:00", "838:59:59.5", "-00:00:00.5", "00:00:00" (zero is never
	// negative). A time of day reads the same in both; a PostgreSQL time refuses the
	// rest (PostgreSQL's interval takes them).
	KindTime

	// KindTimestamp is a date and a time of day without a zone, written as the date
	// (KindDate), one space, and the time (KindTime, hours 00 to 23):
	// "2026-03-01 12:00:00.123456", "-0043-03-15 00:00:00". The special values are
	// "infinity" and "-infinity" (PostgreSQL only).
	KindTimestamp

	// KindTimestampTZ is an instant: the timestamp in UTC, as KindTimestamp, followed
	// by "Z": "2026-03-01 11:00:00Z" for PostgreSQL's 2026-03-01 12:00:00+01. The
	// offset the source wrote is not kept (PostgreSQL keeps none either: its output
	// is in the session's zone). "infinity" and "-infinity" as KindTimestamp.
	KindTimestampTZ

	// KindInterval is a duration of months, days and microseconds, each with its own
	// sign (PostgreSQL's interval; 1 month and 30 days are different values, as are
	// 1 day and 24 hours). ISO 8601's format with designators, as PostgreSQL writes
	// it with IntervalStyle iso_8601: "P", then the years and months of the months
	// (nY, nM, each with the months' sign), the days (nD), and, after "T", the hours,
	// minutes and seconds of the microseconds (nH, nM, n[.ffffff]S, each with the
	// microseconds' sign, the fraction without trailing zeros). A part that is zero
	// is left out; the zero interval is "PT0S". For example
	// "P1Y2M3DT4H5M6.5S", "P-1Y-2M3DT-4H-5M-6S", "PT-0.000001S". PostgreSQL 17's
	// "infinity" and "-infinity" as they are. MySQL has no interval column.
	KindInterval

	// KindJSON is a JSON text (RFC 8259), UTF-8, as the source writes it: the
	// canonical form does not reorder keys, drop duplicates or respell numbers, since
	// PostgreSQL's json keeps all three and its jsonb and MySQL's JSON normalize them
	// their own way on input.
	KindJSON

	// KindEnum is one of Type.Labels: the label's text.
	KindEnum

	// KindSet is a set of Type.Labels (MySQL's SET): the labels it holds, in the
	// order of Type.Labels, joined by "," with no spaces; the empty set is "".
	KindSet

	// KindBits is a bit string of Type.Width bits (Type.Fixed: exactly that many;
	// otherwise at most, 0 for no limit): one "0" or "1" per bit, the most
	// significant first ("00101" for MySQL's b'101' in a BIT(5)).
	KindBits

	// KindUUID is a UUID: 32 lower-case hex digits in groups of 8-4-4-4-12 joined by
	// "-" ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").
	KindUUID

	// KindArray is an array of Type.Elem values: a JSON array (RFC 8259) of the
	// elements in order, each one its canonical text as a JSON string and null for
	// NULL (an element of KindBytes is the lower-case hex of its bytes, JSON strings
	// holding characters only); an array of more than one dimension nests one JSON
	// array per dimension: `[["1","2"],["3",null]]`. The empty array is "[]". Only
	// arrays whose every dimension starts at index 1 have a canonical form (PostgreSQL
	// allows others, '[0:1]={1,2}': they are refused). No element kind is KindOther:
	// an array of such elements is KindOther itself.
	KindArray

	// KindGeometry is a geometry of the OGC simple features model (MySQL's spatial
	// types, PostGIS's geometry), in two dimensions: its spatial reference ID in
	// decimal, ":", and the lower-case hex of its well-known binary (OGC WKB) in
	// little-endian byte order: "4326:0101000000000000000000f03f0000000000000040" is
	// POINT(1 2) in SRID 4326. MySQL's internal format is the SRID (4 bytes,
	// little-endian) and this WKB; PostGIS's text output is the extended WKB, the SRID
	// inside.
	KindGeometry
)

var kindNames = [...]string{
	KindOther: "other", KindBool: "bool", KindInt: "int", KindUint: "uint", KindDecimal: "decimal",
	KindFloat32: "float32", KindFloat64: "float64", KindText: "text", KindBytes: "bytes",
	KindDate: "date", KindTime: "time", KindTimestamp: "timestamp", KindTimestampTZ: "timestamptz",
	KindInterval: "interval", KindJSON: "json", KindEnum: "enum", KindSet: "set", KindBits: "bits",
	KindUUID: "uuid", KindArray: "array", KindGeometry: "geometry",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Type describes a column's type: its Kind, the engine's own name for it, and what
// converting its values to and from the canonical form needs. The fields a Kind does
// not mention are zero.
type Type struct {
	Kind Kind
	// Name is the type as the source engine writes it in a column definition, with
	// its modifiers ("numeric(10,2)", "character varying(20)", "int unsigned", a
	// domain's or enum's own name): for messages, and for a target engine that
	// creates the column.
	Name string
	// Width is, for KindInt and KindUint, the size in bytes (1, 2, 3, 4 or 8: the
	// range of values); for KindBits the number of bits; for KindText and KindBytes
	// the maximum length in characters or bytes. 0 is no limit.
	Width int
	// Fixed is a fixed-length KindText, KindBytes or KindBits (CHAR(n), BINARY(n),
	// bit(n)): values are padded to Width, or must have it.
	Fixed bool
	// Precision is, for KindDecimal, the number of digits (0: none declared, and
	// Scale is then meaningless); for KindTime, KindTimestamp, KindTimestampTZ and
	// KindInterval the digits of fractional seconds the type keeps (0 to 6).
	Precision int
	// Scale is, for KindDecimal with a Precision, the digits after the point. It can
	// be negative (PostgreSQL 15's numeric(2,-3) rounds to thousands).
	Scale int
	// Labels are a KindEnum's or KindSet's labels in their declared order.
	Labels []string
	// Elem is a KindArray's element type.
	Elem *Type
}
