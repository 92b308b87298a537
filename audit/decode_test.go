package audit

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleRecords are records as the log writes them, in canonical form.
func sampleRecords(t testing.TB) [][]byte {
	ts := time.Date(2026, 11, 25, 9, 30, 0, 123456789, time.UTC)
	recs := []*Record{
		{Actor: Actor{ID: "u-exec", Roles: []string{"executor"}, Org: "npa-cyber"}, Action: "log_steps", Measure: "m-1", Version: 2,
			From: "EXECUTING", To: "EXECUTING", Details: map[string]any{"step_list": []any{map[string]any{"at": "2026-11-25T10:00:00Z", "result": "success", "target": "203.0.113.10", "witness": "u-w"}},
				"targets": []string{"203.0.113.10"}}},
		{Actor: Actor{ID: "u-chair", Roles: []string{"commission_chair", "commissioner"}, Org: "commission"}, Action: "vote", Measure: "m-1",
			Version: 3, Reason: "理由: 必要かつ相当", Details: map[string]any{"digest": "sha256:ab", "vote": "approve", "n": 1.5e300}},
		{Actor: Actor{ID: "u-off", Roles: []string{}, Org: "npa"}, Action: "plan.updated", Case: "c-1", Measure: "m-2",
			Details: map[string]any{"new_version": 2.0, "nested": map[string]any{"a": []any{true, false, nil, "x\"y\\z\n\u0001"}}}},
		{Actor: Actor{ID: "system"}, Action: "audit.key_added", Details: map[string]any{"vkey": "takedown+abcd+AQ=="}},
		{Actor: Actor{ID: "u-1", Roles: []string{"officer"}}, Action: "measure.created", Measure: "m-3", Reason: "a \"quoted\" reason"},
	}
	var out [][]byte
	for i, r := range recs {
		r.ID = "00000000-0000-4000-8000-00000000000" + string(rune('0'+i))
		r.TS = ts.Add(time.Duration(i) * time.Hour)
		r.V, r.Log, r.PolicyVersion = Version, LogName, "v7"
		c, err := r.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// checkDecode decodes raw both ways and fails if the fast path accepted what encoding/json
// refuses or decodes differently. It reports whether the fast path took the record.
func checkDecode(t *testing.T, raw []byte) bool {
	var slow entry
	slowErr := slow.decodeSlow(raw)
	var fast entry
	d := newDecoder()
	if !d.record(raw, &fast) {
		return false
	}
	if slowErr != nil {
		t.Fatalf("fast path accepted %q; encoding/json: %v", raw, slowErr)
	}
	fast = entry{}
	if err := d.decode(raw, &fast); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("decoded %q differently:\nfast %#v\nslow %#v", raw, fast, slow)
	}
	return true
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	canonical := sampleRecords(t)
	for _, raw := range canonical {
		if !checkDecode(t, raw) {
			t.Errorf("the fast path refused a canonical record: %s", raw)
		}
	}
	// Other forms: each must either be refused by the fast path or decoded as encoding/json does.
	base := string(canonical[0])
	others := []string{
		strings.Replace(base, `{"action"`, `{ "action"`, 1),                 // whitespace
		strings.Replace(base, `"action":"log_steps",`, ``, 1) + ` `,         // trailing space
		strings.Replace(base, `"log":`, `"log":"x","log":`, 1),              // repeated key
		strings.Replace(base, `"action"`, `"Action"`, 1),                    // case-folded key
		strings.Replace(base, `"v":1`, `"v":1.0`, 1),                        // non-integer
		strings.Replace(base, `"v":1`, `"v":01`, 1),                         // leading zero
		strings.Replace(base, `"measure":"m-1"`, `"measure":"m\u002d1"`, 1), // escape
		strings.Replace(base, `"measure":"m-1"`, `"measure":"m`+"\xff"+`"`, 1),
		strings.Replace(base, `"measure":"m-1"`, `"measure":null`, 1),
		strings.Replace(base, `"details":{`, `"details":{"x":01,`, 1),
		strings.Replace(base, `"details":{`, `"details":{"x":[1,],`, 1),
		strings.Replace(base, `"details":{`, `"details":{"x":"\q",`, 1),
		strings.Replace(base, `"details":{`, `"details":{"x":-,`, 1),
		strings.Replace(base, `"details":{`, `"details":{"x":1e,`, 1),
		strings.Replace(base, `"details":{`, `"details":{"x":tru,`, 1),
		strings.Replace(base, `"details":{`, `"details":{"x":"\u12",`, 1),
		strings.Replace(base, `"ts":"2026`, `"ts":"2026x`, 1),
		strings.Replace(base, `"roles":["executor"]`, `"roles":["executor","legal"]`, 1),
		strings.Replace(base, `"roles":["executor"]`, `"roles":[]`, 1),
		strings.Replace(base, `"roles":["executor"]`, `"roles":["a,b","c"]`, 1),
		strings.Replace(base, `"roles":["executor"]`, `"roles":"executor"`, 1),
		strings.Replace(base, `"org":"npa-cyber"`, `"org":"npa-cyber","zz":1`, 1),
		// Details of other types than the replay expects count as absent, both ways.
		strings.Replace(base, `"details":{`, `"details":{"conflicted":"yes","digest":5,"executors":["a",1],"new_version":"2",`, 1),
		strings.Replace(base, `"details":{`, `"details":{"approval":[1],"conflicted":true,"digest":null,"executors":"a","new_version":2.5,`, 1),
		strings.Replace(base, `"targets":[`, `"targets":[1,`, 1),
		strings.Replace(base, `"step_list":[`, `"step_list":[1,`, 1),
		strings.Replace(base, `"details":{"step_list":[`, `"details":{"step_list":{"at":"x"},"x":[`, 1),
		strings.Replace(base, `"details":{"step_list":[`, `"details":{"step_list":[{"at":5,"witness":"w","x":[{}]}],"x":[`, 1),
		strings.Replace(base, `"details":{"step_list":[`, `"details":{"approval":{"digest":"d","window_end":"e"},"step_list":[`, 1),
		strings.Replace(base, `"details":{"step_list":[`, `"details":{"Digest":"d","digest":"e","step_list":[`, 1),
		strings.Replace(base, `"details":{"step_list":[`, `"details":{"digest":"e","digest":"f","step_list":[`, 1),
		strings.Replace(base, `"targets":["203.0.113.10"]`, `"tally":{"outcome":"approved","votes":{"a":1}},"targets":[]`, 1),
		`{}`, `{"v":1}`, `[]`, ``, `{`, `{"v":1}}`, `{"v":1,}`, `{,}`,
		base[:len(base)-1],
	}
	for _, s := range others {
		checkDecode(t, []byte(s))
	}
	for _, i := range []int{0, 1, 2, 3} {
		if checkDecode(t, []byte(others[i])) {
			t.Errorf("the fast path took %s", others[i])
		}
	}
	// Values of unexpected types in details count as absent on the fast path too.
	for _, s := range []string{
		strings.Replace(base, `"details":{`, `"details":{"conflicted":"yes","digest":5,"executors":{"a":1},"new_version":"2",`, 1),
		strings.Replace(base, `"details":{`, `"details":{"approval":[1],"conflicted":true,"digest":null,"executors":"a","new_version":2.5,`, 1),
		strings.Replace(base, `"details":{"step_list":[`, `"details":{"step_list":[{"at":5,"witness":"w","x":[{}]}],"su":[`, 1),
	} {
		if !checkDecode(t, []byte(s)) {
			t.Errorf("the fast path refused %s", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, raw := range sampleRecords(f) {
		f.Add(raw)
	}
	f.Add([]byte(`{"actor":{"roles":["a","b"]},"details":{"a":[{"b":null}],"c":-0.5e+3},"v":-0}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkDecode(t, raw)
	})
}

func BenchmarkDecode(b *testing.B) {
	recs := sampleRecords(b)
	b.Run("fast", func(b *testing.B) {
		d := newDecoder()
		for i := range b.N {
			var r entry
			if err := d.decode(recs[i%len(recs)], &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for i := range b.N {
			var r entry
			if err := r.decodeSlow(recs[i%len(recs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
