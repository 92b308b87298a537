package measure

import (
	"strings"
	"testing"
)

// TestUnicodeDomains: a name typed in Unicode, as it appears in a Japanese report, is stored
// as its A-labels; what IDNA 2008 refuses is refused with a way out; A-labels pass as given
// and are shown back in Unicode.
func TestUnicodeDomains(t *testing.T) {
	for _, tc := range []struct {
		kind, in, want, show string // want "": refused
	}{
		{"domain", "例え.jp", "xn--r8jz45g.jp", "例え.jp"},
		{"domain", "例え。jp", "xn--r8jz45g.jp", "例え.jp"},                           // the ideographic full stop a Japanese keyboard types
		{"domain", "ＥＸＡＭＰＬＥ．ｊｐ", "example.jp", ""},                               // full-width letters fold to ASCII
		{"domain", "Bücher.Example.", "xn--bcher-kva.example", "bücher.example"}, // case folded, root dot dropped
		{"domain", "faß.example", "xn--fa-hia.example", "faß.example"},           // IDNA 2008, not transitional: ß stays
		{"domain", "аpple.example", "xn--pple-43d.example", "аpple.example"},     // a Cyrillic а: stored apart from apple
		{"domain", "xn--r8jz45g.jp", "xn--r8jz45g.jp", "例え.jp"},
		{"domain", "XN--R8JZ45G.JP", "xn--r8jz45g.jp", "例え.jp"},
		{"domain", "xn--i-7iq.ws", "xn--i-7iq.ws", "i❤.ws"}, // registered before IDNA 2008: kept and shown
		{"domain", "😀.example", "", ""},
		{"domain", "a\u202eb.example", "", ""}, // a right-to-left override
		{"domain", "a\u200db.example", "", ""}, // a zero-width joiner outside its context
		{"domain", "例え", "", ""},               // one label
		{"domain", "例え.jp\x00", "", ""},
		{"url", "https://例え.jp:8443/gate?id=1", "https://xn--r8jz45g.jp:8443/gate?id=1", "https://例え.jp:8443/gate?id=1"},
		{"url", "http://xn--r8jz45g.jp/", "http://xn--r8jz45g.jp/", "http://例え.jp/"},
		{"url", "https://😀.example/", "", ""},
		{"url", "https://c2.example.net/例", "https://c2.example.net/例", ""},
		{"url", "https://例え.jp:1/", "https://xn--r8jz45g.jp:1/", "https://例え.jp:1/"},
		{"url", "https://例え.jp:65535/", "https://xn--r8jz45g.jp:65535/", "https://例え.jp:65535/"},
		{"url", "https://例え.jp:65536/", "", ""},
		{"url", "https://例え.jp:0/", "", ""},
		{"domain", "ア・イ.jp", "xn--ccke4x.jp", "ア・イ.jp"},                                       // the katakana middle dot beside kana
		{"domain", "a・b.example", "", ""},                                                     // … and beside Latin letters
		{"domain", "・.jp", "", ""},                                                            // … or alone
		{"domain", "col·lecció.example", "xn--collecci-ioa91d.example", "col·lecció.example"}, // the Catalan middle dot between two l
		{"domain", "co·a.example", "", ""},
	} {
		tg := Target{Kind: tc.kind, Value: tc.in}
		err := tg.Validate()
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s %q accepted as %q", tc.kind, tc.in, tg.Value)
			}
			continue
		}
		if err != nil || tg.Value != tc.want {
			t.Errorf("%s %q = %q, %v; want %q", tc.kind, tc.in, tg.Value, err, tc.want)
			continue
		}
		if got := UnicodeValue(tc.kind, tg.Value); got != tc.show {
			t.Errorf("%s %q shows as %q, want %q", tc.kind, tg.Value, got, tc.show)
		}
		again := Target{Kind: tc.kind, Value: tg.Value}
		if err := again.Validate(); err != nil || again.Value != tg.Value {
			t.Errorf("%q is not stable: %q, %v", tg.Value, again.Value, err)
		}
	}
	tg := Target{Kind: "domain", Value: "😀.example"}
	if err := tg.Validate(); err == nil || !strings.Contains(err.Error(), "xn--") {
		t.Errorf("a refused Unicode name does not say to give the A-label: %v", err)
	}
}

// TestALabelsAreChecked: an A-label is taken as given only if it decodes to what a registry
// issues: one hiding a right-to-left override showed "elpmaxe" as "example" on the draft's
// page, one with a joiner looked like its neighbour (a stranger's findings).
func TestALabelsAreChecked(t *testing.T) {
	for _, v := range []string{"xn--elpmaxe-z76c.jp", "xn--zvg.jp", "xn--a-ugn.jp", "xn--a.jp", "xn--ab.jp", "xn--r6j.jp", "xn--7ba.jp",
		"xn--ph7cc.jp", "xn--zzzz.jp", "XN--ZZZZ.jp", "xn--99999999999.jp", "xn--ab-k.jp", "sub.xn--zvg.example"} {
		tg := Target{Kind: "domain", Value: v}
		if err := tg.Validate(); err == nil || !strings.Contains(err.Error(), "xn--") {
			t.Errorf("the A-label %q is accepted as %q (%v)", v, tg.Value, err)
		}
		u := Target{Kind: "url", Value: "http://" + v + "/gate"}
		if err := u.Validate(); err == nil {
			t.Errorf("a URL on the A-label %q is accepted", v)
		}
	}
	for _, v := range []string{"xn--i-7iq.ws", "xn--r8jz45g.jp", "XN--R8JZ45G.JP", "xn--pple-43d.example", "xn--bcher-kva.example", "xn--ccke4x.jp"} {
		tg := Target{Kind: "domain", Value: v}
		if err := tg.Validate(); err != nil {
			t.Errorf("the A-label %q is refused: %v", v, err)
		}
	}
}

func TestStepTargetsInUnicode(t *testing.T) {
	if isASCII("a\x80") || isASCII("\xff") || !isASCII("a\x7f") {
		t.Error("isASCII misreads a byte at the ASCII edge")
	}
	for in, want := range map[string]string{"例え.jp": "xn--r8jz45g.jp", "https://例え.jp/x": "https://xn--r8jz45g.jp/x", "198.51.100.7": "198.51.100.7", "😀.example": "😀.example",
		"XN--R8JZ45G.JP": "xn--r8jz45g.jp", "2001:DB8::1": "2001:db8::1", "Update.Example-C2.jp.": "update.example-c2.jp"} {
		if got := NormalValue(in); got != want {
			t.Errorf("NormalValue(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"例え": "xn--r8jz45g", "例え.jp": "xn--r8jz45g.jp", "example": "example", "😀": "😀"} {
		if got := ASCIISearch(in); got != want {
			t.Errorf("ASCIISearch(%q) = %q, want %q", in, got, want)
		}
	}
}
