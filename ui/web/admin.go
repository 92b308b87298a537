package web

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// signIn says how a user signs in.
func signIn(lang string, u service.User) string {
	switch {
	case u.SSO:
		return "SSO"
	case u.Enrolled:
		return T(lang, "password")
	}
	return T(lang, "not enrolled")
}

// changeSummary is what an account change touches, in one line.
func changeSummary(c service.RoleChange) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("user", c.User)
	add("role", string(c.Role))
	add("scope", c.Scope)
	add("designation", c.DesignationID)
	if c.ValidFrom != nil {
		add("from", when(*c.ValidFrom))
	}
	if c.ValidUntil != nil {
		add("until", when(*c.ValidUntil))
	}
	if a := c.Account; a != nil {
		add("org", a.OrgID)
		add("org_name", a.OrgName)
		add("org_kind", a.OrgKind)
		add("username", a.Username)
		add("name", a.DisplayName)
	}
	return strings.Join(parts, " ")
}

// rulesCSV is a rule set as the policy form takes it.
func rulesCSV(rules []authz.Rule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "%s,%s,%s\n", r.Role, r.Op, r.Effect)
	}
	return b.String()
}

// ruleChanges lists the rules a proposed version adds to the policy in force and those it
// drops: what an approver reads before approving it.
func ruleChanges(current, next []authz.Rule) (added, dropped []authz.Rule) {
	for _, r := range next {
		if !slices.Contains(current, r) {
			added = append(added, r)
		}
	}
	for _, r := range current {
		if !slices.Contains(next, r) {
			dropped = append(dropped, r)
		}
	}
	return added, dropped
}

// signsAny says whether a policy requires any decision to be signed personally.
func signsAny(rules []authz.Rule) bool {
	return slices.ContainsFunc(rules, func(r authz.Rule) bool { return r.Effect == "sign" })
}

// adminPage is the administration page: accounts for administrators and auditors; for
// administrators also the changes and policy versions waiting on a second one, and forms to
// propose more.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	s.showAdmin(w, r, http.StatusOK, nil, adminView{})
}

func (s *Server) showAdmin(w http.ResponseWriter, r *http.Request, status int, refused error, v adminView) {
	a := actorOf(r)
	ctx := r.Context()
	p := s.frame(r, "administration")
	v.Me, v.Admin, v.Policy = a.ID, a.Has(authz.Admin), s.Policy()
	if v.Admin {
		v.Sign = s.signingFor(r, []authz.Op{authz.OpApproveKey, authz.OpApprovePolicy, authz.OpApproveRoleChange})
	}
	var err error
	if v.Users, err = s.Users(ctx, a, service.Page{Limit: service.MaxPage}); err != nil {
		p.Error, status = s.problemOf(r, p.Lang, err)
		s.render(w, r, status, layout(p))
		return
	}
	if v.Admin {
		if v.Pending, err = s.PendingChanges(ctx, a); err == nil {
			v.Policies, err = s.PendingPolicies(ctx, a)
		}
		if err == nil {
			v.Keys, err = s.Keys(ctx, a, "")
		}
		if err != nil && refused == nil {
			refused = err
		}
	}
	if refused != nil {
		p.Error, status = s.problemOf(r, p.Lang, refused)
	}
	s.render(w, r, status, adminPage(p, v))
}

