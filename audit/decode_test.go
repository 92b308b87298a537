package audit

import (
	"encoding/json"
	"fmt"
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
		// Every fact the replay reads, of the records that carry it, at the edges of its type.
		{Actor: Actor{ID: "u-off", Roles: []string{"officer"}}, Action: "submit", Measure: "m-4", Version: 1, From: "DRAFT", To: "LEGAL_REVIEW",
			Details: map[string]any{"digest": "sha256:v1", "executors": []string{"u-ex", "u-ex2"}, "target_values": []string{"198.51.100.7", "c2.example"},
				"foreign": true, "urgent": true, "legal_basis": "sdf_act_communications_protection", "requested_window_ms": 9e3,
				"deadlines": map[string]any{"approval_window": 1209600000, "decision_target": 0, "report_due": 9, "bad": "7"}}},
		{Actor: Actor{ID: "u-cmd", Roles: []string{"commander"}}, Action: "declare_emergency", Measure: "m-5", Version: 1, From: "DRAFT", To: "EMERGENCY_EXECUTING",
			Details: map[string]any{"foreign": false, "urgent": "yes", "requested_window_ms": "1h", "deadlines": []any{1}, "executors": "u-ex"}},
		{Actor: Actor{ID: "system"}, Action: "decide", Measure: "m-4", Version: 1, From: "COMMISSION_REVIEW", To: "APPROVED",
			Details: map[string]any{"tally": map[string]any{"approve": 3, "outcome": "approved"}, "new_version": 0,
				"approval": map[string]any{"conditions": []string{"c"}, "digest": "sha256:v1", "window_end": "2026-12-09T10:00:00Z", "window_start": "2026-11-25T10:00:00Z"}}},
		{Actor: Actor{ID: "system"}, Action: "decide", Measure: "m-6", Version: 1, From: "COMMISSION_REVIEW", To: "DRAFT",
			Details: map[string]any{"tally": "returned", "approval": nil, "new_version": 9}},
		{Actor: Actor{ID: "u-cmd", Roles: []string{"commander"}}, Action: "issue_order", Measure: "m-4", Version: 1, From: "APPROVED", To: "ORDER_ISSUED",
			Details: map[string]any{"order": map[string]any{"addressee": "Example Hosting", "deadline": "2026-11-26T10:00:00Z"}, "gate": 7}},
		{Actor: Actor{ID: "u-cmd", Roles: []string{"commander"}}, Action: "record_gate", Measure: "m-4", Version: 1, From: "GATES", To: "GATES",
			Details: map[string]any{"gate": "foreign_ministry", "order": "none"}},
		{Actor: Actor{ID: "u-m1", Roles: []string{"commissioner"}}, Action: "declare_conflict", Measure: "m-4", Version: 1, From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW",
			Details: map[string]any{"conflicted": true}},
		{Actor: Actor{ID: "u-m2", Roles: []string{"commissioner"}}, Action: "declare_conflict", Measure: "m-4", Version: 1, From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW",
			Details: map[string]any{"conflicted": "true", "vote": 1}},
		{Actor: Actor{ID: "u-adm", Roles: []string{"admin"}}, Action: "policy.proposed",
			Details: map[string]any{"version": "v2", "rule_set": []string{"allow legal legal_review", "deny executor vote"}}},
		{Actor: Actor{ID: "system"}, Action: "designation.issued",
			Details: map[string]any{"designation": "d-1", "user": "u-ex", "scope": "npa", "valid_from": "2026-11-01T00:00:00Z", "valid_until": "2027-11-01T00:00:00Z"}},
		{Actor: Actor{ID: "u-ex", Roles: []string{"executor"}}, Action: "log_steps", Measure: "m-4", Version: 1, From: "EXECUTING", To: "EXECUTING",
			Details: map[string]any{"companions": map[string]any{"step_list": "sha256:00", "targets": ""}, "step_list": []any{}, "targets": []any{}}},
	}
	var out [][]byte
	for i, r := range recs {
		r.ID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
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
		strings.Replace(base, `{"action"`, `{ "action"`, 1),                                                                                // whitespace
		strings.Replace(base, `"action":"log_steps",`, ``, 1) + ` `,                                                                        // trailing space
		strings.Replace(base, `"log":`, `"log":"x","log":`, 1),                                                                             // repeated key
		strings.Replace(base, `"details":{`, `"details":{"companions":{"targets":"sha256:aa"},"companions":{"step_list":"sha256:bb"},`, 1), // a repeated object: the last one counts
		strings.Replace(base, `"action"`, `"Action"`, 1),                                                                                   // case-folded key
		strings.Replace(base, `"v":1`, `"v":1.0`, 1),                                                                                       // non-integer
		strings.Replace(base, `"v":1`, `"v":01`, 1),                                                                                        // leading zero
		strings.Replace(base, `"measure":"m-1"`, `"measure":"m\u002d1"`, 1),                                                                // escape
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
		// Cut off where a number is due: the decoder must not read past its input.
		string(canonical[2][:strings.Index(string(canonical[2]), `"new_version":`)+len(`"new_version":`)]),
		string(canonical[5][:strings.Index(string(canonical[5]), `"report_due":`)+len(`"report_due":`)]),
	}
	for _, s := range others {
		checkDecode(t, []byte(s))
	}
	for _, i := range []int{0, 1, 2, 3} {
		if checkDecode(t, []byte(others[i])) {
			t.Errorf("the fast path took %s", others[i])
		}
	}
	// A record cut off at any byte: refused both ways, the decoder reading nothing past its end.
	for _, raw := range canonical {
		for n := range len(raw) {
			if checkDecode(t, raw[:n:n]) {
				t.Fatalf("the fast path took a record cut off after %d bytes: %s", n, raw[:n])
			}
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

// TestCompanionMatchesEncodingJSON: a list read back from companion data on the fast path is
// the list encoding/json reads, and whatever the fast path is unsure of it leaves alone.
func TestCompanionMatchesEncodingJSON(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		fast       bool // the fast path takes it
	}{
		{"target_values", `["198.51.100.7","c2.example"]`, true},
		{"targets", `["203.0.113.10"]`, true},
		{"targets", `[]`, true},
		{"rule_set", `["allow legal legal_review"]`, true},
		{"step_list", `[{"action":"a","at":"2026-11-25T10:00:00Z","witness":"u-w"},{"witness":"u-x"}]`, true},
		{"step_list", `[{"at":1,"witness":null}]`, true},
		{"targets", `"203.0.113.10"`, true},
		{"targets", `["a",1]`, false},
		{"targets", `["a"] `, false},
		{"targets", `["a"]]`, false},
		{"step_list", `[{"witness":"w","at":"x"}]`, false},
		{"step_list", `["x"]`, false},
		{"unknown", `["a"]`, false},
	} {
		var fast facts
		if got := newDecoder().companion(tt.name, []byte(tt.data), &fast); got != tt.fast {
			t.Errorf("%s %s: fast path took it %v, want %v", tt.name, tt.data, got, tt.fast)
			continue
		}
		for n := range len(tt.data) { // cut off anywhere (short of a whole list): left alone, nothing read past its end
			var part facts
			if cut := []byte(tt.data[:n]); !json.Valid(cut) && newDecoder().companion(tt.name, cut[:n:n], &part) {
				t.Errorf("%s: the fast path took %q", tt.name, cut)
			}
		}
		if !tt.fast {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(tt.data), &v); err != nil {
			t.Fatalf("%s: %v", tt.data, err)
		}
		var slow facts
		slow.TargetValues, slow.Targets, slow.RuleSet = strs(map[string]any{"target_values": v}, "target_values"), strs(map[string]any{"targets": v}, "targets"), strs(map[string]any{"rule_set": v}, "rule_set")
		slow.Steps = stepsOf(v)
		var want facts
		switch tt.name {
		case "target_values":
			want.TargetValues = slow.TargetValues
		case "targets":
			want.Targets = slow.Targets
		case "rule_set":
			want.RuleSet = slow.RuleSet
		case "step_list":
			want.Steps = slow.Steps
		}
		if fmt.Sprint(fast) != fmt.Sprint(want) {
			t.Errorf("%s %s: fast %+v, encoding/json %+v", tt.name, tt.data, fast, want)
		}
	}
}
