// Package authz decides who may do what to a measure request: which roles may take which
// operation (a Casbin policy with domains and deny-overrides, stored in PostgreSQL and
// versioned), and the separation-of-duties rules of DESIGN section 4 over a measure's history
// (SoD, pure functions the Casbin matcher calls).
//
// The API asks an Authorizer before it sends an Update. The workflow's Update validators call
// SoD again with facts from workflow state (no I/O): the workflow-local invariants are enforced
// twice, from one source.
package authz

import (
	"fmt"
	"slices"
	"time"
)

// Role is a grant held by a principal within its organisation.
type Role string

const (
	Officer               Role = "officer"
	Legal                 Role = "legal"
	Commander             Role = "commander"
	Executor              Role = "executor"
	CommissionSecretariat Role = "commission_secretariat"
	Commissioner          Role = "commissioner"
	CommissionChair       Role = "commission_chair"
	Auditor               Role = "auditor"
	Admin                 Role = "admin"
)

// Roles lists every role, agency roles first.
var Roles = []Role{Officer, Legal, Commander, Executor, CommissionSecretariat, Commissioner, CommissionChair, Auditor, Admin}

// AgencyRole reports whether r is held inside an executing agency.
func AgencyRole(r Role) bool {
	return r == Officer || r == Legal || r == Commander || r == Executor
}

// CommissionRole reports whether r is held inside the Commission.
func CommissionRole(r Role) bool {
	return r == CommissionSecretariat || r == Commissioner || r == CommissionChair
}

// Designation is an executor's designation (サイバー危害防止措置執行官の指名).
type Designation struct {
	Scope      string    `json:"scope"` // npa | prefectural
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
}

// Actor is an authenticated principal, as the server derived it; never taken from a request body.
type Actor struct {
	ID           string        `json:"id"`
	Username     string        `json:"username"`
	Org          string        `json:"org"`
	Roles        []Role        `json:"roles"`
	Designations []Designation `json:"designations,omitempty"`
}

// Has reports whether the actor holds role r.
func (a Actor) Has(r Role) bool { return slices.Contains(a.Roles, r) }

// System is the actor of transitions made by the workflow itself (timers, quorum results).
var System = Actor{ID: "system", Username: "system", Org: "system"}

// Facts is what the rules need to know of one measure's history.
type Facts struct {
	Requester      string   `json:"requester"`
	LegalReviewer  string   `json:"legal_reviewer,omitempty"`
	Commander      string   `json:"commander,omitempty"`
	Voters         []string `json:"voters,omitempty"`  // members who voted on the current version
	Recused        []string `json:"recused,omitempty"` // members who declared a conflict
	NamedExecutors []string `json:"named_executors,omitempty"`
	Executors      []string `json:"executors,omitempty"` // who logged execution steps
	ReportAuthor   string   `json:"report_author,omitempty"`
	Foreign        bool     `json:"foreign,omitempty"` // a target abroad or of unknown location
	// ForeignMinistry is true once the Foreign Minister consultation is recorded.
	ForeignMinistry bool `json:"foreign_ministry,omitempty"`
	// Participants is everyone who acted on the measure, for the post-hoc independence rule.
	Participants []string `json:"participants,omitempty"`
}

// Op is an action a person takes on a measure.
type Op string

const (
	OpSubmit           Op = "submit"
	OpLegalReview      Op = "legal_review"
	OpCommandReview    Op = "command_review"
	OpRecordGate       Op = "record_gate"
	OpDeclareConflict  Op = "declare_conflict"
	OpVote             Op = "vote"
	OpRequestInfo      Op = "request_info"
	OpRespondInfo      Op = "respond_info"
	OpWithdraw         Op = "withdraw"
	OpIssueOrder       Op = "issue_order"
	OpOrderOutcome     Op = "order_outcome"
	OpStartExecution   Op = "start_execution"
	OpLogSteps         Op = "log_steps"
	OpFinishExecution  Op = "finish_execution"
	OpDeclareEmergency Op = "declare_emergency"
	OpNotifyCommission Op = "notify_commission"
	OpPostHocDecision  Op = "post_hoc_decision"
	OpReport           Op = "report"
	OpVerifyReport     Op = "verify_report"
	OpNotify           Op = "notify"
	OpClose            Op = "close"
	// OpEditDraft covers changing a draft's plan, targets and evidence.
	OpEditDraft Op = "edit_draft"
)

