package authz

import (
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestRelationDecides: whenever two measures' facts stand in the same Relation to an actor,
// every operation gets the same decision for both, under the default policy. A rule that came
// to read more of the facts than Relation sums up fails here.
func TestRelationDecides(t *testing.T) {
	now := time.Now()
	people := []string{"u-a", "u-b", "u-c"}
	z := Static()
	rapid.Check(t, func(t *rapid.T) {
		person := func(label string) string { return rapid.SampledFrom(append(people, "")).Draw(t, label) }
		some := func(label string) []string {
			return rapid.SliceOfDistinct(rapid.SampledFrom(people), func(s string) string { return s }).Draw(t, label)
		}
		facts := func(label string) Facts {
			return Facts{Requester: person(label + ".requester"), LegalReviewer: person(label + ".legal"), Commander: person(label + ".commander"),
				Voters: some(label + ".voters"), Recused: some(label + ".recused"), NamedExecutors: some(label + ".named"),
				Executors: some(label + ".executors"), ReportAuthor: person(label + ".author"), Foreign: rapid.Bool().Draw(t, label+".foreign"),
				ForeignMinistry: rapid.Bool().Draw(t, label+".mofa"), Participants: some(label + ".participants")}
		}
		// f2 is f1 with one field drawn afresh; where the relation stayed the same, so must
		// every decision (a relation that forgets something a rule reads fails here).
		f1 := facts("f1")
		f2 := f1
		switch rapid.IntRange(0, 10).Draw(t, "field") {
		case 0:
			f2.Requester = person("f2.requester")
		case 1:
			f2.LegalReviewer = person("f2.legal")
		case 2:
			f2.Commander = person("f2.commander")
		case 3:
			f2.Voters = some("f2.voters")
		case 4:
			f2.Recused = some("f2.recused")
		case 5:
			f2.NamedExecutors = some("f2.named")
		case 6:
			f2.Executors = some("f2.executors")
		case 7:
			f2.ReportAuthor = person("f2.author")
		case 8:
			f2.Foreign = !f2.Foreign
		case 9:
			f2.ForeignMinistry = !f2.ForeignMinistry
		case 10:
			f2.Participants = some("f2.participants")
		}
		for _, role := range Roles {
			for _, scope := range []string{"npa", "prefectural"} { // SoD-4 reads the scope besides the facts
				a := Actor{ID: "u-a", Username: "a", Org: "npa-cyber", Roles: []Role{role}}
				a.Designations = []Designation{{Scope: scope, ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(time.Hour)}}
				if Relation(a, f1) != Relation(a, f2) {
					continue
				}
				for _, op := range Ops {
					e1, e2 := z.Check(op, a, f1, now), z.Check(op, a, f2, now)
					if (e1 == nil) != (e2 == nil) {
						t.Fatalf("%s by %s (%q): %v for %+v but %v for %+v, at the same relation %b", op, role, scope, e1, f1, e2, f2, Relation(a, f1))
					}
				}
			}
		}
	})
}

// TestDesignationPrefersNPA: an executor designated both by a prefecture and by the NPA acts
// abroad under the NPA designation, whichever is listed first (found by mutation testing:
// nothing held the choice).
func TestDesignationPrefersNPA(t *testing.T) {
	now := time.Now()
	valid := func(scope string) Designation {
		return Designation{Scope: scope, ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(time.Hour)}
	}
	abroad := Facts{Requester: "u-o", NamedExecutors: []string{"u-x"}, Foreign: true, ForeignMinistry: true}
	for _, c := range []struct {
		held []Designation
		rule string // "" when allowed
	}{
		{[]Designation{valid("npa"), valid("prefectural")}, ""},
		{[]Designation{valid("prefectural"), valid("npa")}, ""},
		{[]Designation{valid("prefectural")}, "SoD-4"},
		{[]Designation{{Scope: "npa", ValidFrom: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)}, valid("prefectural")}, "SoD-4"},
	} {
		a := Actor{ID: "u-x", Username: "x", Org: "npa-cyber", Roles: []Role{Executor}, Designations: c.held}
		err := SoD(OpStartExecution, a, abroad, now)
		var d *Denied
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("designations %+v abroad: %v", c.held, err)
		case c.rule != "" && (!errors.As(err, &d) || d.Rule != c.rule):
			t.Errorf("designations %+v abroad: %v, want %s", c.held, err, c.rule)
		}
	}
}
