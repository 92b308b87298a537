package measure

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestGuessKind: the kinds a bare list of values (a CLI file, the web form's text box) is read
// as; validation then holds each value to its kind.
func TestGuessKind(t *testing.T) {
	for v, want := range map[string]string{
		"203.0.113.10": "ip", "2001:db8::1": "ip", "198.51.100.0/24": "cidr", "2001:db8::/32": "cidr",
		"https://c2.example/gate.php": "url", "hxxp://c2.example": "url", "AS64500": "asn", "as64500": "asn",
		"AS": "domain", "AS64500x": "domain", "c2.example": "domain", "203.0.113.300": "domain", "": "domain",
	} {
		if got := GuessKind(v); got != want {
			t.Errorf("GuessKind(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestClip: outside input echoed in a message is cut on a rune boundary and marked as cut.
func TestClip(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"c2.example", 10, "c2.example"},
		{"c2.example", 9, "c2.exampl…"},
		{"無害化措置", 15, "無害化措置"},
		{"無害化措置", 7, "無害…"}, // 7 bytes end inside the third rune
		{"無害化措置", 2, "…"},
		{"", 0, ""},
		{"\x80\x80\x80c2", 1, "…"}, // not UTF-8 at all: outside input may be anything
	} {
		if got := Clip(tt.in, tt.n); got != tt.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestWithin: a nested refusal names the field as a client wrote it.
func TestWithin(t *testing.T) {
	other := errors.New("not a field error")
	for _, tt := range []struct {
		prefix string
		err    error
		want   string
	}{
		{"steps[3]", &FieldError{Field: "at", Message: "is required"}, "steps[3].at"},
		{"targets", &FieldError{Field: "[2]", Message: "is required"}, "targets[2]"},
		{"", &FieldError{Field: "at", Message: "is required"}, "at"},
		{"notifications[0]", &FieldError{Message: "is empty"}, "notifications[0]"},
	} {
		var fe *FieldError
		if !errors.As(Within(tt.prefix, tt.err), &fe) || fe.Field != tt.want || fe.Message != tt.err.(*FieldError).Message {
			t.Errorf("Within(%q, %v) = %v, want field %q", tt.prefix, tt.err, fe, tt.want)
		}
	}
	if Within("steps[0]", other) != other || Within("x", nil) != nil {
		t.Error("Within changed an error that names no field")
	}
}

// TestCheckObject: a case's free-form attribution or harm, as a careless or hostile client
// sends it.
func TestCheckObject(t *testing.T) {
	for _, tt := range []struct {
		name, raw string
		field     string // the refused field, or "" when accepted
		says      string // and the refusal reads so, when given
	}{
		{"absent", ``, "", ""},
		{"null", `null`, "", ""},
		{"an object of strings, lists and numbers", `{"actor":"APT-X","aliases":["a","b"],"confidence":0.8,"nested":{"k":"v"}}`, "", ""},
		{"a list, not an object", `["a"]`, "harm", ""},
		{"not JSON", `{"a":`, "harm", ""},
		{"a control character in a value", `{"a":"x\u0000"}`, "harm.a", ""},
		{"a control character in a list", `{"a":["ok","x\u0007"]}`, "harm.a[1]", ""},
		{"a newline in a key", `{"a\nb":"x"}`, "harm key", ""},
		{"at the size limit", `{"a":"` + strings.Repeat("x", MaxText-10) + `","b":"` + strings.Repeat("x", MaxText-5) + `"}`, "", ""},
		{"a byte over the size limit", `{"a":"` + strings.Repeat("x", MaxText-9) + `","b":"` + strings.Repeat("x", MaxText-5) + `"}`, "harm",
			"harm: is 16385 bytes, over the 16384-byte limit"},
	} {
		err := CheckObject("harm", json.RawMessage(tt.raw))
		var fe *FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%s: %v, want a refusal of %s", tt.name, err, tt.field)
		case tt.says != "" && err.Error() != tt.says:
			t.Errorf("%s: %q, want %q", tt.name, err, tt.says)
		}
	}
}

// TestValidateTargets: a list is refused when empty, or at its first bad target by index.
func TestValidateTargets(t *testing.T) {
	good := Target{Kind: "ip", Value: "203.0.113.10"}
	bad := Target{Kind: "ip", Value: "203.0.113.300"}
	if err := ValidateTargets([]Target{good, {Kind: "domain", Value: "c2.example"}}); err != nil {
		t.Errorf("a good list refused: %v", err)
	}
	for _, tt := range []struct {
		list  []Target
		field string
	}{{nil, "targets"}, {[]Target{good, bad, bad}, "targets[1].value"}} {
		var fe *FieldError
		if err := ValidateTargets(tt.list); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%v: %v, want a refusal of %s", tt.list, err, tt.field)
		}
	}
}
