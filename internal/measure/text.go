package measure

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on outside input. They keep every audit record under its 64 KiB bound, keep
// PostgreSQL from refusing what the API accepted (a NUL byte, an index entry over 2 kB), and are
// published in the OpenAPI document.
const (
	// MaxLine bounds one-line text: titles, names, references, addressees, step actions.
	MaxLine = 256
	// MaxText bounds multi-line text: reasons, statements, report bodies, summaries.
	MaxText = 8 << 10
	// MaxItems bounds short lists: conditions, operations, alternatives, executors.
	MaxItems = 64
	// MaxSteps bounds the execution steps of one log_steps call.
	MaxSteps = 10000
	// MaxNotices bounds the notifications of one notify call.
	MaxNotices = 1000
	// MaxTargetValue bounds a target's value (a URL may be long; a domain is at most 253).
	MaxTargetValue = 2048
	// MaxID bounds a reference to a user or other object.
	MaxID = 64
)

// CheckLine refuses one-line text that is too long, not UTF-8, or holds a control character.
func CheckLine(field, s string, max int) *FieldError {
	return checkText(field, s, max, false)
}

// CheckQuery is CheckLine for what is searched for, not kept: a bidirectional control is
// looked for like any other character (and finds nothing, since no stored text holds one).
func CheckQuery(field, s string, max int) *FieldError {
	if fe := checkText(field, s, max, false); fe != nil && !strings.Contains(fe.Message, "invisible or bidirectional") {
		return fe
	}
	return nil
}

// CheckText refuses multi-line text that is too long, not UTF-8, or holds a control character
// other than tab and line breaks.
func CheckText(field, s string, max int) *FieldError {
	return checkText(field, s, max, true)
}

func checkText(field, s string, max int, multiline bool) *FieldError {
	if len(s) > max {
		return fieldErr(field, "is %d bytes, over the %d-byte limit", len(s), max)
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, "is not valid UTF-8")
	}
	for i, r := range s {
		if multiline && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			return fieldErr(field, "holds the control character %U at byte %d", r, i)
		}
		if hidden(r) {
			// Text that reads otherwise than it is stored: what a person reads and signs must be
			// what is recorded (Trojan Source, CVE-2021-42574; invisible tag characters).
			return fieldErr(field, "holds the invisible or bidirectional control character %U at byte %d: text must read as it is stored", r, i)
		}
	}
	return nil
}

// hidden reports the characters that reorder text as it is shown (bidirectional embeddings,
// overrides, isolates and marks) or show nothing (zero-width space, soft hyphen, invisible
// operators, Hangul fillers, tag characters). Joiners stay: scripts and emoji need them.
func hidden(r rune) bool {
	switch {
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r == '\u200e', r == '\u200f', r == '\u061c':
		return true
	case r == '\u200b', r == '\u00ad', r >= '\u2060' && r <= '\u2064', r == '\u115f', r == '\u1160', r == '\u3164', r == '\uffa0':
		return true
	case r >= 0xe0000 && r <= 0xe007f:
		return true
	}
	return false
}

