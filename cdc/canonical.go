package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The helpers below write and read the canonical forms (see Kind) that need more
// than copying: every engine converts through them, so two engines cannot disagree
// on a form.

// FormatFloat writes f, a float of bitSize 32 or 64, in the canonical form of
// KindFloat32 or KindFloat64.
func FormatFloat(f float64, bitSize int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	// 'e' with -1 gives the shortest digits that read back to the same bits:
	// "-d.ddde±XX". Take them apart and lay them out by the exponent.
	e := strconv.FormatFloat(f, 'e', -1, bitSize)
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 21 {
		if len(digits) > 1 {
			digits = digits[:1] + "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return sign + digits + "e" + es + strconv.Itoa(exp)
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits))
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}

// ParseFloat reads a float of bitSize 32 or 64 in its canonical form (or any form
// strconv reads, and "Infinity" spelled as the canonical form spells it).
func ParseFloat(s string, bitSize int) (float64, error) {
	f, err := strconv.ParseFloat(s, bitSize)
	if err != nil {
		return 0, fmt.Errorf("float%d %q: %w", bitSize, s, err)
	}
	return f, nil
}

// FormatDate writes t's date (in t's location) in the canonical form of KindDate.
func FormatDate(t time.Time) string {
	y, m, d := t.Date()
	return formatYear(y) + fmt.Sprintf("-%02d-%02d", int(m), d)
}

// formatYear writes an astronomical year with at least 4 digits and "-" before a
// year before year 0 (1 BC).
func formatYear(y int) string {
	if y < 0 {
		return "-" + fmt.Sprintf("%04d", -y)
	}
	return fmt.Sprintf("%04d", y)
}

// FormatClock writes a time of day (or, for MySQL's TIME, a duration whose hours
// may pass 24) as "HH:MM:SS[.f]", micro the microseconds, the fraction without
// trailing zeros.
func FormatClock(hour, minute, second, micro int) string {
	s := fmt.Sprintf("%02d:%02d:%02d", hour, minute, second)
	if micro != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", micro), "0")
	}
	return s
}

// FormatTimestamp writes t (in t's location: UTC for KindTimestampTZ, whose "Z"
// the caller adds with FormatInstant) in the canonical form of KindTimestamp.
func FormatTimestamp(t time.Time) string {
	return FormatDate(t) + " " + FormatClock(t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000)
}

// FormatInstant writes t in the canonical form of KindTimestampTZ: in UTC, with "Z".
func FormatInstant(t time.Time) string {
	return FormatTimestamp(t.UTC()) + "Z"
}

// ParseDate reads the canonical form of a KindDate (not "infinity") as midnight UTC.
func ParseDate(s string) (time.Time, error) {
	t, rest, err := parseDate(s)
	if err == nil && rest != "" {
		err = errors.New("text after the date")
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: %w", s, err)
	}
	return t, nil
}

// ParseTimestamp reads the canonical form of a KindTimestamp (not "infinity"), or
// of a KindTimestampTZ when it ends in "Z", as a time in UTC.
func ParseTimestamp(s string) (time.Time, error) {
	t, err := parseTimestamp(strings.TrimSuffix(s, "Z"))
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t, nil
}

func parseTimestamp(s string) (time.Time, error) {
	d, rest, err := parseDate(s)
	if err != nil {
		return time.Time{}, err
	}
	clock, ok := strings.CutPrefix(rest, " ")
	if !ok {
		return time.Time{}, errors.New("no time after the date")
	}
	h, m, sec, micro, err := ParseClock(clock)
	if err != nil {
		return time.Time{}, err
	}
	if h > 23 {
		return time.Time{}, errors.New("hour out of range")
	}
	return d.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec)*time.Second + time.Duration(micro)*time.Microsecond), nil
}

// parseDate reads "[-]YYYY-MM-DD" at the start of s and returns what follows.
func parseDate(s string) (time.Time, string, error) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	ys, s, ok1 := strings.Cut(s, "-")
	if !ok1 || len(ys) < 4 || len(s) < 5 || s[2] != '-' {
		return time.Time{}, "", errors.New("not [-]YYYY-MM-DD")
	}
	y, err1 := atoiDigits(ys)
	m, err2 := atoiDigits(s[:2])
	d, err3 := atoiDigits(s[3:5])
	if err := errors.Join(err1, err2, err3); err != nil {
		return time.Time{}, "", err
	}
	if neg {
		y = -y
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d || int(t.Month()) != m {
		return time.Time{}, "", errors.New("no such day")
	}
	return t, s[5:], nil
}

