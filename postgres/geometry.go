package postgres

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PostGIS's geometry in text is the hex of its extended WKB (EWKB): the OGC WKB with
// flags in the type's high bits, and the SRID after the type when its flag is set.
// The canonical form (cdc.KindGeometry) is "SRID:WKB", the WKB little-endian and
// two-dimensional: the conversions move the SRID between the two places, at the top
// geometry only (PostGIS writes no SRID in the parts of a collection).
const (
	ewkbSRID = 0x20000000
	ewkbM    = 0x40000000
	ewkbZ    = 0x80000000
)

// geometryToEWKB writes a canonical geometry as PostGIS's input: the hex EWKB, with
// its SRID when it is not 0.
func geometryToEWKB(s string) ([]byte, error) {
	id, h, ok := strings.Cut(s, ":")
	srid, err := strconv.ParseUint(id, 10, 32)
	wkb, herr := hex.DecodeString(h)
	if !ok || err != nil || herr != nil || len(wkb) < 5 || wkb[0] > 1 {
		return nil, fmt.Errorf("%.60q is not a geometry's SRID:WKB", s)
	}
	if srid == 0 {
		return []byte(strings.ToLower(h)), nil
	}
	order := byteOrder(wkb[0])
	out := make([]byte, 0, len(wkb)+4)
	out = append(out, wkb[0])
	out = order.AppendUint32(out, order.Uint32(wkb[1:5])|ewkbSRID)
	out = order.AppendUint32(out, uint32(srid))
	out = append(out, wkb[5:]...)
	return []byte(hex.EncodeToString(out)), nil
}

// geometryFromEWKB reads PostGIS's output (the hex EWKB) as a canonical geometry. A
// geometry with a third or fourth dimension has no MySQL value: it is refused.
func geometryFromEWKB(s string) ([]byte, error) {
	ewkb, err := hex.DecodeString(s)
	if err != nil || len(ewkb) < 5 || ewkb[0] > 1 {
		return nil, fmt.Errorf("%.60q is not a geometry's hex EWKB", s)
	}
	if ewkb[0] == 0 {
		return nil, errors.New("a big-endian geometry: its WKB is not converted to little-endian in this version")
	}
	order := binary.LittleEndian
	typ := order.Uint32(ewkb[1:5])
	if typ&(ewkbZ|ewkbM) != 0 || typ&^ewkbSRID >= 1000 { // EWKB's flags, or ISO WKB's 1000s
		return nil, errors.New("a geometry with Z or M coordinates: MySQL's geometries have two dimensions")
	}
	srid, rest := uint32(0), ewkb[5:]
	if typ&ewkbSRID != 0 {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%.60q is not a geometry's hex EWKB", s)
		}
		srid, rest = order.Uint32(rest[:4]), rest[4:]
	}
	wkb := make([]byte, 0, 5+len(rest))
	wkb = append(wkb, ewkb[0])
	wkb = order.AppendUint32(wkb, typ&^ewkbSRID)
	wkb = append(wkb, rest...)
	return fmt.Appendf(nil, "%d:%x", srid, wkb), nil
}

// byteOrder is WKB's byte order by its first byte: 1 little-endian (NDR), 0 big.
func byteOrder(b byte) interface {
	binary.ByteOrder
	binary.AppendByteOrder
} {
	if b == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}
