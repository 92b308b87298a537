package measure

import (
	"errors"
	"strings"
	"testing"
	"time"
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

// TestPlanCheckInputAtItsEdges: what a draft save refuses, field by field, at the limits.
func TestPlanCheckInputAtItsEdges(t *testing.T) {
	items := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "x"
		}
		return out
	}
	tests := []struct {
		name  string
		plan  Plan
		field string // "" when accepted
	}{
		{"an empty draft", Plan{}, ""},
		{"a control character in the necessity", Plan{Necessity: "a\x1bb"}, "necessity"},
		{"as many operations as allowed", Plan{Operations: items(MaxItems)}, ""},
		{"one operation too many", Plan{Operations: items(MaxItems + 1)}, "operations"},
		{"one executor too many", Plan{Executors: items(MaxItems + 1)}, "executors"},
		{"a control character in an alternative's reason", Plan{Alternatives: []Alternative{{Means: "m", Outcome: "tried", Reason: "r\x00"}}}, "alternatives[0].reason"},
		{"extra fields as an object", Plan{Extra: map[string]any{"ticket": "T-1"}}, ""},
		{"a control character in the extra fields", Plan{Extra: map[string]any{"ticket": "T\x07"}}, "extra"},
		{"extra fields at their size limit", Plan{Extra: map[string]any{"a": strings.Repeat("x", MaxText-10), "b": strings.Repeat("x", MaxText-5)}}, ""},
		{"extra fields a byte over it", Plan{Extra: map[string]any{"a": strings.Repeat("x", MaxText-9), "b": strings.Repeat("x", MaxText-5)}}, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRefusal(t, tt.plan.CheckInput(), tt.field, strings.HasPrefix) })
	}
	big := Plan{Extra: map[string]any{"a": strings.Repeat("x", 3*MaxText)}}
	if err := big.CheckInput(); err == nil || err.Error() != "extra: must be a JSON object of at most 16384 bytes" {
		t.Errorf("extra fields over the limit: %v", err)
	}
}

