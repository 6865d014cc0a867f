package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cdc"
	"github.com/cutover-dev/cutover/mytest"
)

var (
	tInt1   = cdc.Type{Kind: cdc.KindInt, Name: "tinyint", Width: 1}
	tInt3   = cdc.Type{Kind: cdc.KindInt, Name: "mediumint", Width: 3}
	tInt8   = cdc.Type{Kind: cdc.KindInt, Name: "bigint", Width: 8}
	tUint1  = cdc.Type{Kind: cdc.KindUint, Name: "tinyint unsigned", Width: 1}
	tUint8  = cdc.Type{Kind: cdc.KindUint, Name: "bigint unsigned", Width: 8}
	tYear   = cdc.Type{Kind: cdc.KindUint, Name: "year", Width: 2}
	tDec    = cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(65,30)", Precision: 65, Scale: 30}
	tDec52  = cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(5,2)", Precision: 5, Scale: 2}
	tDec100 = cdc.Type{Kind: cdc.KindDecimal, Name: "decimal(10,0)", Precision: 10}
	tFloat  = cdc.Type{Kind: cdc.KindFloat32, Name: "float"}
	tDouble = cdc.Type{Kind: cdc.KindFloat64, Name: "double"}
	tBit1   = cdc.Type{Kind: cdc.KindBits, Name: "bit(1)", Width: 1, Fixed: true}
	tBit5   = cdc.Type{Kind: cdc.KindBits, Name: "bit(5)", Width: 5, Fixed: true}
	tBit64  = cdc.Type{Kind: cdc.KindBits, Name: "bit(64)", Width: 64, Fixed: true}
	tEnum   = cdc.Type{Kind: cdc.KindEnum, Name: "enum('x','y','')", Labels: []string{"x", "y", ""}}
	tSet3   = cdc.Type{Kind: cdc.KindSet, Name: "set('a','b','c')", Labels: []string{"a", "b", "c"}}
	tSet64  = cdc.Type{Kind: cdc.KindSet, Name: "set(64)", Labels: set64Labels()}
	tDate   = cdc.Type{Kind: cdc.KindDate, Name: "date"}
	tDT6    = cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime(6)", Precision: 6}
	tDT0    = cdc.Type{Kind: cdc.KindTimestamp, Name: "datetime"}
	tTS6    = cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp(6)", Precision: 6}
	tTime6  = cdc.Type{Kind: cdc.KindTime, Name: "time(6)", Precision: 6}
	tTime0  = cdc.Type{Kind: cdc.KindTime, Name: "time"}
	tText   = cdc.Type{Kind: cdc.KindText, Name: "varchar(20)", Width: 20}
	tBytes  = cdc.Type{Kind: cdc.KindBytes, Name: "varbinary(20)", Width: 20}
	tJSON   = cdc.Type{Kind: cdc.KindJSON, Name: "json"}
	tUUID   = cdc.Type{Kind: cdc.KindUUID, Name: "uuid"}
	tInet   = cdc.Type{Kind: cdc.KindOther, Name: "inet6"}
)

func set64Labels() []string {
	l := make([]string, 64)
	for i := range l {
		l[i] = fmt.Sprintf("m%d", i)
	}
	return l
}

var (
	decMax  = strings.Repeat("9", 35) + "." + strings.Repeat("9", 30)
	dec1e30 = "0." + strings.Repeat("0", 29) + "1"
)

