package mysql

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	neutral "github.com/cutover-dev/cutover/schema"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cutover-dev/cutover/cdc"
)

// Values between MySQL and another engine: toCanonical reads a value as the full
// load's cross-engine SELECT (crossSelectExpr, in a session with time_zone '+00:00')
// and binlogColumn.text give it, and writes the canonical form of its column's Kind
// (cdc/value.go); fromCanonical writes the text a MySQL server reads back, from a
// statement's parameter, as that value, and refuses what MySQL cannot hold.
//
// Where MySQL has values the canonical forms do not name, the forms are extended so:
//
//   - KindTime: MySQL's TIME is a duration of -838:59:59.999999 to 838:59:59.999999
//     (MySQL 8: to 838:59:59.000000). Its canonical text is KindTime's with a "-"
//     before a negative duration and as many hour digits as the hours need, 2 at
//     least: "-100:00:00", "838:59:59.5", "-00:00:00.5", "00:00:00" (zero is never
//     negative). A time of day ("00" to "23" hours, and "24:00:00") reads the same in
//     both.
//   - KindDate, KindTimestamp, KindTimestampTZ: MySQL's year 0000 is the proleptic
//     Gregorian year before year 1 (TO_DAYS counts it, a leap year), which is the
//     canonical form's year 0 (1 BC): a DATE of '0000-03-01' is "0000-03-01". The zero
//     date and dates with a zero month or day ('0000-00-00', '2020-00-15') are not
//     dates: toCanonical returns an error that is errZeroDate, and so does a day the
//     month does not have ('2021-02-30', which ALLOW_INVALID_DATES stores); the caller
//     applies the plan's rule (refuse, or NULL).
//   - KindEnum: an ENUM's error value (index 0, which MySQL stores for a value not
//     among the labels outside strict mode, and shows as '') is no label: toCanonical
//     returns an error that is errEnumError, and the caller applies the plan's rule.
//   - KindUint of Type.Name "year" (Width 2) is a YEAR: 0 (0000) or 1901 to 2155.

// errZeroDate is a DATE, DATETIME or TIMESTAMP value that is not a date: the zero
// date, a zero month or day, or a day its month does not have.
var errZeroDate = errors.New("a zero or invalid date, which is not a date")

// errEnumError is an ENUM's error value (index 0, shown as the empty string).
var errEnumError = errors.New("the ENUM's error value (index 0, shown as ''), which is none of its labels: " +
	"set those rows to a label or NULL on the source (WHERE col = 0 finds them)")

// utf8Charset says whether a character set's text is UTF-8 as it is.
func utf8Charset(charset string) bool {
	switch strings.ToLower(charset) {
	case "", "utf8mb4", "utf8mb3", "utf8", "ascii":
		return true
	}
	return false
}

// crossSelectExpr is the expression the full load reads a column with when the
// target is another engine: the text toCanonical reads. quoted is the column's name
// quoted, charset its character set ("" for none). Numbers that MySQL's text would
// round or name differently are read as numbers (FLOAT widened to DOUBLE, whose
// shortest text is exact; BIT, ENUM, SET and YEAR as their integer), and a string in
// a character set other than UTF-8 (latin1, ...) is converted to utf8mb4 by the
// server. The session's time_zone must be '+00:00' (TIMESTAMP in UTC).
func crossSelectExpr(quoted string, t cdc.Type, charset string) string {
	switch t.Kind {
	case cdc.KindFloat32:
		return quoted + " * 1e0" // keeps -0, as `+ 0e0` does not
	case cdc.KindBits, cdc.KindEnum, cdc.KindSet:
		return quoted + " + 0"
	case cdc.KindUint:
		if t.Name == "year" {
			return quoted + " + 0"
		}
	case cdc.KindText, cdc.KindJSON:
		if !utf8Charset(charset) && !strings.EqualFold(charset, "binary") {
			return "CONVERT(" + quoted + " USING utf8mb4)"
		}
	}
	return quoted
}

