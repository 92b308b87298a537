package measure

import (
	"strings"
	"testing"
)

func TestCheckChecklist(t *testing.T) {
	all := LegalRequirements
	for _, c := range []struct {
		name     string
		decision string
		items    []string
		field    string // "" when accepted
	}{
		{"approval confirming all", "approve", all, ""},
		{"approval in another order", "approve", []string{all[5], all[4], all[3], all[2], all[1], all[0]}, ""},
		{"approval without a checklist", "approve", nil, "checklist"},
		{"approval missing the last", "approve", all[:5], "checklist"},
		{"approval with one twice instead of another", "approve", append(append([]string{}, all[:5]...), all[0]), "checklist[5]"},
		{"an unknown requirement", "return", []string{"looks_fine"}, "checklist[0]"},
		{"a control character", "approve", []string{"urgency\x00"}, "checklist[0]"},
		{"a return confirming some", "return", all[:2], ""},
		{"a return confirming none", "return", nil, ""},
	} {
		err := CheckChecklist(c.decision, c.items)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != c.field || !strings.Contains(fe.Message, "") {
			t.Errorf("%s: %v, want a refusal of %s", c.name, err, c.field)
		}
	}
}