// Clip shortens s to at most n bytes on a rune boundary, marking the cut: for echoing outside
// input in messages and audit records.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// checkAll runs checks in order and returns the first refusal.
func checkAll(errs ...*FieldError) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Within returns a copy of fe with its field placed under prefix ("steps[3]" + "at" gives
// "steps[3].at"); any other error is returned as it is.
func Within(prefix string, err error) error {
	fe, ok := err.(*FieldError)
	if !ok || fe == nil {
		return err
	}
	field := prefix
	switch {
	case fe.Field == "":
	case prefix == "":
		field = fe.Field
	case strings.HasPrefix(fe.Field, "["):
		field = prefix + fe.Field
	default:
		field = prefix + "." + fe.Field
	}
	return &FieldError{Field: field, Message: fe.Message}
}

// CheckInput checks the free text and the sizes of an action as it arrives, whatever its
// operation: what the workflow's rules then judge is at least well formed and bounded.
func (a *Action) CheckInput() error {
	if err := checkAll(
		CheckLine("decision", a.Decision, MaxLine),
		CheckText("reason", a.Reason, MaxText),
		CheckLine("gate", a.Gate, MaxLine),
		CheckLine("reference", a.Reference, MaxLine),
		CheckText("body", a.Body, MaxText),
		CheckLine("digest", a.Digest, MaxLine),
	); err != nil {
		return err
	}
	if len(a.Conditions) > MaxItems {
		return fieldErr("conditions", "lists %d conditions, over the limit of %d", len(a.Conditions), MaxItems)
	}
	for i, c := range a.Conditions {
		if err := CheckText(fmt.Sprintf("conditions[%d]", i), c, MaxLine*4); err != nil {
			return err
		}
		if strings.TrimSpace(c) == "" {
			return fieldErr(fmt.Sprintf("conditions[%d]", i), "is empty")
		}
	}
	if o := a.Order; o != nil {
		if err := checkAll(
			CheckLine("order.addressee", o.Addressee, MaxLine),
			CheckText("order.content", o.Content, MaxText),
			CheckText("order.proof_of_delivery", o.Proof, MaxText),
		); err != nil {
			return err
		}
	}
	if len(a.Steps) > MaxSteps {
		return fieldErr("steps", "lists %d steps, over the limit of %d per call: send them in batches", len(a.Steps), MaxSteps)
	}
	for i := range a.Steps {
		if err := a.Steps[i].Validate(); err != nil {
			return Within(fmt.Sprintf("steps[%d]", i), err)
		}
	}
	if b := a.Batch; b != nil {
		if len(a.Steps) > 0 || b.Count < 1 || b.Count > MaxSteps || len(b.Witnesses) > b.Count || len(b.Techniques) > b.Count {
			return fieldErr("steps", "the stored batch's summary does not fit its %d steps", b.Count)
		}
		if err := checkAll(CheckLine("steps", b.Digest, MaxLine), CheckLine("steps", b.Stored, MaxLine)); err != nil {
			return err
		}
	}
	if len(a.Notices) > MaxNotices {
		return fieldErr("notifications", "lists %d notifications, over the limit of %d per call", len(a.Notices), MaxNotices)
	}
	for i := range a.Notices {
		if err := a.Notices[i].Validate(); err != nil {
			return Within(fmt.Sprintf("notifications[%d]", i), err)
		}
	}
	return nil
}

// CheckInput checks a plan's free text and sizes, which a draft must respect at every save;
// Validate checks, at submission, that nothing required is missing.
func (p *Plan) CheckInput() error {
	if err := checkAll(
		CheckLine("title", p.Title, MaxLine),
		CheckLine("legal_basis", p.LegalBasis, MaxLine),
		CheckLine("kind", string(p.Kind), MaxLine),
		CheckLine("technique", p.Technique, MaxLine),
		CheckText("rollback_plan", p.RollbackPlan, MaxText),
		CheckText("data_handling", p.DataHandling, MaxText),
		CheckText("necessity", p.Necessity, MaxText),
		CheckText("proportionality", p.Proportionality, MaxText),
		CheckText("collateral", p.Collateral, MaxText),
		CheckText("notification_plan", p.NotificationPlan, MaxText),
		CheckText("emergency_justification", p.EmergencyJustify, MaxText),
	); err != nil {
		return err
	}
	for _, l := range []struct {
		name string
		n    int
	}{{"operations", len(p.Operations)}, {"executors", len(p.Executors)}, {"alternatives", len(p.Alternatives)}} {
		if l.n > MaxItems {
			return fieldErr(l.name, "lists %d items, over the limit of %d", l.n, MaxItems)
		}
	}
	for i, op := range p.Operations {
		if err := CheckText(fmt.Sprintf("operations[%d]", i), op, MaxText); err != nil {
			return err
		}
	}
	for i, e := range p.Executors {
		if err := CheckLine(fmt.Sprintf("executors[%d]", i), e, MaxID); err != nil {
			return err
		}
	}
	for i, a := range p.Alternatives {
		if err := checkAll(
			CheckText(fmt.Sprintf("alternatives[%d].means", i), a.Means, MaxText),
			CheckLine(fmt.Sprintf("alternatives[%d].outcome", i), a.Outcome, MaxLine),
			CheckText(fmt.Sprintf("alternatives[%d].reason", i), a.Reason, MaxText),
		); err != nil {
			return err
		}
	}
	if p.Extra != nil {
		raw, err := json.Marshal(p.Extra)
		if err != nil || len(raw) > 2*MaxText {
			return fieldErr("extra", "must be a JSON object of at most %d bytes", 2*MaxText)
		}
		return checkJSONText("extra", p.Extra)
	}
	return nil
}

// CheckObject checks an optional free-form JSON object (a case's attribution or harm): at
// most 2*MaxText bytes, every key and string well formed.
func CheckObject(field string, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if len(raw) > 2*MaxText {
		return fieldErr(field, "is %d bytes, over the %d-byte limit", len(raw), 2*MaxText)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fieldErr(field, "must be a JSON object")
	}
	return checkJSONText(field, v)
}

// checkJSONText checks every key and string inside a decoded JSON value.
func checkJSONText(field string, v any) error {
	switch x := v.(type) {
	case string:
		if err := CheckText(field, x, MaxText); err != nil {
			return err
		}
	case map[string]any:
		for k, e := range x {
			if err := CheckLine(field+" key", k, MaxLine); err != nil {
				return err
			}
			if err := checkJSONText(field+"."+k, e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkJSONText(fmt.Sprintf("%s[%d]", field, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}