// toCanonical writes a value of MySQL's text (see crossSelectExpr) in the canonical
// form of t.Kind. A zero date is an error that is errZeroDate, an ENUM's error value
// one that is errEnumError. The result never shares text's memory.
func toCanonical(t cdc.Type, text []byte) ([]byte, error) {
	s := string(text)
	switch t.Kind {
	case cdc.KindInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || !intFits(n, t.Width) {
			return nil, fmt.Errorf("%q is not an integer of %s", s, t.Name)
		}
		return strconv.AppendInt(nil, n, 10), nil
	case cdc.KindUint:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || !uintFits(n, t.Width) {
			return nil, fmt.Errorf("%q is not an unsigned integer of %s", s, t.Name)
		}
		return strconv.AppendUint(nil, n, 10), nil
	case cdc.KindDecimal:
		d, err := decimalText(s, t)
		if err != nil {
			return nil, err
		}
		return []byte(d), nil
	case cdc.KindFloat32:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || float64(float32(f)) != f {
			return nil, fmt.Errorf("%q is not the value of a FLOAT (a float32 as a DOUBLE)", s)
		}
		return []byte(cdc.FormatFloat(f, 32)), nil
	case cdc.KindFloat64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%q is not the value of a DOUBLE", s)
		}
		return []byte(cdc.FormatFloat(f, 64)), nil
	case cdc.KindBits:
		n, err := parseMask(s)
		if err != nil || (t.Width < 64 && n>>uint(t.Width) != 0) {
			return nil, fmt.Errorf("%q is not the integer of a %s", s, t.Name)
		}
		out := make([]byte, t.Width)
		for i := range out {
			out[i] = '0' + byte(n>>uint(t.Width-1-i)&1)
		}
		return out, nil
	case cdc.KindEnum:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > uint64(len(t.Labels)) {
			return nil, fmt.Errorf("%q is not the index of a label of %s", s, t.Name)
		}
		if n == 0 {
			return nil, errEnumError
		}
		return []byte(t.Labels[n-1]), nil
	case cdc.KindSet:
		n, err := parseMask(s)
		if err != nil || (len(t.Labels) < 64 && n>>uint(len(t.Labels)) != 0) {
			return nil, fmt.Errorf("%q is not the bitmask of a set of %s", s, t.Name)
		}
		var b []byte
		for i, l := range t.Labels {
			if n&(1<<uint(i)) != 0 {
				if len(b) > 0 {
					b = append(b, ',')
				}
				b = append(b, l...)
			}
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	case cdc.KindDate:
		y, m, d, rest, err := mysqlDate(s)
		if err == nil && rest != "" {
			err = fmt.Errorf("%q is not a DATE", s)
		}
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%04d-%02d-%02d", y, m, d), nil
	case cdc.KindTimestamp, cdc.KindTimestampTZ:
		y, m, d, rest, err := mysqlDate(s)
		if err != nil {
			return nil, err
		}
		clock, ok := strings.CutPrefix(rest, " ")
		if !ok {
			return nil, fmt.Errorf("%q is not a DATETIME or TIMESTAMP", s)
		}
		h, mi, sec, micro, err := cdc.ParseClock(clock)
		if err != nil || h > 23 {
			return nil, fmt.Errorf("%q is not a DATETIME or TIMESTAMP", s)
		}
		out := fmt.Appendf(nil, "%04d-%02d-%02d %s", y, m, d, cdc.FormatClock(h, mi, sec, micro))
		if t.Kind == cdc.KindTimestampTZ {
			out = append(out, 'Z')
		}
		return out, nil
	case cdc.KindTime:
		neg := strings.HasPrefix(s, "-")
		h, mi, sec, micro, err := cdc.ParseClock(strings.TrimPrefix(s, "-"))
		if err != nil || h > 838 {
			return nil, fmt.Errorf("%q is not a TIME", s)
		}
		out := cdc.FormatClock(h, mi, sec, micro)
		if neg && (h|mi|sec|micro) != 0 {
			out = "-" + out
		}
		return []byte(out), nil
	case cdc.KindText, cdc.KindJSON:
		if !utf8.Valid(text) {
			return nil, fmt.Errorf("%q is not UTF-8: the value holds bytes that are no character of the column's character set "+
				"(a byte above 0x7f in an ascii column): correct it on the source", truncate(s))
		}
		return append([]byte{}, text...), nil
	case cdc.KindBytes:
		return append([]byte{}, text...), nil
	case cdc.KindGeometry:
		// MySQL's internal format: the SRID, 4 bytes little-endian, then the WKB
		if len(text) < 4+5 {
			return nil, fmt.Errorf("%d bytes are no %s value (the SRID's 4 bytes, then its WKB)", len(text), t.Name)
		}
		return fmt.Appendf(nil, "%d:%x", binary.LittleEndian.Uint32(text), text[4:]), nil
	case cdc.KindUUID:
		u := strings.ToLower(s)
		if !isUUID(u) {
			return nil, fmt.Errorf("%q is not a UUID", s)
		}
		return []byte(u), nil
	}
	return nil, fmt.Errorf("a value of %s (kind %s), which has no canonical form from MySQL", t.Name, t.Kind)
}

