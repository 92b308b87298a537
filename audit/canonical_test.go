package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/takedown/takedown/internal/measure"
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

// FuzzStepCanonical: execution steps, written directly, come out as encoding/json and jcs
// write them, alone and in a batch (the batch's content digest depends on it).
func FuzzStepCanonical(f *testing.F) {
	f.Add("203.0.113.10", "block_c2", "null-routed", "success", "u-1", int64(1780000000), int64(5))
	f.Add("\x00<&>\u2028\"\\", "\xff", "例え.jp", "", "", int64(-62135596800), int64(0))
	f.Add("a", "b", "c", "d", "e", int64(253402300800), int64(999999999))
	f.Fuzz(func(t *testing.T, target, technique, action, result, witness string, sec, nsec int64) {
		st := measure.Step{Target: target, Technique: technique, Action: action, Result: result, Witness: witness,
			At: time.Unix(sec%(1<<40), nsec%1e9).In(time.FixedZone("x", int(sec%50000)))}
		for _, v := range []any{st, []measure.Step{st, st}} {
			raw, err := json.Marshal(v)
			if err != nil {
				if _, ferr := appendValue(nil, v); ferr == nil {
					t.Fatalf("fast encoder wrote %v, which encoding/json refuses (%v)", v, err)
				}
				continue
			}
			want, err := jcs.Transform(raw)
			if err != nil {
				continue
			}
			got, err := appendValue(nil, v)
			if err != nil {
				t.Fatalf("fast encoder failed where the reference did not: %v", err)
			}
			if string(got) != string(want) {
				t.Fatalf("canonical form differs:\n got  %s\n want %s", got, want)
			}
		}
	})
}