// TestActionCheckInputAtItsEdges: what an action's body may carry, whatever its operation,
// named by field, steps and notifications at their limits included.
func TestActionCheckInputAtItsEdges(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	step := Step{Target: "203.0.113.10", Technique: "block_c2", Action: "null-route", Result: "success", Witness: "ex2", At: at}
	steps := func(n int, edit func(*Step)) []Step {
		out := make([]Step, n)
		for i := range out {
			out[i] = step
		}
		if edit != nil {
			edit(&out[n-1])
		}
		return out
	}
	notice := Notification{Addressee: "hosting provider", Status: "sent"}
	notices := func(n int) []Notification {
		out := make([]Notification, n)
		for i := range out {
			out[i] = notice
		}
		return out
	}
	conditions := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "report weekly"
		}
		return out
	}
	tests := []struct {
		name  string
		a     Action
		field string // "" when accepted
	}{
		{"an empty body", Action{}, ""},
		{"a control character in the reason", Action{Reason: "no\x1b[2J"}, "reason"},
		{"as many conditions as allowed", Action{Conditions: conditions(MaxItems)}, ""},
		{"one condition too many", Action{Conditions: conditions(MaxItems + 1)}, "conditions"},
		{"a condition with a control character", Action{Conditions: []string{"a\x00"}}, "conditions[0]"},
		{"a blank condition", Action{Conditions: []string{"  "}}, "conditions[0]"},
		{"a condition at its length limit", Action{Conditions: []string{strings.Repeat("x", MaxLine*4)}}, ""},
		{"a condition over it", Action{Conditions: []string{strings.Repeat("x", MaxLine*4+1)}}, "conditions[0]"},
		{"a step's action at its length limit", Action{Steps: steps(1, func(s *Step) { s.Action = strings.Repeat("x", MaxLine*4) })}, ""},
		{"a step's action over it", Action{Steps: steps(1, func(s *Step) { s.Action = strings.Repeat("x", MaxLine*4+1) })}, "steps[0].action"},
		{"an order with a control character", Action{Order: &Order{Addressee: "isp\x07", Content: "stop"}}, "order.addressee"},
		{"an order", Action{Order: &Order{Addressee: "isp", Content: "stop"}}, ""},
		{"as many steps as allowed", Action{Steps: steps(MaxSteps, nil)}, ""},
		{"one step too many", Action{Steps: steps(MaxSteps+1, nil)}, "steps"},
		{"the last step without its target", Action{Steps: steps(3, func(s *Step) { s.Target = " " })}, "steps[2].target"},
		{"a step with an unknown technique", Action{Steps: steps(1, func(s *Step) { s.Technique = "nuke" })}, "steps[0].technique"},
		{"a step without an action", Action{Steps: steps(1, func(s *Step) { s.Action = "" })}, "steps[0].action"},
		{"a step with an unknown result", Action{Steps: steps(1, func(s *Step) { s.Result = "maybe" })}, "steps[0].result"},
		{"an unwitnessed step", Action{Steps: steps(1, func(s *Step) { s.Witness = "" })}, "steps[0].witness"},
		{"a step without its time", Action{Steps: steps(1, func(s *Step) { s.At = time.Time{} })}, "steps[0].at"},
		{"a step with a control character", Action{Steps: steps(1, func(s *Step) { s.Action = "rm\x1b" })}, "steps[0].action"},
		{"as many notifications as allowed", Action{Notices: notices(MaxNotices)}, ""},
		{"one notification too many", Action{Notices: notices(MaxNotices + 1)}, "notifications"},
		{"a notification to no one", Action{Notices: []Notification{{Addressee: " ", Status: "sent"}}}, "notifications[0].addressee"},
		{"a notification of unknown status", Action{Notices: []Notification{{Addressee: "isp", Status: "lost"}}}, "notifications[0].status"},
		{"a deferral without its reason", Action{Notices: []Notification{{Addressee: "isp", Status: "deferred"}}}, "notifications[0].reason"},
		{"a deferral with its reason", Action{Notices: []Notification{{Addressee: "isp", Status: "deferred", Reason: "ongoing investigation"}}}, ""},
		{"a notification with a control character", Action{Notices: []Notification{{Addressee: "isp\x00", Status: "sent"}}}, "notifications[0].addressee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRefusal(t, tt.a.CheckInput(), tt.field, func(got, want string) bool { return got == want })
		})
	}
}

// wantRefusal fails t unless err refuses a field that matches field, or is nil when field is "".
func wantRefusal(t *testing.T, err error, field string, matches func(got, want string) bool) {
	t.Helper()
	var fe *FieldError
	switch {
	case field == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case field != "" && (!errors.As(err, &fe) || !matches(fe.Field, field)):
		t.Fatalf("got %v, want a refusal of %s", err, field)
	}
}

// TestBidiControlsRefused: text whose display order differs from its stored order (Trojan
// Source) is refused wherever text is taken, so what a person reads and signs is what is kept.
func TestBidiControlsRefused(t *testing.T) {
	for _, r := range []rune{'\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c',
		'\u200b', '\u00ad', '\u2060', '\u2064', '\u115f', '\u1160', '\u3164', '\uffa0', 0xe0020, 0xe006e, 0xe007f} {
		s := "only " + string(r) + "TPECXE LLA targets"
		if CheckLine("reason", s, MaxLine) == nil || CheckText("reason", s, MaxText) == nil {
			t.Errorf("%U accepted", r)
		}
	}
	for _, ok := range []string{"承認します", "مرحبا", "עברית", "a\u200db"} { // scripts that read right to left by themselves, a joiner
		if fe := CheckText("reason", ok, MaxText); fe != nil {
			t.Errorf("%q refused: %v", ok, fe)
		}
	}
}

// TestQueriesTakeHiddenCharacters: a search is not kept or signed: it looks for any character.
func TestQueriesTakeHiddenCharacters(t *testing.T) {
	if fe := CheckQuery("q", "\u202e\u200b", MaxLine); fe != nil {
		t.Fatalf("a search for hidden characters: %v", fe)
	}
	if fe := CheckQuery("q", "a\x00", MaxLine); fe == nil {
		t.Fatal("a search with a NUL accepted")
	}
}