// parseMask reads a BIT's or SET's integer: unsigned, or the signed integer of the
// same 64 bits (MariaDB's `col + 0` of a SET of 64 members with the last one in it
// is negative).
func parseMask(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		n, err := strconv.ParseInt(s, 10, 64)
		return uint64(n), err
	}
	return strconv.ParseUint(s, 10, 64)
}

// decimalText writes a DECIMAL's text (MySQL writes its declared scale) in the
// canonical form: no leading zeros, zero not negative, exactly Scale digits after
// the point when a scale is declared.
func decimalText(s string, t cdc.Type) (string, error) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	whole, frac, hasPoint := strings.Cut(body, ".")
	if !digitsOnly(whole) && !(whole == "" && hasPoint) || hasPoint && !digitsOnly(frac) {
		return "", fmt.Errorf("%q is not a DECIMAL", s)
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	if t.Precision > 0 {
		if len(frac) < t.Scale {
			frac += strings.Repeat("0", t.Scale-len(frac))
		} else if len(frac) > max(t.Scale, 0) {
			if strings.Trim(frac[max(t.Scale, 0):], "0") != "" {
				return "", fmt.Errorf("%q has more digits after the point than %s", s, t.Name)
			}
			frac = frac[:max(t.Scale, 0)]
		}
		if t.Precision-t.Scale < len(whole) && whole != "0" {
			return "", fmt.Errorf("%q has more digits than %s", s, t.Name)
		}
	}
	if neg && strings.Trim(whole+frac, "0") == "" {
		neg = false
	}
	out := whole
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out, nil
}

func digitsOnly(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// mysqlDate reads "YYYY-MM-DD" at the start of s as MySQL writes a DATE, DATETIME or
// TIMESTAMP: a zero or invalid date is errZeroDate.
func mysqlDate(s string) (y, m, d int, rest string, err error) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' || !digitsOnly(s[:4]) || !digitsOnly(s[5:7]) || !digitsOnly(s[8:10]) {
		return 0, 0, 0, "", fmt.Errorf("%q is not a MySQL date", s)
	}
	y, _ = strconv.Atoi(s[:4])
	m, _ = strconv.Atoi(s[5:7])
	d, _ = strconv.Atoi(s[8:10])
	if m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, 0, 0, "", fmt.Errorf("%q: %w", s, errZeroDate)
	}
	return y, m, d, s[10:], nil
}

// notDateSQL is the SQL that is true of a DATE, DATETIME or TIMESTAMP value, quoted
// its column's name, that toCanonical refuses as errZeroDate: a zero month or day,
// or a day its month does not have (mysqlDate and daysIn, in MySQL's SQL).
func notDateSQL(quoted string) string {
	return fmt.Sprintf("(MONTH(%[1]s) = 0 OR DAYOFMONTH(%[1]s) = 0 OR DAYOFMONTH(%[1]s) > CASE WHEN MONTH(%[1]s) IN (4, 6, 9, 11) THEN 30 "+
		"WHEN MONTH(%[1]s) = 2 THEN IF(YEAR(%[1]s) %% 4 = 0 AND (YEAR(%[1]s) %% 100 <> 0 OR YEAR(%[1]s) %% 400 = 0), 29, 28) ELSE 31 END)", quoted)
}

// daysIn is the number of days of a month of a proleptic Gregorian year.
func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func intFits(n int64, width int) bool {
	if width <= 0 || width >= 8 {
		return true
	}
	lim := int64(1) << (8*width - 1)
	return n >= -lim && n < lim
}