// Ops lists every operation, in lifecycle order.
var Ops = []Op{OpEditDraft, OpSubmit, OpLegalReview, OpCommandReview, OpRecordGate, OpDeclareConflict, OpVote,
	OpRequestInfo, OpRespondInfo, OpWithdraw, OpIssueOrder, OpOrderOutcome, OpStartExecution, OpLogSteps,
	OpFinishExecution, OpDeclareEmergency, OpNotifyCommission, OpPostHocDecision, OpReport, OpVerifyReport,
	OpNotify, OpClose}

// Denied is a refusal, naming the rule that refused.
type Denied struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

func (d *Denied) Error() string { return d.Rule + ": " + d.Reason }

func deny(rule, format string, args ...any) error {
	return &Denied{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// defaultRoles lists the roles allowed to take each operation: the policy a new database
// starts with (DefaultPolicy).
var defaultRoles = map[Op][]Role{
	OpEditDraft:        {Officer},
	OpSubmit:           {Officer},
	OpLegalReview:      {Legal},
	OpCommandReview:    {Commander},
	OpRecordGate:       {Commander, Legal},
	OpDeclareConflict:  {Commissioner, CommissionChair},
	OpVote:             {Commissioner, CommissionChair},
	OpRequestInfo:      {Commissioner, CommissionChair, CommissionSecretariat},
	OpRespondInfo:      {Officer},
	OpWithdraw:         {Officer, Commander},
	OpIssueOrder:       {Commander, Officer},
	OpOrderOutcome:     {Officer, Executor},
	OpStartExecution:   {Executor},
	OpLogSteps:         {Executor},
	OpFinishExecution:  {Executor},
	OpDeclareEmergency: {Commander},
	OpNotifyCommission: {Commander, Officer, Legal},
	OpPostHocDecision:  {Commissioner, CommissionChair},
	OpReport:           {Officer, Executor},
	OpVerifyReport:     {Commander, Legal},
	OpNotify:           {Officer, Executor},
	OpClose:            {Officer, Commander},
}

// SoD checks the separation-of-duties rules that depend on who the actor is and on the
// measure's history, whatever the role policy says. It returns nil or a *Denied naming the rule.
func SoD(op Op, a Actor, f Facts, now time.Time) error {
	agency, commission := false, false
	for _, r := range a.Roles {
		agency = agency || AgencyRole(r)
		commission = commission || CommissionRole(r)
	}
	if agency && commission {
		return deny("SoD-2", "%s holds both agency and Commission roles; neither may be used", a.Username)
	}
	switch op {
	case OpEditDraft, OpSubmit, OpRespondInfo:
		if a.ID != f.Requester {
			return deny("requester", "only the requester may %s this measure", op)
		}
	case OpLegalReview:
		if a.ID == f.Requester {
			return deny("SoD-1", "the legal reviewer must differ from the requester")
		}
	case OpCommandReview:
		if a.ID == f.Requester {
			return deny("SoD-1", "the commander must differ from the requester")
		}
		if a.ID == f.LegalReviewer {
			return deny("SoD-1", "the commander must differ from the legal reviewer")
		}
	case OpVote, OpRequestInfo, OpDeclareConflict:
		if a.ID == f.Requester || a.ID == f.LegalReviewer || a.ID == f.Commander {
			return deny("SoD-1", "%s requested or reviewed this measure in the agency and cannot act for the Commission on it", a.Username)
		}
		// A recused member takes no part in the Commission's review: no vote, no request, and
		// the declaration stands for the whole request (none after it, either way).
		if slices.Contains(f.Recused, a.ID) {
			return deny("SoD-3", "%s declared a conflict on this request and is recused", a.Username)
		}
		if op == OpDeclareConflict {
			break
		}
		if op == OpVote && slices.Contains(f.Voters, a.ID) {
			return deny("SoD-3", "%s has already voted on this version", a.Username)
		}
	case OpStartExecution, OpLogSteps, OpFinishExecution:
		if !slices.Contains(f.NamedExecutors, a.ID) {
			return deny("SoD-4", "%s is not an executor named in the approved version", a.Username)
		}
		d, ok := validDesignation(a, now)
		if !ok {
			return deny("SoD-4", "%s holds no valid executor designation at %s", a.Username, now.UTC().Format(time.RFC3339))
		}
		if f.Foreign && d.Scope != "npa" {
			return deny("SoD-4", "a target abroad or of unknown location needs an NPA-scope executor; %s is %s", a.Username, d.Scope)
		}
		if f.Foreign && !f.ForeignMinistry {
			return deny("SoD-4", "a target abroad or of unknown location needs a recorded Foreign Minister consultation")
		}
	case OpNotifyCommission:
		if slices.Contains(f.Executors, a.ID) {
			return deny("SoD-6", "the post-hoc notification must be filed by someone other than the executor")
		}
	case OpPostHocDecision:
		if slices.Contains(f.Participants, a.ID) {
			return deny("SoD-6", "post-hoc reviewers must have had no part in the measure")
		}
		if slices.Contains(f.Recused, a.ID) {
			return deny("SoD-3", "%s declared a conflict on this request and is recused", a.Username)
		}
	case OpVerifyReport:
		if a.ID == f.ReportAuthor {
			return deny("SoD-7", "the report must be verified by someone other than its author")
		}
	}
	return nil
}

func validDesignation(a Actor, now time.Time) (Designation, bool) {
	var best Designation
	found := false
	for _, d := range a.Designations {
		if !now.Before(d.ValidFrom) && now.Before(d.ValidUntil) {
			if !found || d.Scope == "npa" {
				best, found = d, true
			}
		}
	}
	return best, found
}

// CheckGrant decides whether a principal holding roles may also be given role: agency and
// Commission roles never meet in one principal (SoD-2), administrators and auditors hold no
// case role, and nobody is both administrator and auditor (SoD-8): two administrators could
// otherwise make one of themselves the reader of every case.
func CheckGrant(roles []Role, role Role) error {
	all := append(slices.Clone(roles), role)
	agency, commission, reader := false, false, false
	for _, r := range all {
		agency = agency || AgencyRole(r)
		commission = commission || CommissionRole(r)
		reader = reader || r == Admin || r == Auditor
	}
	switch {
	case !slices.Contains(Roles, role):
		return deny("role", "%q is not a role", role)
	case agency && commission:
		return deny("SoD-2", "one principal cannot hold both agency and Commission roles (%v)", all)
	case reader && (agency || commission):
		return deny("SoD-8", "administrators and auditors hold no case role (%v)", all)
	case slices.Contains(all, Admin) && slices.Contains(all, Auditor):
		return deny("SoD-8", "one principal cannot be both administrator and auditor (%v)", all)
	}
	return nil
}

// Relation sums up what of a measure's facts a decision on a depends on: a's own part in the
// measure and whether a target is abroad (SoD reads nothing else of them, and the role policy
// none). Check answers two facts with the same Relation to a alike at the same time, so a
// caller judging many measures at once (My work) may judge each relation once.
func Relation(a Actor, f Facts) uint16 {
	var r uint16
	for i, b := range []bool{a.ID == f.Requester, a.ID == f.LegalReviewer, a.ID == f.Commander, slices.Contains(f.Voters, a.ID),
		slices.Contains(f.Recused, a.ID), slices.Contains(f.NamedExecutors, a.ID), slices.Contains(f.Executors, a.ID),
		a.ID == f.ReportAuthor, f.Foreign, f.ForeignMinistry, slices.Contains(f.Participants, a.ID)} {
		if b {
			r |= 1 << i
		}
	}
	return r
}
