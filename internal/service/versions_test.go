package service

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/takedown/takedown/internal/measure"
)

// reordered is a plan as PostgreSQL's jsonb gives it back: keys in another order, and <, >
// and & escaped as encoding/json escapes them.
func reordered(t *rapid.T, p measure.Plan) []byte {
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	alts, _ := m["alternatives"].([]any)
	for i, a := range alts {
		// Members of nested objects in reverse order, written by hand.
		o := a.(map[string]any)
		b, _ := json.Marshal(o["reason"])
		c, _ := json.Marshal(o["outcome"])
		d, _ := json.Marshal(o["means"])
		alts[i] = json.RawMessage(`{"reason":` + string(b) + `,"outcome":` + string(c) + `,"means":` + string(d) + `}`)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func drawPlan(t *rapid.T) measure.Plan {
	text := rapid.SampledFrom([]string{"", "block <c2> & stop", "理由：必要", "plain", "a\nb", `"quoted"`})
	return measure.Plan{
		Title: text.Draw(t, "title"), LegalBasis: rapid.SampledFrom([]string{"police_duties_act_6_2", "sdf_act_communications_protection"}).Draw(t, "basis"),
		Kind: measure.Kind(rapid.SampledFrom([]string{"self_execute", "order_administrator"}).Draw(t, "kind")), Technique: "disable_malware",
		Operations:            rapid.SliceOfN(text, 0, 3).Draw(t, "operations"),
		SelfExecutionFallback: rapid.Bool().Draw(t, "fallback"), RequestedWindow: measure.Duration(time.Duration(rapid.IntRange(0, 3).Draw(t, "window")) * time.Hour),
		Executors:    rapid.SliceOfN(rapid.SampledFrom([]string{"u-ex", "u-ex2"}), 0, 2).Draw(t, "executors"),
		RollbackPlan: text.Draw(t, "rollback"), DataHandling: text.Draw(t, "data"),
		Alternatives: rapid.SliceOfN(rapid.Custom(func(t *rapid.T) measure.Alternative {
			return measure.Alternative{Means: text.Draw(t, "means"), Outcome: "tried", Reason: text.Draw(t, "reason")}
		}), 0, 2).Draw(t, "alternatives"),
		Necessity: text.Draw(t, "necessity"), Proportionality: text.Draw(t, "proportionality"), Collateral: text.Draw(t, "collateral"),
		NotificationPlan: text.Draw(t, "notification"), EmergencyJustify: text.Draw(t, "emergency"), Urgent: rapid.Bool().Draw(t, "urgent"),
	}
}

// TestFieldChangesShowExactlyWhatChanged: a resubmission with no change shows none, however the
// stored version orders and escapes it; a change to one field shows that field alone.
func TestFieldChangesShowExactlyWhatChanged(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawPlan(t)
		now, _ := json.Marshal(p)
		got, err := fieldChanges(reordered(t, p), now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("an unchanged plan shows changes: %+v", got)
		}

		q := drawPlan(t)
		names := map[string]bool{}
		pv, qv := reflect.ValueOf(p), reflect.ValueOf(q)
		for i := range pv.NumField() {
			if !reflect.DeepEqual(pv.Field(i).Interface(), qv.Field(i).Interface()) {
				name, _, _ := strings.Cut(reflect.TypeOf(p).Field(i).Tag.Get("json"), ",")
				names[name] = true
			}
		}
		next, _ := json.Marshal(q)
		got, err = fieldChanges(reordered(t, p), next)
		if err != nil {
			t.Fatal(err)
		}
		var shown []string
		for _, c := range got {
			shown = append(shown, c.Field)
			if c.Old == c.New {
				t.Fatalf("%s shown as changed from %q to itself", c.Field, c.Old)
			}
			for _, s := range []string{c.Old, c.New} {
				if slices.ContainsFunc([]string{`\u003c`, `\u003e`, `\u0026`}, func(esc string) bool { return strings.Contains(s, esc) }) {
					t.Fatalf("%s shown escaped: %q", c.Field, s)
				}
			}
		}
		for n := range names {
			// An empty list and a missing one read the same; so do nil and empty operations.
			if !slices.Contains(shown, n) && !sameToReader(pv, qv, n) {
				t.Fatalf("%s changed but is not shown (shown: %v)", n, shown)
			}
		}
		for _, n := range shown {
			if !names[n] {
				t.Fatalf("%s shown as changed but is the same (changed: %v)", n, names)
			}
		}
	})
}

// sameToReader reports whether the field named differs only as nil differs from empty.
func sameToReader(p, q reflect.Value, name string) bool {
	for i := range p.NumField() {
		if n, _, _ := strings.Cut(p.Type().Field(i).Tag.Get("json"), ","); n == name {
			a, b := p.Field(i), q.Field(i)
			return a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0
		}
	}
	return false
}
