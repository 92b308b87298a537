package authz

import (
	"fmt"
	"slices"
	"testing"
)

// TestCanReadMatrix checks every role against every relation to a subject (own organisation or
// another; named as executor or not; before the Commission or not) against a table written
// out by hand from the need-to-know rules.
func TestCanReadMatrix(t *testing.T) {
	az := Static()
	// want[role] lists the relations that may read, as "org" (same organisation), "named"
	// (named executor), "commission" (put before the Commission), "all".
	want := map[Role][]string{
		Officer: {"org"}, Legal: {"org"}, Commander: {"org"}, Executor: {"named"},
		CommissionSecretariat: {"commission"}, Commissioner: {"commission"}, CommissionChair: {"commission"},
		Auditor: {"all"}, Admin: {},
	}
	n := 0
	for _, role := range Roles {
		for _, sameOrg := range []bool{false, true} {
			for _, named := range []bool{false, true} {
				for _, before := range []bool{false, true} {
					a := Actor{ID: "u-a", Username: "a", Org: "org-a", Roles: []Role{role}}
					s := Subject{Org: "org-b", BeforeCommission: before}
					if sameOrg {
						s.Org = "org-a"
					}
					if named {
						s.NamedExecutors = []string{"u-a"}
					}
					ok := false
					for _, rel := range want[role] {
						ok = ok || rel == "all" || (rel == "org" && sameOrg) || (rel == "named" && named) || (rel == "commission" && before)
					}
					err := az.CanRead(a, s)
					if (err == nil) != ok {
						t.Errorf("%s same-org=%v named=%v before-commission=%v: may read %v, got %v", role, sameOrg, named, before, ok, err)
					}
					n++
				}
			}
		}
	}
	// Mixed agency and Commission roles read nothing, whatever the relation.
	for _, s := range []Subject{{Org: "org-a", BeforeCommission: true, NamedExecutors: []string{"u-a"}}} {
		a := Actor{ID: "u-a", Org: "org-a", Roles: []Role{Officer, Commissioner}}
		if d, ok := az.CanRead(a, s).(*Denied); !ok || d.Rule != "SoD-2" {
			t.Errorf("agency and Commission roles together: %v", az.CanRead(a, s))
		}
		n++
	}
	if n != len(Roles)*8+1 {
		t.Fatal(fmt.Sprint("the matrix covered ", n, " cases"))
	}
	t.Logf("%d read cases", n)
}

// TestScopeAgreesWithCanRead: the filter lists use decides as CanRead does, for every role and
// every relation to a subject, under the default policy and under one that narrows reads.
func TestScopeAgreesWithCanRead(t *testing.T) {
	narrowed := slices.DeleteFunc(DefaultPolicy(), func(r Rule) bool { return r.Op == ReadOwnOrg && r.Role == Legal })
	for name, rules := range map[string][]Rule{"default": DefaultPolicy(), "legal reads nothing": narrowed} {
		actors := []Actor{{ID: "u-a", Org: "org-a", Roles: []Role{Officer, Commissioner}}}
		for _, r := range Roles {
			actors = append(actors, Actor{ID: "u-a", Org: "org-a", Roles: []Role{r}})
		}
		for _, a := range actors {
			var grants []Grant
			for _, r := range a.Roles {
				grants = append(grants, Grant{User: a.ID, Role: r, Org: a.Org})
			}
			az, err := NewAuthorizer(name, rules, grants)
			if err != nil {
				t.Fatal(err)
			}
			readable := 0
			for _, org := range []string{"org-a", "org-b"} {
				for _, named := range [][]string{nil, {"u-b"}, {"u-a", "u-b"}} {
					for _, before := range []bool{false, true} {
						s := Subject{Org: org, NamedExecutors: named, BeforeCommission: before}
						got, want := az.Scope(a).Allows(s), az.CanRead(a, s) == nil
						if got != want {
							t.Errorf("%s: %v on %+v: scope allows %v, CanRead %v", name, a.Roles, s, got, want)
						}
						if want {
							readable++
						}
					}
				}
			}
			if name != "default" && slices.Equal(a.Roles, []Role{Legal}) && readable != 0 {
				t.Errorf("with legal's read rule removed, legal reads %d subjects", readable)
			}
		}
	}
}

// TestReadRulesInPolicies: a proposed policy may narrow reads by leaving a relation out, but
// not deny one, nor let administrators read case content; the default policy passes.
func TestReadRulesInPolicies(t *testing.T) {
	if err := CheckPolicy(DefaultPolicy()); err != nil {
		t.Fatalf("the default policy is refused: %v", err)
	}
	for _, c := range []struct {
		rule Rule
		want string
	}{
		{Rule{Role: Admin, Op: ReadAll, Effect: "allow"}, "SoD-8"},
		{Rule{Role: Admin, Op: ReadOwnOrg, Effect: "allow"}, "SoD-8"},
		{Rule{Role: Officer, Op: ReadSubmitted, Effect: "deny"}, "policy"},
		{Rule{Role: Officer, Op: "read:everything", Effect: "allow"}, "policy"},
	} {
		err := CheckPolicy(append(DefaultPolicy(), c.rule))
		if d, ok := err.(*Denied); !ok || d.Rule != c.want {
			t.Errorf("%+v: got %v, want %s", c.rule, err, c.want)
		}
	}
	// An auditor's "*" denial is of case operations: it leaves the auditor's reads alone.
	a := Actor{ID: "u-aud", Org: "oversight", Roles: []Role{Auditor}}
	if err := Static().CanRead(a, Subject{Org: "npa"}); err != nil {
		t.Errorf("auditor: %v", err)
	}
	if err := Static().CanRead(Actor{ID: "u-adm", Org: "npa", Roles: []Role{Admin}}, Subject{Org: "npa"}); err == nil || err.(*Denied).Rule != "SoD-8" {
		t.Errorf("administrator: %v", err)
	}
}