func TestToCanonical(t *testing.T) {
	cases := []struct {
		typ       cdc.Type
		in, want  string
		err       error // errZeroDate, errEnumError, or errAny
		wantError bool
	}{
		{typ: tInt1, in: "-128", want: "-128"},
		{typ: tInt1, in: "127", want: "127"},
		{typ: tInt1, in: "128", wantError: true},
		{typ: tInt3, in: "-8388608", want: "-8388608"},
		{typ: tInt8, in: "-9223372036854775808", want: "-9223372036854775808"},
		{typ: tInt8, in: "9223372036854775807", want: "9223372036854775807"},
		{typ: tInt8, in: "0", want: "0"},
		{typ: tUint1, in: "255", want: "255"},
		{typ: tUint1, in: "256", wantError: true},
		{typ: tUint8, in: "18446744073709551615", want: "18446744073709551615"},
		{typ: tUint8, in: "-1", wantError: true},
		{typ: tYear, in: "0", want: "0"},
		{typ: tYear, in: "1901", want: "1901"},
		{typ: tYear, in: "2155", want: "2155"},
		{typ: tDec, in: "-" + decMax, want: "-" + decMax},
		{typ: tDec, in: decMax, want: decMax},
		{typ: tDec, in: dec1e30, want: dec1e30},
		{typ: tDec, in: "-" + dec1e30, want: "-" + dec1e30},
		{typ: tDec, in: "0." + strings.Repeat("0", 30), want: "0." + strings.Repeat("0", 30)},
		{typ: tDec, in: "-0." + strings.Repeat("0", 30), want: "0." + strings.Repeat("0", 30)},
		{typ: tDec52, in: "001.50", want: "1.50"},
		{typ: tDec52, in: ".5", want: "0.50"},
		{typ: tDec52, in: "-0.00", want: "0.00"},
		{typ: tDec52, in: "1.505", wantError: true},
		{typ: tDec52, in: "1000.00", wantError: true},
		{typ: tDec52, in: "1e3", wantError: true},
		{typ: tDec100, in: "-9999999999", want: "-9999999999"},
		{typ: tFloat, in: "0.10000000149011612", want: "0.1"},
		{typ: tFloat, in: "-0", want: "-0"},
		{typ: tFloat, in: "0", want: "0"},
		{typ: tFloat, in: "3.4028234663852886e38", want: "3.4028235e+38"},
		{typ: tFloat, in: "-3.4028234663852886e38", want: "-3.4028235e+38"},
		{typ: tFloat, in: "1.401298464324817e-45", want: "1e-45"},          // the smallest denormal
		{typ: tFloat, in: "1.1754942106924411e-38", want: "1.1754942e-38"}, // the largest denormal
		{typ: tFloat, in: "1.1754943508222875e-38", want: "1.1754944e-38"}, // the smallest normal
		{typ: tFloat, in: "16777216", want: "16777216"},
		{typ: tFloat, in: "0.1", wantError: true}, // not a float32's value
		{typ: tDouble, in: "0.1", want: "0.1"},
		{typ: tDouble, in: "-0", want: "-0"},
		{typ: tDouble, in: "1.7976931348623157e308", want: "1.7976931348623157e+308"},
		{typ: tDouble, in: "-1.7976931348623157e308", want: "-1.7976931348623157e+308"},
		{typ: tDouble, in: "5e-324", want: "5e-324"},
		{typ: tDouble, in: "2.2250738585072014e-308", want: "2.2250738585072014e-308"},
		{typ: tDouble, in: "1e21", want: "1e+21"},
		{typ: tDouble, in: "123456789012345680000", want: "123456789012345680000"},
		{typ: tDouble, in: "0.0001", want: "0.0001"},
		{typ: tDouble, in: "1.5e-7", want: "1.5e-7"},                    // cdc.FormatFloat's exponent has no leading zero
		{typ: tSet64, in: "-1", want: strings.Join(set64Labels(), ",")}, // MariaDB's `set + 0` of a SET of 64 is signed
		{typ: tBit64, in: "-1", want: strings.Repeat("1", 64)},
		{typ: tDouble, in: "1.50000", want: "1.5"}, // a DOUBLE(M,D)'s text
		{typ: tDouble, in: "nan", wantError: true},
		{typ: tBit1, in: "0", want: "0"},
		{typ: tBit1, in: "1", want: "1"},
		{typ: tBit1, in: "2", wantError: true},
		{typ: tBit5, in: "5", want: "00101"},
		{typ: tBit64, in: "18446744073709551615", want: strings.Repeat("1", 64)},
		{typ: tBit64, in: "0", want: strings.Repeat("0", 64)},
		{typ: tEnum, in: "1", want: "x"},
		{typ: tEnum, in: "3", want: ""},
		{typ: tEnum, in: "0", err: errEnumError},
		{typ: tEnum, in: "4", wantError: true},
		{typ: tSet3, in: "0", want: ""},
		{typ: tSet3, in: "5", want: "a,c"},
		{typ: tSet3, in: "7", want: "a,b,c"},
		{typ: tSet3, in: "8", wantError: true},
		{typ: tSet64, in: "18446744073709551615", want: strings.Join(set64Labels(), ",")},
		{typ: tSet64, in: "9223372036854775808", want: "m63"},
		{typ: tDate, in: "1000-01-01", want: "1000-01-01"},
		{typ: tDate, in: "9999-12-31", want: "9999-12-31"},
		{typ: tDate, in: "0000-03-01", want: "0000-03-01"},
		{typ: tDate, in: "0044-02-29", want: "0044-02-29"},
		{typ: tDate, in: "0000-00-00", err: errZeroDate},
		{typ: tDate, in: "2020-00-15", err: errZeroDate},
		{typ: tDate, in: "2020-05-00", err: errZeroDate},
		{typ: tDate, in: "2021-02-29", err: errZeroDate},
		{typ: tDate, in: "2021-02-29x", err: errZeroDate},
		{typ: tDate, in: "2021-02-28 00:00:00", wantError: true},
		{typ: tDT6, in: "1000-01-01 00:00:00.000000", want: "1000-01-01 00:00:00"},
		{typ: tDT6, in: "9999-12-31 23:59:59.999999", want: "9999-12-31 23:59:59.999999"},
		{typ: tDT6, in: "2026-03-01 12:00:00.500000", want: "2026-03-01 12:00:00.5"},
		{typ: tDT0, in: "2026-03-01 12:00:00", want: "2026-03-01 12:00:00"},
		{typ: tDT0, in: "0000-00-00 00:00:00", err: errZeroDate},
		{typ: tDT6, in: "2020-00-15 10:00:00.000000", err: errZeroDate},
		{typ: tTS6, in: "1970-01-01 00:00:01.000000", want: "1970-01-01 00:00:01Z"},
		{typ: tTS6, in: "2038-01-19 03:14:07.999999", want: "2038-01-19 03:14:07.999999Z"},
		{typ: tTS6, in: "0000-00-00 00:00:00.000000", err: errZeroDate},
		{typ: tTime6, in: "-838:59:59.000000", want: "-838:59:59"},
		{typ: tTime6, in: "838:59:59.999999", want: "838:59:59.999999"},
		{typ: tTime6, in: "-838:59:59.999999", want: "-838:59:59.999999"},
		{typ: tTime6, in: "00:00:00.000000", want: "00:00:00"},
		{typ: tTime6, in: "-00:00:00.500000", want: "-00:00:00.5"},
		{typ: tTime6, in: "-00:00:00", want: "00:00:00"},
		{typ: tTime0, in: "-100:00:00", want: "-100:00:00"},
		{typ: tTime0, in: "12:34:56", want: "12:34:56"},
		{typ: tTime0, in: "839:00:00", wantError: true},
		{typ: tText, in: "héllo\x00 ", want: "héllo\x00 "},
		{typ: tText, in: "", want: ""},
		{typ: tText, in: "\xe9", wantError: true},
		{typ: tBytes, in: "\x00\xff", want: "\x00\xff"},
		{typ: tJSON, in: `{"b": 1, "a": [1.0]}`, want: `{"b": 1, "a": [1.0]}`},
		{typ: tUUID, in: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", want: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{typ: tUUID, in: "a0eebc999c0b4ef8bb6d6bb9bd380a11", wantError: true},
		{typ: tInet, in: "::1", wantError: true},
	}
	for _, c := range cases {
		got, err := toCanonical(c.typ, []byte(c.in))
		switch {
		case c.err != nil:
			if !errors.Is(err, c.err) {
				t.Errorf("toCanonical(%s, %q) = %q, %v; want the error %v", c.typ.Name, c.in, got, err, c.err)
			}
		case c.wantError:
			if err == nil {
				t.Errorf("toCanonical(%s, %q) = %q; want an error", c.typ.Name, c.in, got)
			}
		case err != nil || string(got) != c.want:
			t.Errorf("toCanonical(%s, %q) = %q, %v; want %q", c.typ.Name, c.in, got, err, c.want)
		case got == nil:
			t.Errorf("toCanonical(%s, %q) = nil, which reads as NULL", c.typ.Name, c.in)
		}
	}
}

func TestFromCanonical(t *testing.T) {
	tTS0 := cdc.Type{Kind: cdc.KindTimestampTZ, Name: "timestamp"}
	cases := []struct {
		typ      cdc.Type
		in, want string
		refused  string // a part of the error; "" for none
	}{
		{typ: tInt1, in: "-128", want: "-128"},
		{typ: tInt1, in: "-129", refused: "range"},
		{typ: tInt1, in: "true", want: "1"},
		{typ: tInt1, in: "false", want: "0"},
		{typ: tInt8, in: "-9223372036854775808", want: "-9223372036854775808"},
		{typ: tUint8, in: "18446744073709551615", want: "18446744073709551615"},
		{typ: tUint8, in: "18446744073709551616", refused: "range"},
		{typ: tUint8, in: "-1", refused: "range"},
		{typ: tYear, in: "0", want: "0000"},
		{typ: tYear, in: "1901", want: "1901"},
		{typ: tYear, in: "2155", want: "2155"},
		{typ: tYear, in: "1900", refused: "1901 to 2155"},
		{typ: tYear, in: "69", refused: "1901 to 2155"},
		{typ: tDec, in: decMax, want: decMax},
		{typ: tDec, in: "-" + dec1e30, want: "-" + dec1e30},
		{typ: tDec52, in: "1.5", want: "1.50"},
		{typ: tDec52, in: "999.99", want: "999.99"},
		{typ: tDec52, in: "1000", refused: "without rounding"},
		{typ: tDec52, in: "1.505", refused: "without rounding"},
		{typ: tDec52, in: "NaN", refused: "no NaN"},
		{typ: tDec52, in: "Infinity", refused: "no NaN or infinity"},
		{typ: tFloat, in: "0.1", want: "0.1"},
		{typ: tFloat, in: "-0", want: "-0"},
		{typ: tFloat, in: "3.4028235e+38", want: "3.4028235e+38"},
		{typ: tFloat, in: "1e-45", want: "1e-45"},
		{typ: tFloat, in: "NaN", refused: "finite"},
		{typ: tDouble, in: "-Infinity", refused: "finite"},
		{typ: tDouble, in: "1.7976931348623157e+308", want: "1.7976931348623157e+308"},
		{typ: tDouble, in: "5e-324", want: "5e-324"},
		{typ: tDouble, in: "-0", want: "-0"},
		{typ: tBit1, in: "1", want: "1"},
		{typ: tBit5, in: "00101", want: "5"},
		{typ: tBit5, in: "100101", refused: "more than 5 bits"},
		{typ: tBit64, in: strings.Repeat("1", 64), want: "18446744073709551615"},
		{typ: tBit5, in: "12", refused: "bits"},
		{typ: tEnum, in: "y", want: "y"},
		{typ: tEnum, in: "", want: ""},
		{typ: tEnum, in: "z", refused: "labels"},
		{typ: tSet3, in: "", want: ""},
		{typ: tSet3, in: "c,a", want: "a,c"},
		{typ: tSet3, in: "a,d", refused: `"d" is not one of its labels`},
		{typ: tSet64, in: strings.Join(set64Labels(), ","), want: strings.Join(set64Labels(), ",")},
		{typ: tDate, in: "1000-01-01", want: "1000-01-01"},
		{typ: tDate, in: "0000-02-29", want: "0000-02-29"},
		{typ: tDate, in: "9999-12-31", want: "9999-12-31"},
		{typ: tDate, in: "infinity", refused: "infinite"},
		{typ: tDate, in: "-infinity", refused: "infinite"},
		{typ: tDate, in: "-0043-03-15", refused: "before year 0"},
		{typ: tDate, in: "10000-01-01", refused: "past 9999"},
		{typ: tDate, in: "2021-02-29", refused: "not a date"},
		{typ: tDT6, in: "9999-12-31 23:59:59.999999", want: "9999-12-31 23:59:59.999999"},
		{typ: tDT0, in: "2026-03-01 12:00:00.5", refused: "fractional seconds"},
		{typ: tDT0, in: "infinity", refused: "infinite"},
		{typ: tTS6, in: "2026-03-01 11:00:00.25Z", want: "2026-03-01 11:00:00.25"},
		{typ: tTS6, in: "2026-03-01 11:00:00", refused: "ends in Z"},
		{typ: tTS0, in: "1970-01-01 00:00:01Z", want: "1970-01-01 00:00:01"},
		{typ: tTS6, in: "2038-01-19 03:14:07.999999Z", want: "2038-01-19 03:14:07.999999"},
		{typ: tTS0, in: "1970-01-01 00:00:00Z", refused: "TIMESTAMP is"},
		{typ: tTS0, in: "2038-01-19 03:14:08Z", refused: "TIMESTAMP is"},
		{typ: tTime6, in: "-838:59:59", want: "-838:59:59"},
		{typ: tTime6, in: "838:59:59.999999", want: "838:59:59.999999"},
		{typ: tTime6, in: "24:00:00", want: "24:00:00"},
		{typ: tTime6, in: "839:00:00", refused: "838:59:59"},
		{typ: tTime0, in: "12:00:00.5", refused: "fractional seconds"},
		{typ: tText, in: "héllo", want: "héllo"},
		{typ: tText, in: "\xe9", refused: "UTF-8"},
		{typ: tBytes, in: "\x00\xff", want: "\x00\xff"},
		{typ: tJSON, in: `{"a": 1}`, want: `{"a": 1}`},
		{typ: tUUID, in: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", want: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{typ: tUUID, in: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", refused: "UUID"},
		{typ: tInet, in: "::1", refused: "kind other"},
	}
	for _, c := range cases {
		got, err := fromCanonical(c.typ, []byte(c.in))
		if c.refused != "" {
			if err == nil || !strings.Contains(err.Error(), c.refused) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.in)) {
				t.Errorf("fromCanonical(%s, %q) = %q, %v; want an error naming the value and saying %q", c.typ.Name, c.in, got, err, c.refused)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("fromCanonical(%s, %q) = %q, %v; want %q", c.typ.Name, c.in, got, err, c.want)
		}
	}
}