// proposeChange proposes an account change from the form.
func (s *Server) proposeChange(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	c := service.RoleChange{Kind: f("kind"), User: f("user"), Role: authz.Role(f("role")), Scope: f("scope"),
		DesignationID: f("designation"), Reason: f("reason")}
	if c.Kind == "create_org" || c.Kind == "create_user" {
		c.Account = &service.Account{OrgID: f("org_id"), OrgName: f("org_name"), OrgKind: f("org_kind"), Username: f("username"), DisplayName: f("display_name")}
	}
	for _, d := range []struct {
		name string
		to   **time.Time
	}{{"valid_from", &c.ValidFrom}, {"valid_until", &c.ValidUntil}} {
		if v := f(d.name); v != "" {
			t, err := time.ParseInLocation(time.DateOnly, v, service.JST)
			if err != nil {
				err := &measure.FieldError{Field: d.name, Message: "must be a date, e.g. 2026-10-01"}
				s.Refused(r.Context(), actorOf(r), service.On{}, "role_change.propose", err)
				s.showAdmin(w, r, http.StatusBadRequest, err, adminView{})
				return
			}
			*d.to = &t
		}
	}
	if _, err := s.ProposeRoleChange(r.Context(), actorOf(r), c); err != nil {
		s.showAdmin(w, r, 0, err, adminView{})
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "proposed"))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// approveChange approves another administrator's proposal; a created user's enrolment code is
// shown on the answer, once, and never stored in the session.
func (s *Server) approveChange(w http.ResponseWriter, r *http.Request) {
	sig, err := approvalSignature(r)
	if err != nil {
		s.Refused(r.Context(), actorOf(r), service.On{}, "role_change.approve", err)
		s.showAdmin(w, r, http.StatusBadRequest, err, adminView{})
		return
	}
	c, err := s.ApproveRoleChange(r.Context(), actorOf(r), r.PathValue("id"), sig)
	if err != nil {
		s.showAdmin(w, r, 0, err, adminView{})
		return
	}
	if c.EnrolmentCode != "" {
		v := adminView{Code: c.EnrolmentCode}
		if c.Account != nil {
			v.CodeFor = c.Account.Username
		}
		s.showAdmin(w, r, http.StatusOK, nil, v)
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// proposePolicy proposes a complete rule set from the form's lines.
func (s *Server) proposePolicy(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	var rules []authz.Rule
	rows, err := csv.NewReader(strings.NewReader(strings.TrimSpace(r.PostFormValue("rules")))).ReadAll()
	for i, row := range rows {
		if len(row) != 3 {
			err = &measure.FieldError{Field: fmt.Sprintf("rules[%d]", i), Message: "needs 3 columns: role,op,allow|deny|sign"}
			break
		}
		rules = append(rules, authz.Rule{Role: authz.Role(strings.TrimSpace(row[0])), Op: strings.TrimSpace(row[1]), Effect: strings.TrimSpace(row[2])})
	}
	if err != nil {
		if _, ok := err.(*measure.FieldError); !ok {
			err = &measure.FieldError{Field: "rules", Message: "is not CSV: " + err.Error()}
		}
		s.Refused(r.Context(), actorOf(r), service.On{}, "policy.propose", err)
		s.showAdmin(w, r, http.StatusBadRequest, err, adminView{})
		return
	}
	version, err := s.ProposePolicy(r.Context(), actorOf(r), rules, r.PostFormValue("reason"))
	if err != nil {
		s.showAdmin(w, r, 0, err, adminView{})
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "proposed")+" "+version)
	http.Redirect(w, r, "/admin#policy", http.StatusSeeOther)
}

// proposeSigningPolicy proposes the signing policy: the default roles with every decision,
// batch of steps and approval signed personally.
func (s *Server) proposeSigningPolicy(w http.ResponseWriter, r *http.Request) {
	version, err := s.ProposePolicy(r.Context(), actorOf(r), authz.SigningPolicy(), T(language(r), "signing policy reason"))
	if err != nil {
		s.showAdmin(w, r, 0, err, adminView{})
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "proposed")+" "+version)
	http.Redirect(w, r, "/admin#policy", http.StatusSeeOther)
}

// approvePolicy puts another administrator's proposed version in force.
func (s *Server) approvePolicy(w http.ResponseWriter, r *http.Request) {
	sig, err := approvalSignature(r)
	if err != nil {
		s.Refused(r.Context(), actorOf(r), service.On{}, "policy.approve", err)
		s.showAdmin(w, r, http.StatusBadRequest, err, adminView{})
		return
	}
	if _, err := s.ApprovePolicy(r.Context(), actorOf(r), r.PathValue("version"), sig); err != nil {
		s.showAdmin(w, r, 0, err, adminView{})
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/admin#policy", http.StatusSeeOther)
}
