package web

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTargetLine: one line of the draft page's target box, as a careless typist or a paste
// from a report gives it. Nothing panics; a line read into a target that then passes the
// check reads the same when its value is typed again (the form shows what it holds).
func FuzzTargetLine(f *testing.F) {
	for _, s := range []string{"203.0.113.10", "203.0.113.10,domestic,443,JP,c2,attacker_controlled,ACME,Reg", "例え。jp,abroad",
		`"a,b",x`, `"unterminated`, "https://例え.jp:8443/x,domestic,8443", ",,,,,,,,,", "x,domestic,99999999999999999999", "\x00", "a\"b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		tg, err := targetLine(line)
		if err != nil {
			if !utf8.ValidString(err.Error()) && utf8.ValidString(line) {
				t.Fatalf("the refusal of a UTF-8 line is not UTF-8: %q", err)
			}
			return
		}
		if tg.Validate() != nil {
			return
		}
		again, err := targetLine(`"` + strings.ReplaceAll(tg.Value, `"`, `""`) + `"`)
		if err != nil || again.Validate() != nil || again.Value != tg.Value || again.Kind != tg.Kind {
			t.Fatalf("%q became the %s %q, which typed again reads as the %s %q (%v)", line, tg.Kind, tg.Value, again.Kind, again.Value, err)
		}
	})
}
