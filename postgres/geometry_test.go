package postgres

import (
	"strings"
	"testing"
)

// The canonical geometry (SRID:WKB) and PostGIS's hex EWKB, both ways; the examples
// are PostGIS's own output (SELECT 'SRID=4326;POINT(1 2)'::geometry).
func TestGeometryEWKB(t *testing.T) {
	for _, c := range []struct{ canonical, ewkb string }{
		{"4326:0101000000000000000000f03f0000000000000040", "0101000020e6100000000000000000f03f0000000000000040"},
		{"0:0101000000000000000000f03f0000000000000040", "0101000000000000000000f03f0000000000000040"},
		// a collection: the SRID at the top only
		{"3857:010700000001000000010100000000000000000000000000000000000000",
			"0107000020110f000001000000010100000000000000000000000000000000000000"},
	} {
		got, err := geometryToEWKB(c.canonical)
		if err != nil || string(got) != c.ewkb {
			t.Errorf("to EWKB %s: %s (%v), want %s", c.canonical, got, err, c.ewkb)
		}
		back, err := geometryFromEWKB(strings.ToUpper(c.ewkb))
		if err != nil || string(back) != c.canonical {
			t.Errorf("from EWKB %s: %s (%v), want %s", c.ewkb, back, err, c.canonical)
		}
	}
	// POINT Z, POINT M (EWKB flags), a big-endian one, and what is no geometry
	for _, bad := range []string{"01010000800000000000000000000000000000000000000000000000000000f03f",
		"0101000040000000000000f03f0000000000000040000000000000f03f", "00000000013ff00000000000004000000000000000", "zz", "01"} {
		if got, err := geometryFromEWKB(bad); err == nil {
			t.Errorf("from EWKB %s: %s, want an error", bad, got)
		}
	}
	for _, bad := range []string{"4326", "x:0101", "4326:01", "4326:zz", "-1:0101000000000000000000f03f0000000000000040"} {
		if got, err := geometryToEWKB(bad); err == nil {
			t.Errorf("to EWKB %s: %s, want an error", bad, got)
		}
	}
}
