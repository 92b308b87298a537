package authz

import (
	"errors"
	"testing"
	"time"
)

// TestRelationTellsEveryFactApart: My work judges each Relation once and reuses the answer
// for every measure with the same one. Two measures that differ in any one fact Check reads
// about the actor (a reviewer of one of them, a voter on one, a target abroad in one) must
// get different relations, or one measure's answer would be shown for the other.
func TestRelationTellsEveryFactApart(t *testing.T) {
	a := Actor{ID: "u", Roles: []Role{Commissioner}, Org: "o"}
	differs := map[string]func(f *Facts){
		"requester":        func(f *Facts) { f.Requester = "u" },
		"legal reviewer":   func(f *Facts) { f.LegalReviewer = "u" },
		"commander":        func(f *Facts) { f.Commander = "u" },
		"voter":            func(f *Facts) { f.Voters = []string{"u"} },
		"recused":          func(f *Facts) { f.Recused = []string{"u"} },
		"named executor":   func(f *Facts) { f.NamedExecutors = []string{"u"} },
		"executor":         func(f *Facts) { f.Executors = []string{"u"} },
		"report author":    func(f *Facts) { f.ReportAuthor = "u" },
		"foreign":          func(f *Facts) { f.Foreign = true },
		"foreign ministry": func(f *Facts) { f.ForeignMinistry = true },
		"participant":      func(f *Facts) { f.Participants = []string{"u"} },
	}
	base := Facts{Requester: "off", LegalReviewer: "leg", Commander: "cmd", Voters: []string{"m1"}, Recused: []string{"m2"},
		NamedExecutors: []string{"ex"}, Executors: []string{"ex"}, ReportAuthor: "off", Participants: []string{"off"}}
	seen := map[uint16]string{Relation(a, base): "none"}
	for name, change := range differs {
		f := base
		change(&f)
		r := Relation(a, f)
		if other, ok := seen[r]; ok {
			t.Errorf("the actor as %s has the same relation as %s (%b)", name, other, r)
		}
		seen[r] = name
	}
}

// TestPolicyNamesTheDenyRuleThatApplies: a deny rule on one operation names itself only for
// that operation; the same role refused another operation for want of a role is told so.
func TestPolicyNamesTheDenyRuleThatApplies(t *testing.T) {
	rules := append(DefaultPolicy(), Rule{Role: Officer, Op: string(OpWithdraw), Effect: "deny"})
	az, err := NewAuthorizer("v2", rules, []Grant{{User: "off", Role: Officer, Org: "o"}})
	if err != nil {
		t.Fatal(err)
	}
	off := Actor{ID: "off", Roles: []Role{Officer}, Org: "o"}
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var d *Denied
	if err := az.Check(OpWithdraw, off, Facts{Requester: "off"}, now); !errors.As(err, &d) || d.Rule != "policy" {
		t.Fatalf("withdraw under a rule denying it: %v", err)
	}
	if err := az.Check(OpVote, off, Facts{Requester: "x"}, now); !errors.As(err, &d) || d.Rule != "role" {
		t.Fatalf("a vote by an officer: %v, want the role rule (the withdraw denial does not apply)", err)
	}
}

// TestCheckGrantKeepsRolesApart: what an administrator may grant a principal already holding
// roles, and the rule named when it may not.
func TestCheckGrantKeepsRolesApart(t *testing.T) {
	tests := []struct {
		holds []Role
		grant Role
		rule  string // "" when allowed
	}{
		{nil, Officer, ""},
		{[]Role{Officer}, Legal, ""},
		{[]Role{Commissioner}, CommissionChair, ""},
		{nil, Admin, ""},
		{nil, Auditor, ""},
		{[]Role{Admin}, Admin, ""},
		{[]Role{Auditor}, Admin, "SoD-8"},
		{[]Role{Admin}, Auditor, "SoD-8"},
		{[]Role{Officer}, Commissioner, "SoD-2"},
		{[]Role{CommissionChair}, Executor, "SoD-2"},
		{[]Role{Admin}, Officer, "SoD-8"},
		{[]Role{Officer}, Admin, "SoD-8"},
		{[]Role{Auditor}, Commissioner, "SoD-8"},
		{[]Role{Commissioner}, Auditor, "SoD-8"},
		{nil, Role("superuser"), "role"},
	}
	for _, tt := range tests {
		err := CheckGrant(tt.holds, tt.grant)
		var d *Denied
		switch {
		case tt.rule == "" && err != nil:
			t.Errorf("%v + %s: %v", tt.holds, tt.grant, err)
		case tt.rule != "" && (!errors.As(err, &d) || d.Rule != tt.rule):
			t.Errorf("%v + %s: %v, want %s", tt.holds, tt.grant, err, tt.rule)
		case tt.rule != "" && err.Error() != d.Rule+": "+d.Reason:
			t.Errorf("%v + %s: the error reads %q", tt.holds, tt.grant, err)
		}
	}
}