// ParseClock reads "HH:MM:SS[.f]" (hours of two digits or more).
func ParseClock(s string) (hour, minute, second, micro int, err error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || len(parts[0]) < 2 || len(parts[1]) != 2 || len(parts[2]) < 2 {
		return 0, 0, 0, 0, fmt.Errorf("time %q: not HH:MM:SS[.ffffff]", s)
	}
	secText, frac, hasFrac := strings.Cut(parts[2], ".")
	if hasFrac && (frac == "" || len(frac) > 6) {
		return 0, 0, 0, 0, fmt.Errorf("time %q: 1 to 6 digits of fraction", s)
	}
	var errs [4]error
	hour, errs[0] = atoiDigits(parts[0])
	minute, errs[1] = atoiDigits(parts[1])
	second, errs[2] = atoiDigits(secText)
	if hasFrac {
		micro, errs[3] = atoiDigits(frac + strings.Repeat("0", 6-len(frac)))
	}
	if err := errors.Join(errs[:]...); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("time %q: %w", s, err)
	}
	if minute > 59 || second > 59 {
		return 0, 0, 0, 0, fmt.Errorf("time %q: out of range", s)
	}
	return hour, minute, second, micro, nil
}

// atoiDigits reads a non-negative decimal of digits only (no sign, no blank).
func atoiDigits(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.Atoi(s)
}

// Interval is a KindInterval's value: its three parts keep their own signs.
type Interval struct {
	Months int32
	Days   int32
	Micros int64
}

// String writes the interval in the canonical form of KindInterval.
func (iv Interval) String() string {
	if iv == (Interval{}) {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	part := func(n int64, unit byte) {
		if n != 0 {
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteByte(unit)
		}
	}
	part(int64(iv.Months/12), 'Y')
	part(int64(iv.Months%12), 'M')
	part(int64(iv.Days), 'D')
	if iv.Micros == 0 {
		return b.String()
	}
	b.WriteString("T")
	const hour, minute, second = 3600e6, 60e6, 1e6
	part(iv.Micros/hour, 'H')
	part(iv.Micros%hour/minute, 'M')
	if us := iv.Micros % minute; us != 0 {
		if us < 0 {
			b.WriteString("-")
		}
		u := uint64(us)
		if us < 0 {
			u = uint64(-us)
		}
		b.WriteString(strconv.FormatUint(u/second, 10))
		if f := u % second; f != 0 {
			b.WriteString(strings.TrimRight(fmt.Sprintf(".%06d", f), "0"))
		}
		b.WriteString("S")
	}
	return b.String()
}

// ParseInterval reads the canonical form of a KindInterval (not "infinity").
func ParseInterval(s string) (Interval, error) {
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return Interval{}, fmt.Errorf("interval %q: does not start with P", s)
	}
	datePart, timePart, hasTime := strings.Cut(rest, "T")
	if hasTime && timePart == "" {
		return Interval{}, fmt.Errorf("interval %q: nothing after T", s)
	}
	var months, days, micros int64
	err := eachPart(datePart, "YMD", func(n, frac int64, unit byte) {
		switch unit {
		case 'Y':
			months += n * 12
		case 'M':
			months += n
		case 'D':
			days += n
		}
	})
	if err == nil {
		err = eachPart(timePart, "HMS", func(n, frac int64, unit byte) {
			switch unit {
			case 'H':
				micros += n * 3600e6
			case 'M':
				micros += n * 60e6
			case 'S':
				micros += n*1e6 + frac
			}
		})
	}
	if err == nil && (months != int64(int32(months)) || days != int64(int32(days))) {
		err = errors.New("months or days out of range")
	}
	if err != nil {
		return Interval{}, fmt.Errorf("interval %q: %w", s, err)
	}
	return Interval{Months: int32(months), Days: int32(days), Micros: micros}, nil
}

// maxPart bounds a part of an interval: its microseconds fit in an int64 (hours
// have at most 2562047788 of them) and sums of parts cannot overflow.
const maxPart = 1 << 40

