package authz

import (
	"fmt"
	"slices"
	"strings"
)

// Subject is a case or a measure as the need-to-know rule sees it.
type Subject struct {
	// Org owns the case (and so its measures).
	Org string
	// BeforeCommission is true once the measure has been put before the Commission (a version
	// submitted or an emergency declared); for a case, once any of its measures has.
	BeforeCommission bool
	// NamedExecutors are the executors a sealed version names; for a case, those of any of its
	// measures.
	NamedExecutors []string
}

// Read rules are policy rules like the operations': a role may read the cases and measures
// that stand in a relation to the reader. A rule's op names the relation.
const (
	ReadOwnOrg    = "read:own_org"   // the reader's organisation owns it
	ReadNamed     = "read:named"     // a sealed version names the reader as an executor
	ReadSubmitted = "read:submitted" // it has been put before the Commission
	ReadAll       = "read:all"       // everything (the caller audits each read of content)
)

// ReadOps lists the read relations.
var ReadOps = []string{ReadOwnOrg, ReadNamed, ReadSubmitted, ReadAll}

// defaultReads is DESIGN section 4's need-to-know: an agency's officers, legal reviewers and
// commanders read their organisation's cases; executors what names them; the Commission what
// was put before it; auditors everything; administrators no case content (SoD-8).
var defaultReads = map[string][]Role{
	ReadOwnOrg:    {Officer, Legal, Commander},
	ReadNamed:     {Executor},
	ReadSubmitted: {CommissionSecretariat, Commissioner, CommissionChair},
	ReadAll:       {Auditor},
}

func isRead(op string) bool { return strings.HasPrefix(op, "read:") }

// twoHats reports a principal holding agency and Commission roles together, who may use
// neither (SoD-2).
func twoHats(a Actor) bool {
	return slices.ContainsFunc(a.Roles, AgencyRole) && slices.ContainsFunc(a.Roles, CommissionRole)
}

// relates reports whether s stands in the read relation rel to a. The matcher calls it.
func relates(rel string, a Actor, s Subject) bool {
	if twoHats(a) {
		return false
	}
	switch rel {
	case ReadAll:
		return true
	case ReadOwnOrg:
		return a.Org != "" && s.Org == a.Org
	case ReadNamed:
		return slices.Contains(s.NamedExecutors, a.ID)
	case ReadSubmitted:
		return s.BeforeCommission
	}
	return false
}

// CanRead decides, with the policy in force, whether actor may read s's content. It returns
// nil or a *Denied with rule need-to-know (SoD-2 for a principal holding agency and Commission
// roles, SoD-8 for an administrator).
func (a *Authorizer) CanRead(actor Actor, s Subject) error {
	st := a.current.Load()
	ok, err := st.enforcer.Enforce(actor.ID, actor.Org, "read", &request{actor: actor, subject: s})
	if err != nil {
		return fmt.Errorf("authorize a read: %w", err)
	}
	switch {
	case ok:
		return nil
	case twoHats(actor):
		return deny("SoD-2", "%s holds both agency and Commission roles; neither may be used", actor.Username)
	case slices.Contains(st.enforcer.GetRolesForUserInDomain(actor.ID, actor.Org), string(Admin)):
		return deny("SoD-8", "administrators have no case powers")
	}
	return deny("need-to-know", "%s may not read this (policy %s)", actor.Username, st.version)
}

// ReadScope is CanRead as a filter for queries that list: a row is readable when All, or its
// organisation is Org, or it names Executor, or (Commission) it is before the Commission. The
// zero value reads nothing.
type ReadScope struct {
	All        bool
	Org        string
	Executor   string
	Commission bool
}

// Allows is the scope's decision for one subject; it agrees with CanRead (tested).
func (s ReadScope) Allows(subj Subject) bool {
	return s.All || (s.Org != "" && subj.Org == s.Org) || (s.Executor != "" && slices.Contains(subj.NamedExecutors, s.Executor)) ||
		(s.Commission && subj.BeforeCommission)
}

// Scope returns what actor may read under the policy in force, as a filter. Read rules only
// allow (CheckPolicy refuses read denials), so the scope is the union of the relations the
// actor's roles are allowed.
func (a *Authorizer) Scope(actor Actor) ReadScope {
	var s ReadScope
	if twoHats(actor) {
		return s
	}
	st := a.current.Load()
	roles := st.enforcer.GetRolesForUserInDomain(actor.ID, actor.Org)
	for _, r := range st.rules {
		if r.Effect != "allow" || !slices.Contains(roles, string(r.Role)) {
			continue
		}
		switch r.Op {
		case ReadAll:
			s.All = true
		case ReadOwnOrg:
			s.Org = actor.Org
		case ReadNamed:
			s.Executor = actor.ID
		case ReadSubmitted:
			s.Commission = true
		}
	}
	return s
}

// CanRead is Authorizer.CanRead with the default policy and the actor's own roles as grants.
func (StaticAuthorizer) CanRead(actor Actor, s Subject) error {
	a, err := staticFor(actor)
	if err != nil {
		return err
	}
	return a.CanRead(actor, s)
}

// Scope is Authorizer.Scope with the default policy and the actor's own roles as grants.
func (StaticAuthorizer) Scope(actor Actor) ReadScope {
	a, err := staticFor(actor)
	if err != nil {
		return ReadScope{}
	}
	return a.Scope(actor)
}