// TestCanonicalRoundTrip: a canonical value written for MySQL and read back as
// MySQL's SELECT gives it is the same canonical value.
func TestCanonicalRoundTrip(t *testing.T) {
	for _, c := range []struct {
		typ cdc.Type
		v   string
	}{
		{tInt8, "-9223372036854775808"}, {tUint8, "18446744073709551615"}, {tDec, decMax}, {tDec52, "-1.50"},
		{tDouble, "-0"}, {tDouble, "1e+21"}, {tBit5, "00101"}, {tDate, "1000-01-01"}, {tDT6, "9999-12-31 23:59:59.999999"},
		{tTS6, "2038-01-19 03:14:07.999999Z"}, {tTime6, "-838:59:59"}, {tText, "x"}, {tUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
	} {
		mysqlText, err := fromCanonical(c.typ, []byte(c.v))
		if err != nil {
			t.Fatal(err)
		}
		back, err := toCanonical(c.typ, mysqlText)
		if err != nil || string(back) != c.v {
			t.Errorf("%s %q: MySQL's %q reads back as %q, %v", c.typ.Name, c.v, mysqlText, back, err)
		}
	}
}

func TestCrossSelectExpr(t *testing.T) {
	for _, c := range []struct {
		typ     cdc.Type
		charset string
		want    string
	}{
		{tFloat, "", "`c` * 1e0"},
		{tDouble, "", "`c`"},
		{tBit5, "", "`c` + 0"},
		{tEnum, "latin1", "`c` + 0"},
		{tSet3, "utf8mb4", "`c` + 0"},
		{tYear, "", "`c` + 0"},
		{tUint8, "", "`c`"},
		{tText, "utf8mb4", "`c`"},
		{tText, "utf8mb3", "`c`"},
		{tText, "latin1", "CONVERT(`c` USING utf8mb4)"},
		{tText, "ucs2", "CONVERT(`c` USING utf8mb4)"},
		{tJSON, "latin1", "CONVERT(`c` USING utf8mb4)"},
		{tBytes, "binary", "`c`"},
		{tUUID, "", "`c`"},
		{tInet, "", "`c`"},
		{tTS6, "", "`c`"},
	} {
		if got := crossSelectExpr("`c`", c.typ, c.charset); got != c.want {
			t.Errorf("crossSelectExpr(%s, %s) = %q, want %q", c.typ.Name, c.charset, got, c.want)
		}
	}
}

// TestCanonicalFromServer inserts edge values into MariaDB, reads them as the
// cross-engine load does (crossSelectExpr, time_zone '+00:00'), and compares
// toCanonical's texts with the canonical forms written by hand.
func TestCanonicalFromServer(t *testing.T) {
	d := mytest.NewDB(t, mytest.Source(t))
	set64 := make([]string, 64)
	for i := range set64 {
		set64[i] = fmt.Sprintf("'m%d'", i)
	}
	type col struct {
		def    string // the column's definition
		values []string
		want   []string // canonical; "zero" for errZeroDate, "enum0" for errEnumError
	}
	cols := []col{
		{"TINYINT", []string{"-128", "127"}, []string{"-128", "127"}},
		{"TINYINT(1)", []string{"1", "0"}, []string{"1", "0"}},
		{"MEDIUMINT UNSIGNED", []string{"16777215", "0"}, []string{"16777215", "0"}},
		{"BIGINT", []string{"-9223372036854775808", "9223372036854775807"}, []string{"-9223372036854775808", "9223372036854775807"}},
		{"BIGINT UNSIGNED", []string{"18446744073709551615", "0"}, []string{"18446744073709551615", "0"}},
		{"YEAR", []string{"0", "2155"}, []string{"0", "2155"}},
		{"DECIMAL(65,30)", []string{"-" + decMax, dec1e30}, []string{"-" + decMax, dec1e30}},
		{"DECIMAL(5,2)", []string{"-0.001", "1.5"}, []string{"0.00", "1.50"}},
		{"DECIMAL(10,0) UNSIGNED", []string{"9999999999", "0"}, []string{"9999999999", "0"}},
		{"FLOAT", []string{"0.1", "-0e0"}, []string{"0.1", "-0"}},
		{"FLOAT ", []string{"3.4028234663852886e38", "1.401298464324817e-45"}, []string{"3.4028235e+38", "1e-45"}},
		{"FLOAT(7,3)", []string{"1234.5", "-0.001"}, []string{"1234.5", "-0.001"}},
		{"DOUBLE", []string{"-0e0", "1.7976931348623157e308"}, []string{"-0", "1.7976931348623157e+308"}},
		{"DOUBLE ", []string{"4.9406564584124654e-324", "0.1"}, []string{"5e-324", "0.1"}},
		{"DOUBLE ", []string{"1e21", "123456789012345678901"}, []string{"1e+21", "123456789012345680000"}},
		{"BIT(1)", []string{"b'1'", "b'0'"}, []string{"1", "0"}},
		{"BIT(64)", []string{"b'" + strings.Repeat("1", 64) + "'", "b'101'"}, []string{strings.Repeat("1", 64), strings.Repeat("0", 61) + "101"}},
		{"ENUM('x','y','')", []string{"'y'", "''"}, []string{"y", ""}},
		{"ENUM('x','y') ", []string{"'x'", "'z'"}, []string{"x", "enum0"}},
		{"SET('a','b','c')", []string{"'c,a'", "''"}, []string{"a,c", ""}},
		{"SET(" + strings.Join(set64, ",") + ")", []string{"18446744073709551615", "'m63'"}, []string{strings.Join(set64Labels(), ","), "m63"}},
		{"DATE", []string{"'1000-01-01'", "'9999-12-31'"}, []string{"1000-01-01", "9999-12-31"}},
		{"DATE ", []string{"'0000-00-00'", "'2020-00-15'"}, []string{"zero", "zero"}},
		{"DATE  ", []string{"'0000-03-01'", "'2021-02-30'"}, []string{"0000-03-01", "zero"}},
		{"DATETIME(6)", []string{"'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'"}, []string{"1000-01-01 00:00:00", "9999-12-31 23:59:59.999999"}},
		{"DATETIME", []string{"'0000-00-00 00:00:00'", "'2026-03-01 12:00:00'"}, []string{"zero", "2026-03-01 12:00:00"}},
		{"TIMESTAMP(6) NULL", []string{"'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'"}, []string{"1970-01-01 00:00:01Z", "2038-01-19 03:14:07.999999Z"}},
		{"TIMESTAMP(3) NULL", []string{"'2026-03-01 12:00:00.5'", "'0000-00-00 00:00:00'"}, []string{"2026-03-01 12:00:00.5Z", "zero"}},
		{"TIME(6)", []string{"'-838:59:59.999999'", "'838:59:59.999999'"}, []string{"-838:59:59.999999", "838:59:59.999999"}},
		{"TIME", []string{"'-838:59:59'", "'-100:00:00'"}, []string{"-838:59:59", "-100:00:00"}},
		{"TIME(1)", []string{"'00:00:00'", "'-00:00:00.5'"}, []string{"00:00:00", "-00:00:00.5"}},
		{"VARCHAR(20)", []string{"'héllo '", "''"}, []string{"héllo ", ""}},
		{"CHAR(5)", []string{"'ab  '", "'€'"}, []string{"ab", "€"}},
		{"VARCHAR(20) CHARACTER SET latin1", []string{"'é€ŸÿÀ'", "'a\\tb'"}, []string{"é€ŸÿÀ", "a\tb"}},
		{"TEXT CHARACTER SET ascii", []string{"'plain'", "'x'"}, []string{"plain", "x"}},
		{"VARBINARY(4)", []string{"x'00ff'", "''"}, []string{"\x00\xff", ""}},
		{"BINARY(3)", []string{"x'01'", "'abc'"}, []string{"\x01\x00\x00", "abc"}},
		{"JSON", []string{`'{"b": 1, "a": [1.0]}'`, "'null'"}, []string{`{"b": 1, "a": [1.0]}`, "null"}},
		{"UUID", []string{"'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", "'00000000-0000-0000-0000-000000000000'"}, []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000"}},
	}
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = fmt.Sprintf("c%d %s", i, c.def)
	}
	d.Exec(t, "CREATE TABLE v (id int PRIMARY KEY, "+strings.Join(defs, ", ")+")")
	for row := 0; row < 2; row++ {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = c.values[row]
		}
		d.Exec(t, fmt.Sprintf("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; SET SESSION time_zone = '+00:00'; INSERT INTO v VALUES (%d, %s)", row, strings.Join(vals, ", ")))
	}
	ctx := context.Background()
	pool := d.Open(t)
	conn, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	sch, err := readTables(ctx, conn, d.Name, []tableName{{d.Name, "v"}})
	if err != nil {
		t.Fatal(err)
	}
	table := sch.Tables[0]
	reads := make([]string, len(cols))
	for i := range cols {
		c := table.Columns[i+1]
		reads[i] = crossSelectExpr(quote(c.Name), c.Type, c.Charset)
	}
	rows, err := conn.QueryContext(ctx, "SELECT "+strings.Join(reads, ", ")+" FROM v ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	checked := 0
	for row := 0; rows.Next(); row++ {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, c := range cols {
			typ := table.Columns[i+1].Type
			got, err := toCanonical(typ, vals[i])
			want := c.want[row]
			checked++
			switch want {
			case "zero":
				if !errors.Is(err, errZeroDate) {
					t.Errorf("%s, %s (read %q): %q, %v; want errZeroDate", c.def, c.values[row], vals[i], got, err)
				}
			case "enum0":
				if !errors.Is(err, errEnumError) {
					t.Errorf("%s, %s (read %q): %q, %v; want errEnumError", c.def, c.values[row], vals[i], got, err)
				}
			default:
				if err != nil || string(got) != want {
					t.Errorf("%s (%s), %s (read %q): %q, %v; want %q", c.def, typ.Name, c.values[row], vals[i], got, err, want)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if checked != 2*len(cols) {
		t.Fatalf("checked %d values, want %d", checked, 2*len(cols))
	}
}

// TestDecodeLatin1 compares decodeText with the server's CONVERT for every byte
// of latin1 (the binary log's values are in the column's character set).
func TestDecodeLatin1(t *testing.T) {
	d := mytest.NewDB(t, mytest.Source(t))
	pool := d.Open(t)
	ctx := context.Background()
	all := make([]byte, 255)
	for i := range all {
		all[i] = byte(i + 1)
	}
	var server []byte
	if err := pool.QueryRowContext(ctx, "SELECT CONVERT(CONVERT(UNHEX(?) USING latin1) USING utf8mb4)", fmt.Sprintf("%X", all)).Scan(&server); err != nil {
		t.Fatal(err)
	}
	got, err := decodeText("latin1", all)
	if err != nil || string(got) != string(server) {
		t.Fatalf("decodeText(latin1) = %q, %v\nthe server's: %q", got, err, server)
	}
	if _, err := decodeText("utf8mb4", []byte("\xff")); err == nil {
		t.Error("decodeText(utf8mb4) takes a byte that is not UTF-8")
	}
	if _, err := decodeText("ascii", []byte("\x80")); err == nil {
		t.Error("decodeText(ascii) takes a byte that is not ascii")
	}
	if _, err := decodeText("sjis", []byte("x")); err == nil {
		t.Error("decodeText(sjis) converts")
	}
}