// eachPart calls f for each "[-]n[.f]U" of an ISO 8601 duration's half, in the
// order of units, with the seconds' fraction in microseconds (signed as n).
func eachPart(s, units string, f func(n, frac int64, unit byte)) error {
	for s != "" {
		i := strings.IndexAny(s, units)
		if i <= 0 {
			return fmt.Errorf("%q is not a number and one of the units %s in order", s, units)
		}
		neg := s[0] == '-'
		numText, fracText, hasFrac := strings.Cut(strings.TrimPrefix(s[:i], "-"), ".")
		n, err := atoiDigits(numText)
		if err != nil || n > maxPart {
			return fmt.Errorf("%q is not a number in range", s[:i])
		}
		var frac int
		if hasFrac {
			if s[i] != 'S' || fracText == "" || len(fracText) > 6 {
				return fmt.Errorf("%q: only seconds have a fraction, of 1 to 6 digits", s[:i+1])
			}
			if frac, err = atoiDigits((fracText + "00000")[:6]); err != nil {
				return fmt.Errorf("%q: %w", s[:i+1], err)
			}
		}
		if neg {
			n, frac = -n, -frac
		}
		f(int64(n), int64(frac), s[i])
		units = units[strings.IndexByte(units, s[i])+1:]
		s = s[i+1:]
	}
	return nil
}

