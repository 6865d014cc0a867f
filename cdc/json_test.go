package cdc

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNormalJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Literals and whitespace.
		{`true`, `true`}, {` false `, `false`}, {"\t\r\n null\n", `null`},
		{`[ 1 , 2 ,[ ] , { } ]`, `[1,2,[],{}]`},
		// Keys sorted by their bytes, at every level; the last duplicate wins.
		{`{"b": 1, "a": 2}`, `{"a":2,"b":1}`},
		{`{"b": {"z": [3, {"y": 1, "x": 2}], "a": null}, "a": []}`, `{"a":[],"b":{"a":null,"z":[3,{"x":2,"y":1}]}}`},
		{`{"a": 1, "b": 2, "a": 3}`, `{"a":3,"b":2}`},
		{`{"a": {"x": 1}, "a": {"y": 2}}`, `{"a":{"y":2}}`},
		{`{"aa": 1, "a": 2, "B": 3, "é": 4, "z": 5, "": 6}`, `{"":6,"B":3,"a":2,"aa":1,"z":5,"é":4}`},
		{`{"\u0062": 1, "a": 2}`, `{"a":2,"b":1}`},                // sorted unescaped
		{`{"😀": 1, "\uffff": 2}`, `{"` + "\uffff" + `":2,"😀":1}`}, // UTF-8 bytes, not UTF-16 units
		// Strings: unescaped, then escaped minimally.
		{`"a\/b"`, `"a/b"`}, {`"\u00e9\u00E9é"`, `"ééé"`}, {`"\ud83d\ude00"`, `"😀"`}, {`"\uD834\uDD1E"`, `"𝄞"`},
		{`"\"\\\b\f\n\r\t"`, `"\"\\\b\f\n\r\t"`}, {`"\u0008\u000C"`, `"\b\f"`},
		{`"\u0001\u001F\u001f"`, `"\u0001\u001f\u001f"`}, {`"\u0000"`, `"\u0000"`},
		{`"\u007f\u2028<>&"`, "\"\x7f\u2028<>&\""}, {`"x\u0022"`, `"x\""`},
		// Numbers: one spelling per value.
		{`1`, `1`}, {`1.0`, `1`}, {`1e0`, `1`}, {`10E-1`, `1`}, {`0.1e1`, `1`}, {`1.000e+0`, `1`},
		{`100`, `100`}, {`1E2`, `100`}, {`1e+2`, `100`}, {`10.0e1`, `100`}, {`0.01e4`, `100`},
		{`-0`, `0`}, {`0.0`, `0`}, {`-0.0e-5`, `0`}, {`0e400`, `0`}, {`0E-99999`, `0`},
		{`-1.50`, `-1.5`}, {`0.0001`, `0.0001`}, {`0.00001`, `1e-5`}, {`1.5e-7`, `1.5e-7`},
		{`123456789012345678901`, `123456789012345678901`}, {`1e21`, `1e+21`}, {`1234567890123456789012`, `1.234567890123456789012e+21`},
		{`1e400`, `1e+400`}, {`-1e400`, `-1e+400`}, {`1e-400`, `1e-400`}, {`10000000000000000000000000000000000000000`, `1e+40`},
		{`12345678901234567890.123456789012345678901234567890`, `12345678901234567890.12345678901234567890123456789`},
		{`1.5e300`, `1.5e+300`}, {`0.30000000000000004`, `0.30000000000000004`}, {`9007199254740993`, `9007199254740993`},
		{`1e0000000000000000000000000002`, `100`}, {`[1.0, 1, 1e0]`, `[1,1,1]`},
		{`{"n": 1.10, "m": -0}`, `{"m":0,"n":1.1}`},
	} {
		got, err := NormalJSON([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("NormalJSON(%s) = %s, %v; want %s", c.in, got, err, c.want)
			continue
		}
		// Normal is a fixed point, and valid JSON that means the same.
		again, err := NormalJSON(got)
		if err != nil || string(again) != string(got) {
			t.Errorf("NormalJSON(%s) = %s, %v: not a fixed point", got, again, err)
		}
		if !json.Valid(got) {
			t.Errorf("NormalJSON(%s) = %s: not valid JSON", c.in, got)
		}
	}
	// Spellings of one document, as MySQL and jsonb write it, are one.
	same := [][]string{
		{`{"a": 1, "b": [true, null, "x"]}`, `{"b":[true,null,"x"],"a":1.0}`, `{ "a" : 1e0 , "b" : [ true , null , "\u0078" ] }`},
		{`{"big": 12345678901234567890.123456789012345678901234567890, "d": 1.5e300}`,
			`{"d": 1500000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000, "big": 12345678901234567890.123456789012345678901234567890}`},
		{`"😀"`, `"\ud83d\ude00"`, `"\uD83D\uDE00"`},
	}
	for _, group := range same {
		first, err := NormalJSON([]byte(group[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range group[1:] {
			if got, err := NormalJSON([]byte(s)); err != nil || string(got) != string(first) {
				t.Errorf("NormalJSON(%s) = %s, %v; want %s as for %s", s, got, err, first, group[0])
			}
		}
	}
}

func TestNormalJSONRefused(t *testing.T) {
	for _, c := range []struct{ in, why string }{
		{``, "the text ends"}, {` `, "the text ends"}, {`{`, "a key"}, {`[1,]`, "does not start"}, {`[1 2]`, "between an array's elements"},
		{`{"a" 1}`, "':' expected"}, {`{"a":1,}`, "a key"}, {`{a:1}`, "a key"}, {`{"a":1 "b":2}`, "between an object's members"},
		{`[`, "the text ends"}, {`[1`, "not closed"}, {`"abc`, "not closed"}, {`1 2`, "text after"}, {`nul`, "does not start"},
		{`01`, "not a JSON number"}, {`-`, "not a JSON number"}, {`1.`, "no digit after the point"}, {`.5`, "does not start"},
		{`1e`, "no digit in the exponent"}, {`1e+`, "no digit in the exponent"}, {`+1`, "does not start"}, {`1e99999999999999`, "beyond"},
		{`NaN`, "does not start"}, {`"a` + "\n" + `b"`, "control character"}, {`"\x"`, "not an escape"}, {`"\u12"`, "4 hex digits"},
		{`"\u12g4"`, "4 hex digits"}, {`"\u+123"`, "4 hex digits"}, {`"\ud83d"`, "without a low one"}, {`"\ud83dx"`, "without a low one"},
		{`"\ude00"`, "without a high one"}, {`"\ud83d\u0041"`, "not a low one"}, {"\"\xff\"", "not UTF-8"}, {"\"\xed\xa0\x80\"", "not UTF-8"},
		{strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1), "nested deeper"},
	} {
		got, err := NormalJSON([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("NormalJSON(%q) = %s, %v; want an error with %q", c.in, got, err, c.why)
		}
	}
	deep := strings.Repeat(`{"a":[`, maxJSONDepth/2) + strings.Repeat("]}", maxJSONDepth/2)
	if got, err := NormalJSON([]byte(deep)); err != nil || string(got) != deep {
		t.Errorf("nested %d deep: %v", maxJSONDepth, err)
	}
}