func uintFits(n uint64, width int) bool {
	if width <= 0 || width >= 8 {
		return true
	}
	return n < 1<<(8*width)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// truncate shortens a value for a message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// The TIMESTAMP range, in UTC: 1970-01-01 00:00:01 to 2038-01-19 03:14:07.999999.
const (
	minTimestamp = "1970-01-01 00:00:01"
	maxTimestamp = "2038-01-19 03:14:07.999999"
)

// fromCanonical writes a canonical value of t.Kind as the text a MySQL server reads,
// from a statement's parameter in a session with time_zone '+00:00', into a column
// of type t as the same value; a value MySQL cannot hold, or only rounded, is an
// error that names it and says why. The texts, by kind:
//
//   - KindInt, KindUint: the decimal number (a YEAR: 4 digits, "0000" for year 0,
//     which MySQL reads as 0000 where "0" is 2000). They also take KindBool's "true"
//     and "false" as 1 and 0 (a TINYINT(1) that another engine holds as a boolean).
//   - KindBits: the bits' unsigned integer in decimal. The caller must bind it as a
//     number (an integer argument, or CAST(? AS UNSIGNED)): MySQL reads a string
//     into a BIT as its bytes.
//   - KindEnum, KindSet: the labels, as a string.
//   - KindTimestampTZ: the instant in UTC without "Z" (the session's zone is UTC).
//   - the others: the canonical text, checked against what MySQL holds.
func fromCanonical(t cdc.Type, canonical []byte) ([]byte, error) {
	s := string(canonical)
	refuse := func(why string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("the value %q cannot be written to a MySQL %s: %s", truncate(s), t.Name, fmt.Sprintf(why, args...))
	}
	switch t.Kind {
	case cdc.KindBool:
		switch s {
		case "true":
			return []byte("1"), nil
		case "false":
			return []byte("0"), nil
		}
		return refuse("not a boolean")
	case cdc.KindInt:
		switch s {
		case "true":
			s = "1"
		case "false":
			s = "0"
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || !intFits(n, t.Width) {
			return refuse("not an integer in its range")
		}
		return strconv.AppendInt(nil, n, 10), nil
	case cdc.KindUint:
		switch s {
		case "true":
			s = "1"
		case "false":
			s = "0"
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || !uintFits(n, t.Width) {
			return refuse("not an unsigned integer in its range")
		}
		if t.Name == "year" {
			if n != 0 && (n < 1901 || n > 2155) {
				return refuse("a YEAR is 0000 or 1901 to 2155")
			}
			return fmt.Appendf(nil, "%04d", n), nil
		}
		return strconv.AppendUint(nil, n, 10), nil
	case cdc.KindDecimal:
		switch s {
		case "NaN", "Infinity", "-Infinity":
			return refuse("MySQL's DECIMAL has no NaN or infinity")
		}
		d, err := decimalText(s, t)
		if err != nil {
			return refuse("not a number the column holds without rounding (at most %d digits, %d after the point)", t.Precision, t.Scale)
		}
		return []byte(d), nil
	case cdc.KindFloat32, cdc.KindFloat64:
		size := 64
		if t.Kind == cdc.KindFloat32 {
			size = 32
		}
		f, err := strconv.ParseFloat(s, size)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return refuse("MySQL's FLOAT and DOUBLE hold finite numbers only")
		}
		return []byte(cdc.FormatFloat(f, size)), nil
	case cdc.KindBits:
		if s == "" || strings.Trim(s, "01") != "" {
			return refuse("not a string of bits")
		}
		trimmed := strings.TrimLeft(s, "0")
		if len(trimmed) > t.Width || len(trimmed) > 64 {
			return refuse("more than %d bits", t.Width)
		}
		var n uint64
		for _, c := range trimmed {
			n = n<<1 | uint64(c-'0')
		}
		return strconv.AppendUint(nil, n, 10), nil
	case cdc.KindEnum:
		for _, l := range t.Labels {
			if l == s {
				return []byte(s), nil
			}
		}
		return refuse("not one of its labels")
	case cdc.KindSet:
		if s == "" {
			return []byte{}, nil
		}
		var mask uint64
		for _, m := range strings.Split(s, ",") {
			i := -1
			for j, l := range t.Labels {
				if l == m {
					i = j
					break
				}
			}
			if i < 0 {
				return refuse("%q is not one of its labels", m)
			}
			mask |= 1 << uint(i)
		}
		var labels []string
		for i, l := range t.Labels {
			if mask&(1<<uint(i)) != 0 {
				labels = append(labels, l)
			}
		}
		return []byte(strings.Join(labels, ",")), nil
	case cdc.KindDate:
		if err := mysqlYear(s); err != nil {
			return refuse("%v", err)
		}
		if _, err := cdc.ParseDate(s); err != nil {
			return refuse("not a date")
		}
		return []byte(s), nil
	case cdc.KindTimestamp, cdc.KindTimestampTZ:
		if err := mysqlYear(s); err != nil {
			return refuse("%v", err)
		}
		text := s
		if t.Kind == cdc.KindTimestampTZ {
			var ok bool
			if text, ok = strings.CutSuffix(s, "Z"); !ok {
				return refuse("an instant ends in Z")
			}
		}
		if _, err := cdc.ParseTimestamp(text); err != nil {
			return refuse("not a timestamp")
		}
		if err := fractionFits(text, t.Precision); err != nil {
			return refuse("%v", err)
		}
		if strings.HasPrefix(t.Name, "timestamp") && (text < minTimestamp || text > maxTimestamp) {
			return refuse("a TIMESTAMP is %s to %s UTC", minTimestamp, maxTimestamp)
		}
		return []byte(text), nil
	case cdc.KindTime:
		h, _, _, _, err := cdc.ParseClock(strings.TrimPrefix(s, "-"))
		if err != nil {
			return refuse("not a time")
		}
		if h > 838 {
			return refuse("a TIME is -838:59:59.999999 to 838:59:59.999999")
		}
		if err := fractionFits(s, t.Precision); err != nil {
			return refuse("%v", err)
		}
		return []byte(s), nil
	case cdc.KindText, cdc.KindJSON:
		if !utf8.Valid(canonical) {
			return refuse("not UTF-8")
		}
		return append([]byte{}, canonical...), nil
	case cdc.KindBytes:
		return append([]byte{}, canonical...), nil
	case cdc.KindGeometry:
		srid, wkb, err := splitGeometry(s)
		if err != nil {
			return refuse("%v", err)
		}
		return append(binary.LittleEndian.AppendUint32(nil, srid), wkb...), nil
	case cdc.KindUUID:
		if !isUUID(s) {
			return refuse("not a UUID in lower-case hex")
		}
		return []byte(s), nil
	}
	return refuse("a MySQL column of kind %s takes no value from another engine", t.Kind)
}

// mysqlYear refuses a canonical date whose year MySQL has no date for.
func mysqlYear(s string) error {
	switch {
	case s == "infinity" || s == "-infinity":
		return errors.New("MySQL has no infinite date")
	case strings.HasPrefix(s, "-"):
		return errors.New("MySQL has no date before year 0 (1 BC)")
	case len(s) > 4 && s[4] != '-':
		return errors.New("MySQL has no year past 9999")
	}
	return nil
}

// fractionFits refuses a time whose fraction of a second has more digits than the
// column keeps (MySQL would round it).
func fractionFits(s string, precision int) error {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return nil
	}
	if n := len(s) - i - 1; n > precision {
		return fmt.Errorf("%d digits of fractional seconds, where the column keeps %d", n, precision)
	}
	return nil
}

// mysqlLatin1 is MySQL's latin1 for the bytes 0x80 to 0x9f (see schema.Latin1High).
var mysqlLatin1 = neutral.Latin1High

// decodeText converts a string of a column's character set to UTF-8, as the server's
// CONVERT(col USING utf8mb4) does: for the binary log's values, which are in the
// column's character set (the full load's cross-engine SELECT converts on the
// server). UTF-8 sets and ascii are checked and kept; latin1 is decoded; any other
// set is an error (read such a column through the server).
func decodeText(charset string, b []byte) ([]byte, error) {
	switch strings.ToLower(charset) {
	case "latin1":
		out := make([]byte, 0, len(b)+len(b)/8)
		for _, c := range b {
			switch {
			case c < 0x80:
				out = append(out, c)
			case c < 0xa0:
				out = utf8.AppendRune(out, mysqlLatin1[c-0x80])
			default:
				out = utf8.AppendRune(out, rune(c))
			}
		}
		return out, nil
	case "ascii":
		for _, c := range b {
			if c >= 0x80 {
				return nil, fmt.Errorf("%q is not ascii", truncate(string(b)))
			}
		}
		return b, nil
	}
	if utf8Charset(charset) {
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%q is not UTF-8", truncate(string(b)))
		}
		return b, nil
	}
	return nil, fmt.Errorf("strings of the character set %s are converted to UTF-8 on the server only", charset)
}

// splitGeometry reads a geometry's canonical text (cdc.KindGeometry): its SRID and
// its WKB.
func splitGeometry(s string) (uint32, []byte, error) {
	id, h, ok := strings.Cut(s, ":")
	srid, err := strconv.ParseUint(id, 10, 32)
	if !ok || err != nil {
		return 0, nil, errors.New("not a geometry's SRID:WKB")
	}
	wkb, err := hex.DecodeString(h)
	if err != nil || len(wkb) < 5 {
		return 0, nil, errors.New("not a geometry's SRID:WKB")
	}
	return uint32(srid), wkb, nil
}