// FormatArray writes an array in the canonical form of KindArray. Each element of
// elems is a string (an element's canonical text), nil (NULL), or []any (a
// dimension below).
func FormatArray(elems []any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<" stays "<": the text is not for a web page
	if err := checkArray(elems); err != nil {
		return nil, err
	}
	if err := enc.Encode(elems); err != nil {
		return nil, fmt.Errorf("array: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// checkArray refuses what the JSON encoder would change silently: text that is not
// UTF-8 (it would become U+FFFD) and elements of other types.
func checkArray(elems []any) error {
	for _, e := range elems {
		switch v := e.(type) {
		case nil:
		case string:
			if !utf8.ValidString(v) {
				return fmt.Errorf("array element %q is not UTF-8", v)
			}
		case []any:
			if err := checkArray(v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("array element of type %T", e)
		}
	}
	return nil
}

// ParseArray reads the canonical form of a KindArray: strings, nils and []any as
// FormatArray takes them.
func ParseArray(text []byte) ([]any, error) {
	var elems []any
	if err := json.Unmarshal(text, &elems); err != nil {
		return nil, fmt.Errorf("array %q: %w", text, err)
	}
	if err := checkParsed(elems); err != nil {
		return nil, fmt.Errorf("array %q: %w", text, err)
	}
	return elems, nil
}

func checkParsed(elems []any) error {
	for _, e := range elems {
		switch v := e.(type) {
		case nil, string:
		case []any:
			if err := checkParsed(v); err != nil {
				return err
			}
		default:
			return fmt.Errorf("element %v is not a string, null or an array", e)
		}
	}
	return nil
}

// NormalJSON writes a JSON text (RFC 8259) in one spelling per JSON value, for
// comparing documents that two engines spell differently: MySQL's JSON and
// PostgreSQL's jsonb reorder keys, drop duplicates and respell numbers each their
// own way, and the canonical form of KindJSON keeps the source's spelling. It is
// not the canonical form (that one travels as the source writes it): a validation
// applies it to both sides' canonical texts before comparing them. The spelling:
//
//   - No whitespace outside strings; true, false and null as they are.
//   - An object's members sorted by their keys' UTF-8 bytes (after unescaping). Of
//     members with the same key, the last one is kept, as jsonb and MySQL 8's JSON
//     keep it ({"a":1,"a":2} is {"a":2}).
//   - A string unescaped and escaped again minimally: \" and \\, the control
//     characters U+0008, U+0009, U+000A, U+000C and U+000D as \b, \t, \n, \f and
//     \r, the other ones below U+0020 as \u00xx in lower-case hex; every other
//     character as its UTF-8 bytes ("/", "é", "😀", U+2028 unescaped). A \uXXXX
//     escape of a surrogate must be a pair (high then low), which is the one
//     character it names; a lone surrogate, text that is not UTF-8 and a raw control
//     character in a string are errors.
//   - A number by its exact decimal value, never through a float: its digits
//     d1 d2 ... dn with no leading or trailing zeros and its decimal exponent X
//     (value = d1.d2...dn × 10^X) are laid out as KindFloat64's are: plain when
//     -4 <= X < 21 ("100", "0.0001", "1.5"), otherwise d1[.d2...dn]e±X ("1e+400",
//     "1.5e-7"). "1", "1.0", "1e0", "10E-1" and "0.1e1" are all "1"; zero of any
//     spelling ("-0", "0.0", "0e5") is "0", as jsonb's numeric has no negative zero.
//     An exponent beyond ±2^40 is an error.
//   - Nesting deeper than 10000 arrays and objects is an error.
func NormalJSON(text []byte) ([]byte, error) {
	p := jsonParser{s: text}
	p.space()
	v, err := p.value(0)
	if err == nil {
		p.space()
		if p.i < len(p.s) {
			err = p.errorf("text after the JSON value")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("JSON %s: %w", shortJSON(text), err)
	}
	var b bytes.Buffer
	v.write(&b)
	return b.Bytes(), nil
}

// shortJSON quotes a JSON text for a message, cut after 100 bytes.
func shortJSON(b []byte) string {
	if len(b) <= 100 {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(string(b[:100])), len(b))
}

// maxJSONDepth bounds the nesting NormalJSON reads (MySQL's JSON allows 100).
const maxJSONDepth = 10000

// jsonValue is a parsed JSON value: a literal (its normal text: a number, true,
// false, null or a string already written), an array or an object.
type jsonValue struct {
	literal []byte
	array   []jsonValue
	keys    []string // an object's keys, sorted, one each
	members map[string]jsonValue
	isArray bool
}

func (v jsonValue) write(b *bytes.Buffer) {
	switch {
	case v.isArray:
		b.WriteByte('[')
		for i, e := range v.array {
			if i > 0 {
				b.WriteByte(',')
			}
			e.write(b)
		}
		b.WriteByte(']')
	case v.members != nil:
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			v.members[k].write(b)
		}
		b.WriteByte('}')
	default:
		b.Write(v.literal)
	}
}

type jsonParser struct {
	s []byte
	i int
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

// space skips JSON's whitespace: space, tab, line feed, carriage return.
func (p *jsonParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (jsonValue, error) {
	if p.i >= len(p.s) {
		return jsonValue{}, p.errorf("a value expected, the text ends")
	}
	switch c := p.s[p.i]; {
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return jsonValue{}, p.errorf("nested deeper than %d", maxJSONDepth)
		}
		if c == '[' {
			return p.array(depth + 1)
		}
		return p.object(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return jsonValue{}, err
		}
		var b bytes.Buffer
		writeJSONString(&b, s)
		return jsonValue{literal: b.Bytes()}, nil
	case c == '-' || '0' <= c && c <= '9':
		n, err := p.number()
		return jsonValue{literal: n}, err
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(p.s[p.i:], []byte(lit)) {
			p.i += len(lit)
			return jsonValue{literal: []byte(lit)}, nil
		}
	}
	return jsonValue{}, p.errorf("%q does not start a JSON value", p.s[p.i])
}

func (p *jsonParser) array(depth int) (jsonValue, error) {
	p.i++ // [
	v := jsonValue{isArray: true, array: []jsonValue{}}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return v, nil
	}
	for {
		p.space()
		e, err := p.value(depth)
		if err != nil {
			return v, err
		}
		v.array = append(v.array, e)
		p.space()
		if p.i >= len(p.s) {
			return v, p.errorf("the array is not closed")
		}
		c := p.s[p.i]
		p.i++
		if c == ']' {
			return v, nil
		}
		if c != ',' {
			p.i--
			return v, p.errorf("%q between an array's elements", c)
		}
	}
}

func (p *jsonParser) object(depth int) (jsonValue, error) {
	p.i++ // {
	v := jsonValue{members: map[string]jsonValue{}}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return v, nil
	}
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return v, p.errorf("a key (a string) expected")
		}
		k, err := p.str()
		if err != nil {
			return v, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return v, p.errorf("':' expected after a key")
		}
		p.i++
		p.space()
		e, err := p.value(depth)
		if err != nil {
			return v, err
		}
		if _, dup := v.members[k]; !dup {
			v.keys = append(v.keys, k)
		}
		v.members[k] = e // the last of duplicate keys wins
		p.space()
		if p.i >= len(p.s) {
			return v, p.errorf("the object is not closed")
		}
		c := p.s[p.i]
		p.i++
		if c == '}' {
			slices.Sort(v.keys)
			return v, nil
		}
		if c != ',' {
			p.i--
			return v, p.errorf("%q between an object's members", c)
		}
	}
}

// str reads a string at p.i (its opening quote) and returns it unescaped.
func (p *jsonParser) str() (string, error) {
	p.i++ // "
	var b []byte
	for {
		if p.i >= len(p.s) {
			return "", p.errorf("the string is not closed")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(b), nil
		case c < 0x20:
			return "", p.errorf("a control character (0x%02x) in a string must be escaped", c)
		case c == '\\':
			r, err := p.escape()
			if err != nil {
				return "", err
			}
			b = utf8.AppendRune(b, r)
		case c < utf8.RuneSelf:
			b = append(b, c)
			p.i++
		default:
			r, n := utf8.DecodeRune(p.s[p.i:])
			if r == utf8.RuneError && n <= 1 {
				return "", p.errorf("not UTF-8")
			}
			b = append(b, p.s[p.i:p.i+n]...)
			p.i += n
		}
	}
}

// escape reads a backslash escape at p.i; \uXXXX of a high surrogate must be
// followed by \uXXXX of a low one.
func (p *jsonParser) escape() (rune, error) {
	if p.i+1 >= len(p.s) {
		return 0, p.errorf("the string is not closed")
	}
	c := p.s[p.i+1]
	if r, ok := map[byte]rune{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[c]; ok {
		p.i += 2
		return r, nil
	}
	if c != 'u' {
		return 0, p.errorf("\\%c is not an escape", c)
	}
	r, err := p.hex4()
	if err != nil {
		return 0, err
	}
	switch {
	case 0xdc00 <= r && r <= 0xdfff:
		return 0, p.errorf("a low surrogate \\u%04x without a high one before it", r)
	case 0xd800 <= r && r <= 0xdbff:
		if p.i+1 >= len(p.s) || p.s[p.i] != '\\' || p.s[p.i+1] != 'u' {
			return 0, p.errorf("a high surrogate \\u%04x without a low one after it", r)
		}
		lo, err := p.hex4()
		if err != nil {
			return 0, err
		}
		if lo < 0xdc00 || lo > 0xdfff {
			return 0, p.errorf("a high surrogate \\u%04x followed by \\u%04x, not a low one", r, lo)
		}
		return 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00), nil
	}
	return r, nil
}

// hex4 reads \uXXXX at p.i.
func (p *jsonParser) hex4() (rune, error) {
	if p.i+6 > len(p.s) {
		return 0, p.errorf("\\u needs 4 hex digits")
	}
	n, err := strconv.ParseUint(string(p.s[p.i+2:p.i+6]), 16, 16)
	if err != nil || strings.ContainsAny(string(p.s[p.i+2:p.i+6]), "+-_") {
		return 0, p.errorf("\\u needs 4 hex digits")
	}
	p.i += 6
	return rune(n), nil
}

// number reads a number at p.i and writes its value's normal spelling.
func (p *jsonParser) number() ([]byte, error) {
	start := p.i
	digits := func() string {
		j := p.i
		for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
			p.i++
		}
		return string(p.s[j:p.i])
	}
	neg := p.s[p.i] == '-'
	if neg {
		p.i++
	}
	whole := digits()
	if whole == "" || len(whole) > 1 && whole[0] == '0' {
		return nil, p.errorf("%q is not a JSON number", p.s[start:p.i])
	}
	var frac string
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if frac = digits(); frac == "" {
			return nil, p.errorf("%q is not a JSON number: no digit after the point", p.s[start:p.i])
		}
	}
	exp := int64(0)
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		expNeg := false
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			expNeg = p.s[p.i] == '-'
			p.i++
		}
		e := digits()
		if e == "" {
			return nil, p.errorf("%q is not a JSON number: no digit in the exponent", p.s[start:p.i])
		}
		e = strings.TrimLeft(e, "0")
		if len(e) > 13 {
			return nil, p.errorf("%q: the exponent is beyond ±2^40", p.s[start:p.i])
		}
		if e != "" {
			exp, _ = strconv.ParseInt(e, 10, 64)
		}
		if exp > 1<<40 {
			return nil, p.errorf("%q: the exponent is beyond ±2^40", p.s[start:p.i])
		}
		if expNeg {
			exp = -exp
		}
	}
	return normalNumber(neg, whole+frac, exp-int64(len(frac))), nil
}

