package cdc

import (
	"math"
	"strconv"
	"testing"
	"time"
)

func TestFormatFloatKind(t *testing.T) {
	cases := []struct {
		f    float64
		bits int
		want string
	}{
		{0, 64, "0"}, {math.Copysign(0, -1), 64, "-0"}, {1.5, 64, "1.5"}, {100, 64, "100"},
		{0.0001, 64, "0.0001"}, {0.00001, 64, "1e-5"}, {1.5e-7, 64, "1.5e-7"},
		{1e21, 64, "1e+21"}, {123456789012345680000, 64, "123456789012345680000"},
		{math.MaxFloat64, 64, "1.7976931348623157e+308"}, {5e-324, 64, "5e-324"},
		{float64(float32(0.1)), 32, "0.1"}, {float64(float32(math.MaxFloat32)), 32, "3.4028235e+38"},
		{math.NaN(), 64, "NaN"}, {math.Inf(1), 32, "Infinity"}, {math.Inf(-1), 64, "-Infinity"},
		{-0.5, 64, "-0.5"}, {12.25, 64, "12.25"},
	}
	for _, c := range cases {
		got := FormatFloat(c.f, c.bits)
		if got != c.want {
			t.Errorf("FormatFloat(%v, %d) = %q, want %q", c.f, c.bits, got, c.want)
		}
		back, err := ParseFloat(got, c.bits)
		if err != nil || math.Float64bits(back) != math.Float64bits(c.f) && !math.IsNaN(c.f) {
			t.Errorf("ParseFloat(%q) = %v, %v: not the same bits as %v", got, back, err, c.f)
		}
	}
	// Every float32 bit pattern's shortest digits read back to it (a sample of them).
	for i := uint32(0); i < 1<<32-1<<20; i += 1<<20 + 7 {
		f := float64(math.Float32frombits(i))
		if math.IsNaN(f) {
			continue
		}
		s := FormatFloat(f, 32)
		back, err := strconv.ParseFloat(s, 32)
		if err != nil || math.Float32bits(float32(back)) != i {
			t.Fatalf("float32 %08x: %q reads back as %v, %v", i, s, back, err)
		}
	}
}

func TestDateKind(t *testing.T) {
	cases := map[string]time.Time{
		"2026-03-01":  time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"0001-01-01":  time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		"0000-12-31":  time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC), // 31 December 1 BC
		"-0043-03-15": time.Date(-43, 3, 15, 0, 0, 0, 0, time.UTC),
		"12345-06-07": time.Date(12345, 6, 7, 0, 0, 0, 0, time.UTC),
	}
	for s, d := range cases {
		if got := FormatDate(d); got != s {
			t.Errorf("FormatDate(%v) = %q, want %q", d, got, s)
		}
		if got, err := ParseDate(s); err != nil || !got.Equal(d) {
			t.Errorf("ParseDate(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"2026-02-30", "26-01-01", "2026-1-01", "2026-01-01 ", "+2026-01-01", ""} {
		if _, err := ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) took it", bad)
		}
	}
	ts := time.Date(-4713, 11, 24, 23, 59, 59, 500000000, time.UTC)
	if got := FormatInstant(ts); got != "-4713-11-24 23:59:59.5Z" {
		t.Errorf("FormatInstant = %q", got)
	}
	if got, err := ParseTimestamp("-4713-11-24 23:59:59.5Z"); err != nil || !got.Equal(ts) {
		t.Errorf("ParseTimestamp = %v, %v", got, err)
	}
}

func TestIntervalKind(t *testing.T) {
	cases := map[string]Interval{
		"PT0S":                        {},
		"P1Y2M3DT4H5M6.5S":            {14, 3, 4*3600e6 + 5*60e6 + 6.5e6},
		"P-1Y-2M3DT-4H-5M-6S":         {-14, 3, -(4*3600e6 + 5*60e6 + 6e6)},
		"PT-0.000001S":                {0, 0, -1},
		"P1M":                         {1, 0, 0},
		"P-30D":                       {0, -30, 0},
		"PT2562047788H54.775807S":     {0, 0, math.MaxInt64},
		"PT-2562047788H-54.775808S":   {0, 0, math.MinInt64},
		"P-178956970Y-8M":             {math.MinInt32, 0, 0},
		"P178956970Y7M2147483647DT1H": {math.MaxInt32, math.MaxInt32, 3600e6},
	}
	for s, iv := range cases {
		if got := iv.String(); got != s {
			t.Errorf("%+v.String() = %q, want %q", iv, got, s)
		}
		if got, err := ParseInterval(s); err != nil || got != iv {
			t.Errorf("ParseInterval(%q) = %+v, %v, want %+v", s, got, err, iv)
		}
	}
	for _, bad := range []string{"", "P", "PT", "1D", "P1H", "PT1D", "P1M1Y", "PT1.5H", "P--1D", "PT1.1234567S", "P1.5D"} {
		if _, err := ParseInterval(bad); err == nil {
			t.Errorf("ParseInterval(%q) took it", bad)
		}
	}
}

func TestArrayKind(t *testing.T) {
	elems := []any{"a", nil, []any{"<\"\\", "é"}, []any{}}
	b, err := FormatArray(elems)
	if want := `["a",null,["<\"\\","é"],[]]`; err != nil || string(b) != want {
		t.Fatalf("FormatArray = %s, %v, want %s", b, err, want)
	}
	back, err := ParseArray(b)
	if err != nil || len(back) != 4 || back[2].([]any)[0] != "<\"\\" {
		t.Errorf("ParseArray = %#v, %v", back, err)
	}
	if _, err := FormatArray([]any{"\xff"}); err == nil {
		t.Error("FormatArray took text that is not UTF-8")
	}
	for _, bad := range []string{`[1]`, `{"a":"b"}`, `["a",true]`, `[`} {
		if _, err := ParseArray([]byte(bad)); err == nil {
			t.Errorf("ParseArray(%s) took it", bad)
		}
	}
}

func TestKindNames(t *testing.T) {
	for k := KindOther; k <= KindArray; k++ {
		if k.String() == "" || k.String()[0] == 'k' {
			t.Errorf("kind %d has no name", k)
		}
	}
}
