package measure

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckText(t *testing.T) {
	for _, c := range []struct {
		name, s   string
		multiline bool
		ok        bool
	}{
		{"plain", "C2 disabled at 10:02", false, true},
		{"Japanese", "措置を実施した。", false, true},
		{"NUL", "see\x00attached", true, false},
		{"escape", "\x1b[31mred", true, false},
		{"DEL", "a\x7fb", true, false},
		{"C1", "a\u0085b", true, false},
		{"line separator", "a\u2028b", true, false},
		{"BOM", "\ufeffa", true, false},
		{"newline in a line", "a\nb", false, false},
		{"newline in text", "a\nb\r\n\tc", true, true},
		{"invalid UTF-8", "a\xffb", true, false},
		{"at the limit", strings.Repeat("a", MaxLine), false, true},
		{"over the limit", strings.Repeat("a", MaxLine+1), false, false},
		{"over the limit in bytes, not runes", strings.Repeat("長", MaxLine/3+1), false, false},
	} {
		var err *FieldError
		if c.multiline {
			err = CheckText("f", c.s, MaxLine)
		} else {
			err = CheckLine("f", c.s, MaxLine)
		}
		if (err == nil) != c.ok {
			t.Errorf("%s: ok=%v, error %v", c.name, c.ok, err)
		}
		if err != nil && err.Field != "f" {
			t.Errorf("%s: the error names %q, not the field", c.name, err.Field)
		}
	}
}

// FuzzCheckText: whatever is accepted is bounded, valid UTF-8 and free of the bytes
// PostgreSQL or a terminal would choke on.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"", "abc", "a\x00b", "\u2028", "措置\n", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckText("f", s, 64) != nil {
			return
		}
		if len(s) > 64 || !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\x1b\x7f\u2028") {
			t.Fatalf("accepted %q", s)
		}
	})
}
