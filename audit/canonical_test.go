package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
)

// slowCanonical is the reference: encoding/json, then the jcs transform.
func slowCanonical(t testing.TB, r *Record) []byte {
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jcs.Transform(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type named string

func TestCanonicalMatchesReference(t *testing.T) {
	ts := time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC)
	for _, r := range []*Record{
		{V: 1, Log: LogName, ID: "a", TS: ts, Action: "x", PolicyVersion: "p"},
		{V: 1, Log: LogName, ID: "a", TS: ts, Actor: Actor{ID: "u", Roles: []string{"officer", "legal"}, Org: "npa"}, Action: "vote",
			Case: "c", Measure: "m", Version: 2, From: "A", To: "B", Reason: "quote \" backslash \\ tab \t nl \n ctl \x01 <&> \u2028 日本",
			Details: map[string]any{"b": true, "n": 3, "f": 2.5, "big": float64(1 << 60), "neg": -7, "null": nil, "list": []any{"x", 1.0, map[string]any{"z": 1, "a": "é"}},
				"strs": []string{"a", "b"}, "named": named("k"), "struct": struct{ B, A int }{1, 2}, "€": 1, "\U0001F600": 2, "ｚ": 3}},
	} {
		got, err := r.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if want := slowCanonical(t, r); string(got) != string(want) {
			t.Fatalf("canonical form differs:\n got  %s\n want %s", got, want)
		}
	}
}

// FuzzCanonical: the fast encoder agrees with encoding/json + jcs on any reason, details key
// and value a user can put in a record.
func FuzzCanonical(f *testing.F) {
	f.Add("reason", "key", "value", 1.5, int64(3))
	f.Add("\x00\x1f\"\\", "\u2028", "\xff", 1e21, int64(1)<<60)
	f.Fuzz(func(t *testing.T, reason, key, value string, fl float64, n int64) {
		r := &Record{V: 1, Log: LogName, ID: "id", TS: time.Unix(n%1e10, n%1e9).UTC(), Action: "a", Reason: reason, PolicyVersion: "p",
			Details: map[string]any{key: value, "f": fl, "n": n, key + "2": []any{value, fl}}}
		raw, err := json.Marshal(r)
		if err != nil {
			return // NaN and infinities are not JSON
		}
		want, err := jcs.Transform(raw)
		if err != nil {
			return
		}
		got, err := r.Canonical()
		if err != nil {
			t.Fatalf("fast encoder failed where the reference did not: %v", err)
		}
		if string(got) != string(want) {
			t.Fatalf("canonical form differs:\n got  %q\n want %q", got, want)
		}
	})
}
