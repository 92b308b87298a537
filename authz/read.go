package authz

import "slices"

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

// CanRead decides whether a may read s's content: the people of the owning organisation's
// agency; executors named in it; the Commission once it is put before the Commission;
// auditors (whose reads the caller audits). Administrators read no case content (SoD-8).
// It returns nil or a *Denied with rule "need-to-know" (or SoD-2, SoD-8).
func CanRead(a Actor, s Subject) error {
	agency, commission, auditor := false, false, false
	for _, r := range a.Roles {
		agency = agency || AgencyRole(r)
		commission = commission || CommissionRole(r)
		auditor = auditor || r == Auditor
	}
	switch {
	case agency && commission:
		return deny("SoD-2", "%s holds both agency and Commission roles; neither may be used", a.Username)
	case auditor:
		return nil
	case (a.Has(Officer) || a.Has(Legal) || a.Has(Commander)) && a.Org == s.Org:
		return nil
	case a.Has(Executor) && slices.Contains(s.NamedExecutors, a.ID):
		return nil
	case commission && s.BeforeCommission:
		return nil
	case a.Has(Admin):
		return deny("SoD-8", "administrators have no case powers")
	}
	return deny("need-to-know", "%s may not read this", a.Username)
}

// ReadScope is CanRead as a filter for queries that list: a row is readable when All, or its
// organisation is Org (agency readers), or it names Executor, or (Commission) it is before the
// Commission. The zero value reads nothing.
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

// Scope returns what a may read, as a filter.
func Scope(a Actor) ReadScope {
	var s ReadScope
	agency, commission := false, false
	for _, r := range a.Roles {
		agency = agency || AgencyRole(r)
		commission = commission || CommissionRole(r)
	}
	if agency && commission {
		return s
	}
	s.All = a.Has(Auditor)
	if a.Has(Officer) || a.Has(Legal) || a.Has(Commander) {
		s.Org = a.Org
	}
	if a.Has(Executor) {
		s.Executor = a.ID
	}
	s.Commission = commission
	return s
}

// Reads is the need-to-know rule as a value, for servers that take it as a dependency.
type Reads struct{}

// CanRead is authz.CanRead.
func (Reads) CanRead(a Actor, s Subject) error { return CanRead(a, s) }

// Scope is authz.Scope.
func (Reads) Scope(a Actor) ReadScope { return Scope(a) }
