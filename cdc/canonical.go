package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
