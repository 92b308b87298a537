package service

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/takedown/takedown/internal/measure"
)

// FuzzChecks: the checks the service runs on what people send before anything reaches the
// database (a case, evidence metadata, notification choices, an account change), fed JSON
// as the API decodes it. Nothing panics, every refusal names a field, and what passes passes
// again unchanged.
func FuzzChecks(f *testing.F) {
	for _, seed := range []string{
		`{"title":"PlugX","summary":"s","attribution":{"actor":"x"},"harm":{"k":1}}`,
		`{"filename":"../../etc/passwd","kind":"pcap","provenance":"own_investigation","tlp":"red"}`,
		`{"filename":"x\u202egpj.exe","kind":"log","provenance":"communications_information"}`,
		`{"email":"a@example.go.jp","webhook_url":"http://user:pw@h/","kinds":["waiting","nope"],"channels":["email"]}`,
		`{"kind":"create_user","reason":"r","account":{"username":"u","display_name":"U","org":"npa"}}`,
		`{"kind":"grant_role","user":"u-1","role":"legal","reason":"vacancy"}`,
		`{}`, `{"title":"\u0000"}`,
	} {
		for kind := range uint8(4) {
			f.Add(kind, []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		var v any
		var check func() error
		switch kind % 4 {
		case 0:
			c := &NewCase{}
			v, check = c, c.check
		case 1:
			e := &Evidence{}
			v, check = e, e.check
		case 2:
			p := &NotificationPrefs{}
			v, check = p, func() error { return checkPrefs(p) }
		case 3:
			c := &RoleChange{}
			v, check = c, func() error { return c.check() }
		}
		if json.Unmarshal(data, v) != nil {
			return
		}
		err := check()
		if err != nil {
			var fe *measure.FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("a refusal that names no field: %T %v", err, err)
			}
			return
		}
		once, _ := json.Marshal(v)
		if err := check(); err != nil {
			t.Fatalf("passed once, then refused: %v", err)
		}
		if twice, _ := json.Marshal(v); string(twice) != string(once) {
			t.Fatalf("a second check changed %s into %s", once, twice)
		}
	})
}
