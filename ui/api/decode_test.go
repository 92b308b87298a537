package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// TestDecodeSaysJSONNotGo: a body of the wrong JSON kind is refused in JSON's words, never
// with a Go type's name.
func TestDecodeSaysJSONNotGo(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`[1, 2]`, "must be a JSON object"},
		{`"text"`, "must be a JSON object"},
		{`{"signature": []}`, "must be a JSON object"},
		{`{"signature": {"kind": 5}}`, "must be a JSON string"},
	} {
		var in struct {
			Signature *audit.Signature `json:"signature"`
		}
		err := decodeJSON(strings.NewReader(tt.body), &in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "struct") || strings.Contains(err.Error(), "audit.") {
			t.Errorf("%s: %v, want %q", tt.body, err, tt.want)
		}
	}
}

// FuzzBodies: every body the API reads goes through decodeJSON into its type, then through
// the check the service runs first. Whatever arrives, nothing panics, a refusal is a field
// error in JSON's words (never a Go type), and what passes the check passes it again
// unchanged (the checks normalise once).
func FuzzBodies(f *testing.F) {
	for _, seed := range []string{
		`{"title":"PlugX","summary":"x","attribution":{"actor":"APT"}}`,
		`{"decision":"approve","digest":"sha256:00","checklist":["harmful_telecommunication"]}`,
		`{"steps":[{"target":"例え.jp","technique":"null_route","action":"a","result":"success","witness":"u-1","at":"2026-12-07T00:00:00Z"}]}`,
		`{"targets":[{"kind":"domain","value":"例え。jp","location":"domestic"}]}`,
		`{"kind":"self_execute","legal_basis":"x","window":"14d","executors":["u-1"]}`,
		`{"email":"a@example.go.jp","webhook_url":"https://h.example/x","kinds":["waiting"]}`,
		`{"user":"u-1","kind":"grant_role","role":"legal","reason":"r"}`,
		`{"targets_sha256":"sha256:00"}`, `{"values":["203.0.113.1"]}`, `[]`, `{"a":1}{}`, "\x00", `{"title":1e999}`,
	} {
		for kind := range uint8(len(bodies)) {
			f.Add(kind, []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		b := bodies[int(kind)%len(bodies)]
		v := b.new()
		err := decodeJSON(bytes.NewReader(data), v)
		if err != nil {
			var fe *measure.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%s: %T %v is not a field error", b.name, err, err)
			}
			if strings.Contains(fe.Message, "struct") || strings.Contains(fe.Message, "service.") || strings.Contains(fe.Message, "measure.") {
				t.Fatalf("%s: a Go type in the refusal: %v", b.name, err)
			}
			return
		}
		if b.check == nil || b.check(v) != nil {
			return
		}
		again, _ := json.Marshal(v)
		if err := b.check(v); err != nil {
			t.Fatalf("%s: passed once, then refused: %v", b.name, err)
		}
		if now, _ := json.Marshal(v); !bytes.Equal(now, again) {
			t.Fatalf("%s: a second check changed %s into %s", b.name, again, now)
		}
	})
}

// bodies are the API's request bodies by the type each handler decodes into.
var bodies = []struct {
	name  string
	new   func() any
	check func(any) error
}{
	{"case", func() any { return &service.NewCase{} }, nil},
	{"plan", func() any { return &measure.Plan{} }, func(v any) error { return v.(*measure.Plan).Validate() }},
	{"targets", func() any {
		return &struct {
			Targets []measure.Target `json:"targets"`
		}{}
	}, func(v any) error {
		return measure.ValidateTargets(v.(*struct {
			Targets []measure.Target `json:"targets"`
		}).Targets)
	}},
	{"remove targets", func() any {
		return &struct {
			Values []string `json:"values"`
		}{}
	}, nil},
	{"action", func() any { return &service.ActionInput{} }, func(v any) error {
		in := v.(*service.ActionInput)
		a := measure.Action{Op: "log_steps", Decision: in.Decision, Reason: in.Reason, Conditions: in.Conditions, Checklist: in.Checklist,
			Digest: in.Digest, Gate: in.Gate, Reference: in.Reference, Order: in.Order, Steps: in.Steps, Body: in.Body, Notices: in.Notices}
		if err := a.CheckInput(); err != nil {
			return err
		}
		in.Steps, in.Notices, in.Order = a.Steps, a.Notices, a.Order
		return nil
	}},
	{"notification choices", func() any { return &service.NotificationPrefs{} }, nil},
	{"role change", func() any { return &service.RoleChange{} }, nil},
	{"key proposal", func() any { return &service.KeyProposal{} }, nil},
	{"import confirmation", func() any {
		return &struct {
			TargetsSHA256 string `json:"targets_sha256"`
		}{}
	}, nil},
}

// TestDecodeTimesInRFC3339: a time that is not one is refused with the form to write, not
// Go's layout string, and named by its place in the body, index and all.
func TestDecodeTimesInRFC3339(t *testing.T) {
	for _, c := range []struct{ body, field string }{
		{`{"steps":[{"target":"203.0.113.10","at":12345}]}`, "steps[0].at"},
		{`{"steps":[{"target":"203.0.113.10","at":"2026-12-07T10:00:00Z"},{"target":"203.0.113.11","at":"yesterday"}]}`, "steps[1].at"},
		{`{"steps":[{"target":"a","at":"2026-12-07T10:00:00Z"},{"target":"b","at":"2026-12-07T10:00:00Z"},{"target":"c","at":"2026-12-07 10:00"}]}`, "steps[2].at"},
		{`{"order":{"addressee":"a","content":"c","deadline":true}}`, "order.deadline"},
	} {
		var in service.ActionInput
		err := decodeJSON(strings.NewReader(c.body), &in)
		var fe *measure.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), "RFC 3339") || strings.Contains(err.Error(), "2006") || strings.Contains(err.Error(), "Time.") {
			t.Errorf("%s: %v, want field %s", c.body, err, c.field)
		}
	}
}

// TestDecodeNamesTheIndex: a value of the wrong kind deep in a list is named with its index
// (encoding/json says "steps.target"; which of 10,000 steps is the person's question).
func TestDecodeNamesTheIndex(t *testing.T) {
	for _, c := range []struct{ body, field, says string }{
		{`{"steps":[{"target":"a"},{"target":7}]}`, "steps[1].target", "JSON string"},
		{`{"steps":[{"target":"a"},{"target":"b"},{"target":"c","witness":["w"]}]}`, "steps[2].witness", "JSON string"},
		{`{"checklist":["serious_harm",true]}`, "checklist[1]", "JSON string"},
		{`{"notifications":[{},{},{},{"addressee":{"name":"x"}}]}`, "notifications[3].addressee", "JSON string"},
		{`{"steps":[{"target":"a","at":"2026-12-07T10:00:00Z"},{"target":"a","at":"2026-13-01T00:00:00Z"}]}`, "steps[1].at", "RFC 3339"},
	} {
		var in service.ActionInput
		err := decodeJSON(strings.NewReader(c.body), &in)
		var fe *measure.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want field %s saying %q", c.body, err, c.field, c.says)
		}
	}
}
