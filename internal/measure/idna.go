package measure

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Internationalised domain names are stored, digested, exported and executed as A-labels
// (xn--…), the form DNS and every partner's tools use, and shown to people as U-labels with
// the A-label beside, so a look-alike letter cannot hide what is approved.

// lookup is IDNA as browsers apply it (UTS #46 mapping, not transitional): case and width
// are folded (ＥＸＡＭＰＬＥ．ｊｐ, 例え。jp), joiners and bidirectional labels checked. UTS #46
// admits symbols IDNA 2008 disallows (its NV8 characters, emoji among them), and x/net/idna
// does not exclude them (its source leaves that part of IDNA 2008 unimplemented), so
// letterDigits applies RFC 5892's rule after.
var lookup = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule(), idna.StrictDomainName(true))

// display reads A-labels back without judging them: a name registered before IDNA 2008 (an
// emoji, say) is still shown as it was registered.
var display = idna.New()

// asciiDomain is s with each Unicode label turned into its A-label. An ASCII name is returned
// as it is (names with '_', which IDNA's rules forbid, are found in DNS and malware alike),
// once its A-labels are shown to decode to a name a page can show truthfully.
func asciiDomain(s string) (string, error) {
	if isASCII(s) {
		return s, checkALabels(s)
	}
	u, err := lookup.ToUnicode(s)
	if err != nil || letterDigits(u) != nil {
		return "", errIDNA
	}
	a, err := lookup.ToASCII(u)
	if err != nil {
		return "", errIDNA
	}
	return a, nil
}

// checkALabels refuses an xn-- label that is not valid Punycode, or that decodes to what no
// registry issues and a page would misshow: a control, format or bidirectional control
// character (U+202E turns "elpmaxe" into "example" on screen), a joiner, a space, an
// unassigned or private code point, or a form IDNA's mapping would change (upper case, full
// width, a dot in disguise). Symbols registered before IDNA 2008 (xn--i-7iq.ws, i❤.ws) pass.
func checkALabels(s string) error {
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if len(l) < 4 || !strings.EqualFold(l[:4], "xn--") {
			continue
		}
		u, err := display.ToUnicode(strings.ToLower(l))
		if err != nil || u == "" || isASCII(u) {
			return errALabel
		}
		for _, r := range u {
			if r == utf8.RuneError || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Z, unicode.Co, unicode.Cs) || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.S, unicode.P) {
				return errALabel
			}
		}
		if mapped, _ := lookup.ToUnicode(u); mapped != u {
			return errALabel
		}
		if back, err := display.ToASCII(u); err != nil || back != strings.ToLower(l) {
			return errALabel
		}
	}
	return nil
}

// letterDigits is RFC 5892's rule for what a label may hold: letters, marks and digits
// (section 2.1, LetterDigits; upper case is folded before), the hyphen, the joiners lookup has
// checked in context, and the CONTEXTO characters a Japanese name uses: the katakana middle
// dot beside kana or kanji (Appendix A.9) and the Catalan middle dot between two l (A.3).
func letterDigits(name string) error {
	for _, label := range strings.Split(name, ".") {
		for i, r := range label {
			switch {
			case r == '-' || r == 0x200C || r == 0x200D:
			case unicode.In(r, unicode.Ll, unicode.Lo, unicode.Lm, unicode.Mn, unicode.Mc, unicode.Nd):
			case r == 0x30FB && strings.IndexFunc(label, isKanaOrHan) >= 0:
			case r == 0x00B7 && strings.HasSuffix(label[:i], "l") && strings.HasPrefix(label[i+2:], "l"):
			default:
				return fmt.Errorf("%q is not a letter or digit IDNA 2008 allows", r)
			}
		}
	}
	return nil
}

func isKanaOrHan(r rune) bool {
	return r != 0x30FB && unicode.In(r, unicode.Hiragana, unicode.Katakana, unicode.Han)
}

// NormalValue is a target's value as the targets table holds it, however it was typed (a
// name in Unicode or upper case, an IPv6 address written out): a step's target, a target to
// remove. A value that is no valid target is returned as it is, to be refused as unknown.
func NormalValue(v string) string {
	t := Target{Kind: GuessKind(strings.TrimSpace(v)), Value: v}
	if t.Validate() == nil {
		return t.Value
	}
	return v
}

// UnicodeValue is how a domain or URL target is shown: its host's U-labels, or "" when it
// has none (an ASCII name, an address, or an A-label that does not decode).
func UnicodeValue(kind, value string) string {
	switch kind {
	case "domain":
		return unicodeHost(value)
	case "url":
		u, err := url.Parse(value)
		if err != nil {
			return ""
		}
		h := u.Hostname()
		uh := unicodeHost(h)
		if uh == "" {
			return ""
		}
		scheme, rest, _ := strings.Cut(value, "://") // a URL target has one: Validate requires it
		return scheme + "://" + strings.Replace(rest, h, uh, 1)
	}
	return ""
}

func unicodeHost(h string) string {
	if !strings.Contains(strings.ToLower(h), "xn--") {
		return ""
	}
	u, err := display.ToUnicode(h)
	if err != nil || u == h || !utf8.ValidString(u) {
		return ""
	}
	return u
}

// ASCIISearch turns the labels of a search typed in Unicode into A-labels, so 例え finds
// xn--r8jz45g.jp; a label that does not convert is searched as typed.
func ASCIISearch(q string) string {
	if isASCII(q) {
		return q
	}
	labels := strings.Split(strings.ReplaceAll(q, "。", "."), ".")
	for i, l := range labels {
		if a, err := asciiDomain(l); err == nil && a != "" {
			labels[i] = a
		}
	}
	return strings.Join(labels, ".")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