// normalNumber writes ±D × 10^x (D the digits, leading zeros allowed) in the
// normal spelling of NormalJSON.
func normalNumber(neg bool, d string, x int64) []byte {
	d = strings.TrimLeft(d, "0")
	if d == "" {
		return []byte("0")
	}
	trimmed := strings.TrimRight(d, "0")
	x += int64(len(d) - len(trimmed))
	d = trimmed
	e := x + int64(len(d)) - 1 // value = d1.d2...dn × 10^e
	var b []byte
	if neg {
		b = append(b, '-')
	}
	switch {
	case e < -4 || e >= 21:
		b = append(b, d[0])
		if len(d) > 1 {
			b = append(append(b, '.'), d[1:]...)
		}
		b = append(b, 'e')
		if e >= 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, e, 10)
	case e < 0:
		b = append(append(append(b, "0."...), strings.Repeat("0", int(-e-1))...), d...)
	case int64(len(d)) <= e+1:
		b = append(append(b, d...), strings.Repeat("0", int(e+1)-len(d))...)
	default:
		b = append(append(append(b, d[:e+1]...), '.'), d[e+1:]...)
	}
	return b
}

// writeJSONString writes s as a JSON string, escaped minimally (see NormalJSON).
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20:
			fmt.Fprintf(b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
