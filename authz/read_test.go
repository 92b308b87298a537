package authz

import (
	"fmt"
	"testing"
)

// TestCanReadMatrix checks every role against every relation to a subject (own organisation or
// another; named as executor or not; before the Commission or not) against a table written
// out by hand from the need-to-know rules.
func TestCanReadMatrix(t *testing.T) {
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
					err := CanRead(a, s)
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
		if d, ok := CanRead(a, s).(*Denied); !ok || d.Rule != "SoD-2" {
			t.Errorf("agency and Commission roles together: %v", CanRead(a, s))
		}
		n++
	}
	if n != len(Roles)*8+1 {
		t.Fatal(fmt.Sprint("the matrix covered ", n, " cases"))
	}
	t.Logf("%d read cases", n)
}

// TestScopeAgreesWithCanRead: the filter lists use decides as CanRead does, for every role and
// every relation to a subject.
func TestScopeAgreesWithCanRead(t *testing.T) {
	actors := []Actor{{ID: "u-a", Org: "org-a", Roles: []Role{Officer, Commissioner}}}
	for _, r := range Roles {
		actors = append(actors, Actor{ID: "u-a", Org: "org-a", Roles: []Role{r}})
	}
	for _, a := range actors {
		for _, org := range []string{"org-a", "org-b"} {
			for _, named := range [][]string{nil, {"u-b"}, {"u-a", "u-b"}} {
				for _, before := range []bool{false, true} {
					s := Subject{Org: org, NamedExecutors: named, BeforeCommission: before}
					if got, want := Scope(a).Allows(s), CanRead(a, s) == nil; got != want {
						t.Errorf("%v on %+v: scope allows %v, CanRead %v", a.Roles, s, got, want)
					}
				}
			}
		}
	}
}
