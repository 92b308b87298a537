package audit

import (
	"slices"
	"strings"
	"time"

	"github.com/takedown/takedown/internal/measure"
)

// entry is what the rules replay reads of a record, with its log index.
type entry struct {
	Index   int64
	V       int
	salted  bool // carries a salt of the form NewSalt makes
	TS      time.Time
	Actor   Actor
	Action  string
	Measure string
	Version int
	From    string
	To      string
	Policy  string // the authorization policy version the action was checked under
	Reason  string // read only from records decoded by encoding/json: those with a signature
	facts   facts  // from the details
}

// needsDetails lists the actions whose details the replay reads; other records' details are
// left undecoded, which roughly halves the cost of verifying a large log.
var needsDetails = map[string]bool{"submit": true, "declare_emergency": true, "vote": true, "decide": true,
	"log_steps": true, "declare_conflict": true, "record_gate": true, "issue_order": true, "policy.proposed": true, "policy.approved": true,
	"designation.issued": true, "designation.revoked": true, RestartAction: true,
	"key.proposed": true, "key.registered": true, "key.revoked": true,
	// Account changes, for the change each proposes or applies.
	"role_change.proposed": true, "role.granted": true, "role.revoked": true,
	"organisation.created": true, "user.created": true, "user.retired": true,
	// Every decision on a version, for the digest it names.
	"legal_review": true, "command_review": true, "request_info": true, "post_hoc_decision": true, "verify_report": true}

// transitions lists, for each recorded action, the stages it may leave. It is written from
// DESIGN section 4 independently of the workflow's code, so the replay checks the workflow
// rather than repeating it.
var transitions = map[string][]string{
	"submit":            {"DRAFT"},
	"legal_review":      {"LEGAL_REVIEW"},
	"command_review":    {"COMMAND_REVIEW"},
	"gates_satisfied":   {"GATES"},
	"record_gate":       {"GATES", "EMERGENCY_EXECUTING"},
	"declare_conflict":  {"COMMISSION_REVIEW", "INFO_REQUESTED", "COMMISSION_NOTIFIED"},
	"vote":              {"COMMISSION_REVIEW"},
	"decide":            {"COMMISSION_REVIEW"},
	"request_info":      {"COMMISSION_REVIEW"},
	"respond_info":      {"INFO_REQUESTED"},
	"withdraw":          {"DRAFT", "LEGAL_REVIEW", "COMMAND_REVIEW", "GATES", "COMMISSION_REVIEW", "INFO_REQUESTED", "APPROVED", "ORDER_ISSUED"},
	"issue_order":       {"APPROVED"},
	"order_outcome":     {"ORDER_ISSUED"},
	"start_execution":   {"APPROVED", "ORDER_ISSUED"},
	"log_steps":         {"EXECUTING", "EMERGENCY_EXECUTING"},
	"finish_execution":  {"EXECUTING", "EMERGENCY_EXECUTING"},
	"declare_emergency": {"DRAFT", "LEGAL_REVIEW", "COMMAND_REVIEW", "GATES"},
	"notify_commission": {"EXECUTED"},
	"post_hoc_decision": {"COMMISSION_NOTIFIED"},
	"report":            {"EXECUTED", "POST_HOC_REVIEWED"},
	"verify_report":     {"REPORTED"},
	"notify":            {"NOTIFYING"},
	"close":             {"NOTIFYING"},
}

// roles lists who may take each recorded action (DESIGN section 4); "system" is the workflow.
var roles = map[string][]string{
	"submit": {"officer"}, "legal_review": {"legal"}, "command_review": {"commander"}, "record_gate": {"commander", "legal"},
	"declare_conflict": {"commissioner", "commission_chair"}, "vote": {"commissioner", "commission_chair"},
	"request_info": {"commissioner", "commission_chair", "commission_secretariat"}, "respond_info": {"officer"},
	"withdraw": {"officer", "commander"}, "issue_order": {"commander", "officer"}, "order_outcome": {"officer", "executor"},
	"start_execution": {"executor"}, "log_steps": {"executor"}, "finish_execution": {"executor"},
	"declare_emergency": {"commander"}, "notify_commission": {"commander", "officer", "legal"},
	"post_hoc_decision": {"commissioner", "commission_chair"}, "report": {"officer", "executor"},
	"verify_report": {"commander", "legal"}, "notify": {"officer", "executor"}, "close": {"officer", "commander"},
	"measure.created": {"officer"}, "targets.added": {"officer"}, "targets.removed": {"officer"}, "evidence.added": {"officer"}, "plan.updated": {"officer"},
}

// judging lists the actions that judge a version: each names the digest judged, which must be
// the one sealed for its version.
var judging = map[string]bool{"legal_review": true, "command_review": true, "record_gate": true, "declare_conflict": true,
	"vote": true, "request_info": true, "post_hoc_decision": true, "verify_report": true}

var agencyRoles = []string{"officer", "legal", "commander", "executor"}
var commissionRoles = []string{"commission_secretariat", "commissioner", "commission_chair"}

func hasAny(roles, set []string) bool {
	return slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(set, r) })
}

// measureState is what the replay knows of one measure so far.
type measureState struct {
	stage     string
	requester string
	version   int
	digest    map[int]string          // sealed digest by version
	executors map[int][]string        // named executors by version
	targets   map[int]map[string]bool // target values by version, when the seal lists them
	legal     map[int]string
	commander map[int]string
	votes     map[int][]entry
	recused   []string
	approval  *approvalRec
	emergency time.Time
	reportBy  string
	executed  []string

	foreign    map[int]bool
	legalBasis map[int]string
	urgent     map[int]bool
	requested  map[int]int64 // requested window by version, milliseconds
	gates      map[int][]string
	// participants acted on the measure (not the system, not a conflict declaration): none of
	// them may review it after the fact.
	participants []string
	// deadlines are the measure's own, as its seal recorded them (milliseconds by name); fired
	// holds the deadlines recorded, by name and version.
	deadlines  map[string]int64
	timers     measure.Timers // the same, as durations
	fired      map[firing]bool
	since      time.Time // when the measure entered its stage
	executedAt time.Time
	notified   time.Time
	orderDue   time.Time // the order's deadline for its addressee
}

type approvalRec struct {
	version    int
	digest     string
	start, end time.Time
}

// replayer checks, per measure and in log order, that the lifecycle's transitions are legal
// and that the separation-of-duties, quorum, scope, window and deadline rules held, from the
// records alone. Failures are added to rep.
type replayer struct {
	ms map[string]*measureState
	ps *policies
	kr *keyring
	// changes are the account changes proposed and not yet applied, by change ID.
	changes map[string]proposedChange
	pol     Policy
	rep     *Report
	due     []measure.Due // checkDeadlines' buffer
}

func newReplayer(pol Policy, rep *Report) *replayer {
	return &replayer{ms: map[string]*measureState{}, ps: newPolicies(), kr: newKeyring(), changes: map[string]proposedChange{}, pol: pol, rep: rep}
}

// proposedChange is an account change as its proposal recorded it.
type proposedChange struct{ by, kind, user, role, scope, designation string }

// applied judges an administrator's record applying an account change of kind: proposed in
// the log by another administrator, and applying what was proposed.
func (p *replayer) applied(r *entry, kind string, rep *Report) {
	f := &r.facts
	c, proposed := p.changes[f.Change]
	delete(p.changes, f.Change)
	switch {
	case !proposed:
		rep.fail(r.Index, "two-person", "account change %s applied by %s without its proposal in the log (or applied twice)", clip(f.Change), r.Actor.ID)
		return
	case c.by == r.Actor.ID:
		rep.fail(r.Index, "two-person", "account change %s approved by its own proposer %s", f.Change, c.by)
	}
	// What the record applies, against the proposal: the fields each kind names.
	var differs bool
	switch kind {
	case "grant_role", "revoke_role":
		differs = f.User != c.user || f.Role != c.role
	case "designate":
		differs = f.User != c.user || f.Scope != c.scope
	case "revoke_designation":
		differs = f.Designation != c.designation
	case "retire_user":
		differs = f.User != c.user
	}
	if differs || kind != c.kind {
		rep.fail(r.Index, "two-person", "account change %s applies %s %s %s, not the %s of %s %s it proposed", f.Change, kind, f.Role+f.Scope+f.Designation, f.User,
			c.kind, c.role+c.scope+c.designation, c.user)
	}
}

// add replays the next record of the log.
func (p *replayer) add(r *entry) {
	rep := p.rep
	if hasAny(r.Actor.Roles, agencyRoles) && hasAny(r.Actor.Roles, commissionRoles) {
		rep.fail(r.Index, "SoD-2", "%s acted holding both agency and Commission roles %v", r.Actor.ID, r.Actor.Roles)
	}
	if slices.Contains(r.Actor.Roles, "admin") && slices.Contains(r.Actor.Roles, "auditor") {
		rep.fail(r.Index, "SoD-8", "%s acted holding both the administrator and the auditor role", r.Actor.ID)
	}
	if r.Action == "role_change.proposed" {
		f := &r.facts
		p.changes[f.Change] = proposedChange{by: r.Actor.ID, kind: f.ChangeKind, user: f.User, role: f.Role, scope: f.Scope, designation: f.Designation}
	}
	if kind, applies := changeKinds[r.Action]; applies && r.Actor.ID != "system" && hasAny(r.Actor.Roles, []string{"admin"}) {
		p.applied(r, kind, rep)
	}
	if op, statement, ok := p.approval(r); ok {
		// Judged before the record changes the keyring: an approval is signed by a key in
		// force before it, never by the key it registers.
		rs, stored, _ := p.ps.rules(r.Policy)
		if !p.kr.check(r, stored && rs.mustSign(op, r.Actor.Roles), statement, rep) && r.Action == KeyRegistered {
			rep.Roots = append(rep.Roots, Root{Index: r.Index, Key: r.facts.Key.ID, User: r.facts.Key.User, ApprovedBy: r.Actor.ID})
		}
	}
	if p.ps.add(r, rep) || p.kr.add(r, rep) {
		return
	}
	if r.Measure == "" || strings.HasPrefix(r.Action, "refused.") || strings.HasPrefix(r.Action, "read.") || r.Action == "evidence.accessed" {
		return // refusals and reads change nothing
	}
	if allowed, ok := roles[r.Action]; ok {
		// Judged under the policy version the action was checked under, as the log recorded
		// it; the first version is DESIGN's roles, which the table above holds.
		permitted := hasAny(r.Actor.Roles, allowed)
		rs, stored, why := p.ps.rules(r.Policy)
		if why == "" {
			why = p.ps.superseded(r.Policy, r.TS)
		}
		if why != "" {
			rep.fail(r.Index, "policy", "%s was checked under %s", r.Action, why)
		}
		if stored {
			permitted, allowed = rs.permits(opOf(r.Action), r.Actor.Roles), rs.allowed(opOf(r.Action))
		}
		if required := stored && rs.mustSign(opOf(r.Action), r.Actor.Roles); required || judging[r.Action] || r.facts.Signed != nil {
			p.kr.check(r, required, func(t time.Time) Statement {
				return DecisionStatement(r.Actor.ID, r.Measure, r.Version, r.facts.Digest, r.Action, decidedOf(r), t)
			}, rep)
		}
		switch {
		case hasAny(r.Actor.Roles, []string{"auditor", "admin"}):
			rep.fail(r.Index, "SoD-8", "%s by %s with roles %v: auditors and administrators take no case action", r.Action, r.Actor.ID, r.Actor.Roles)
		case !permitted:
			rep.fail(r.Index, "role", "%s by %s with roles %v; policy %s allows %v", r.Action, r.Actor.ID, r.Actor.Roles, policyName(r.Policy), allowed)
		}
	}
	m := p.ms[r.Measure]
	if r.Action == "measure.created" {
		if m != nil {
			rep.fail(r.Index, "lifecycle", "measure %s created twice", r.Measure)
		}
		p.ms[r.Measure] = &measureState{stage: "DRAFT", requester: r.Actor.ID, version: 1, digest: map[int]string{}, executors: map[int][]string{},
			targets: map[int]map[string]bool{}, legal: map[int]string{}, commander: map[int]string{}, votes: map[int][]entry{},
			foreign: map[int]bool{}, legalBasis: map[int]string{}, urgent: map[int]bool{}, requested: map[int]int64{}, gates: map[int][]string{},
			fired: map[firing]bool{}, since: r.TS, participants: []string{r.Actor.ID}}
		return
	}
	if m == nil {
		rep.fail(r.Index, "lifecycle", "%s on measure %s before its creation", r.Action, r.Measure)
		return
	}
	p.replayOne(m, r)
}

func policyName(name string) string {
	if builtinPolicies[name] {
		return "v1 (DESIGN's roles)"
	}
	return name
}

// finish ends the replay once every record was added.
func (p *replayer) finish() { p.rep.Measures = len(p.ms) }

func (p *replayer) replayOne(m *measureState, r *entry) {
	pol, rep := p.pol, p.rep
	f := &r.facts
	p.checkDeadlines(m, r)
	if r.Actor.ID != "system" && r.Action != "declare_conflict" && r.Action != "post_hoc_decision" && !slices.Contains(m.participants, r.Actor.ID) {
		// A conflict declaration is no part in the measure; the post-hoc review is checked below.
		m.participants = append(m.participants, r.Actor.ID)
	}
	if r.From == "" { // draft edits (targets, evidence, plan) carry no transition
		if m.stage != "DRAFT" {
			rep.fail(r.Index, "lifecycle", "%s while the measure was %s (drafts only)", r.Action, m.stage)
		}
		if r.Actor.ID != m.requester {
			rep.fail(r.Index, "requester", "%s by %s, not the requester %s", r.Action, r.Actor.ID, m.requester)
		}
		return
	}
	if r.From != m.stage {
		rep.fail(r.Index, "lifecycle", "%s leaves %s but the measure was %s", r.Action, r.From, m.stage)
	}
	if allowed, ok := transitions[r.Action]; ok && !slices.Contains(allowed, r.From) {
		rep.fail(r.Index, "lifecycle", "%s is not allowed from %s", r.Action, r.From)
	}
	v := r.Version
	if judging[r.Action] && f.Digest != m.digest[v] {
		// What a person judged is the version sealed: a decision names that digest.
		rep.fail(r.Index, "digest", "%s on digest %q, but version %d was sealed as %s", r.Action, f.Digest, v, m.digest[v])
	}
	switch r.Action {
	case "submit", "declare_emergency":
		m.digest[v] = f.Digest
		m.executors[v] = f.Executors
		m.foreign[v], m.legalBasis[v], m.urgent[v], m.requested[v] = f.Foreign, f.LegalBasis, f.Urgent, f.Requested
		if f.Deadlines != nil {
			m.deadlines = f.Deadlines
			d := func(name string) time.Duration { return time.Duration(f.Deadlines[name]) * time.Millisecond }
			m.timers = measure.Timers{DecisionTarget: d("decision_target"), DecisionTargetUrgent: d("decision_target_urgent"),
				EmergencyNotification: d("emergency_notification"), PostHocReview: d("post_hoc_review"),
				ReportDue: d("report_due"), NotificationDue: d("notification_due")}
		}
		if tv := f.TargetValues; tv != nil {
			set := make(map[string]bool, len(tv))
			for _, t := range tv {
				set[t] = true
			}
			m.targets[v] = set
		}
		if r.Action == "declare_emergency" {
			if !slices.Contains(r.Actor.Roles, "commander") {
				rep.fail(r.Index, "SoD-6", "emergency declared by %s, who is not a commander", r.Actor.ID)
			}
			m.emergency = r.TS
		} else if r.Actor.ID != m.requester {
			rep.fail(r.Index, "requester", "submitted by %s, not the requester", r.Actor.ID)
		}
	case "legal_review":
		if r.Actor.ID == m.requester {
			rep.fail(r.Index, "SoD-1", "the legal reviewer %s is the requester", r.Actor.ID)
		}
		m.legal[v] = r.Actor.ID
	case "command_review":
		if r.Actor.ID == m.requester || r.Actor.ID == m.legal[v] {
			rep.fail(r.Index, "SoD-1", "the commander %s is the requester or the legal reviewer", r.Actor.ID)
		}
		m.commander[v] = r.Actor.ID
	case "declare_conflict":
		if slices.Contains(m.recused, r.Actor.ID) {
			rep.fail(r.Index, "SoD-3", "%s declared again after declaring a conflict: a recusal stands for the whole request", r.Actor.ID)
		}
		if f.Conflicted && slices.ContainsFunc(m.votes[v], func(vr entry) bool { return vr.Actor.ID == r.Actor.ID }) {
			rep.fail(r.Index, "SoD-3", "%s declared a conflict after voting on version %d: a recused member's vote would count", r.Actor.ID, v)
		}
		if f.Conflicted && !slices.Contains(m.recused, r.Actor.ID) {
			m.recused = append(m.recused, r.Actor.ID)
		}
	case "vote":
		switch {
		case !hasAny(r.Actor.Roles, []string{"commissioner", "commission_chair"}):
			rep.fail(r.Index, "SoD-3", "vote by %s, who is not a Commission member", r.Actor.ID)
		case r.Actor.ID == m.requester || r.Actor.ID == m.legal[v] || r.Actor.ID == m.commander[v]:
			rep.fail(r.Index, "SoD-1", "vote by %s, who requested or reviewed the measure", r.Actor.ID)
		case slices.Contains(m.recused, r.Actor.ID):
			rep.fail(r.Index, "SoD-3", "vote by %s, who declared a conflict", r.Actor.ID)
		}
		for _, prev := range m.votes[v] {
			if prev.Actor.ID == r.Actor.ID {
				rep.fail(r.Index, "SoD-3", "%s voted twice on version %d", r.Actor.ID, v)
			}
		}
		m.votes[v] = append(m.votes[v], *r)
	case "decide":
		checkQuorum(m, r, pol, rep)
	case "issue_order":
		m.orderDue, _ = time.Parse(time.RFC3339Nano, f.OrderDue)
	case "record_gate":
		if !slices.Contains(m.gates[v], f.Gate) {
			m.gates[v] = append(m.gates[v], f.Gate)
		}
	case "gates_satisfied":
		if m.foreign[v] && !slices.Contains(m.gates[v], "foreign_ministry") {
			rep.fail(r.Index, "gates", "version %d has a target abroad or of unknown location and went to the Commission without a recorded Foreign Minister consultation", v)
		}
		if m.legalBasis[v] == "sdf_act_communications_protection" && !slices.Contains(m.gates[v], "pm_order") {
			rep.fail(r.Index, "gates", "version %d rests on the SDF Act and went to the Commission without a recorded Prime Minister's order", v)
		}
	case "start_execution", "log_steps", "finish_execution":
		if !slices.Contains(m.executors[v], r.Actor.ID) {
			rep.fail(r.Index, "SoD-4", "%s by %s, who is not named in version %d", r.Action, r.Actor.ID, v)
		}
		d, why := p.ps.designated(r.Actor.ID, r.TS)
		switch {
		case d == nil:
			rep.fail(r.Index, "SoD-4", "%s by %s, who holds no valid executor designation at %s: %s", r.Action, r.Actor.ID, r.TS.UTC().Format(time.RFC3339), why)
		case m.foreign[v] && d.scope != "npa":
			rep.fail(r.Index, "SoD-4", "%s by %s, a %s-scope executor, on a version with a target abroad or of unknown location (NPA scope needed)", r.Action, r.Actor.ID, d.scope)
		}
		if m.foreign[v] && !slices.Contains(m.gates[v], "foreign_ministry") {
			rep.fail(r.Index, "SoD-4", "%s on a version with a target abroad or of unknown location, before a Foreign Minister consultation was recorded", r.Action)
		}
		if r.Action == "start_execution" && m.approval != nil && m.emergency.IsZero() && !r.TS.Before(m.approval.end) {
			rep.fail(r.Index, "deadline", "execution started at %s, after the approval window closed at %s", r.TS.UTC().Format(time.RFC3339), m.approval.end.UTC().Format(time.RFC3339))
		}
		if r.Action == "log_steps" {
			checkSteps(m, r, rep)
			if !slices.Contains(m.executed, r.Actor.ID) {
				m.executed = append(m.executed, r.Actor.ID)
			}
		}
	case "request_info":
		if slices.Contains(m.recused, r.Actor.ID) {
			rep.fail(r.Index, "SoD-3", "information requested by %s, who declared a conflict", r.Actor.ID)
		}
	case "post_hoc_decision":
		if slices.Contains(m.participants, r.Actor.ID) {
			rep.fail(r.Index, "SoD-6", "the post-hoc review by %s, who had a part in the measure", r.Actor.ID)
		}
		if slices.Contains(m.recused, r.Actor.ID) {
			rep.fail(r.Index, "SoD-3", "the post-hoc review by %s, who declared a conflict", r.Actor.ID)
		}
	case "notify_commission":
		m.notified = r.TS
		if slices.Contains(m.executed, r.Actor.ID) {
			rep.fail(r.Index, "SoD-6", "the Commission was notified by the executor %s", r.Actor.ID)
		}
		if !m.emergency.IsZero() && r.TS.Sub(m.emergency) > pol.EmergencyNotification {
			rep.fail(r.Index, "deadline", "the Commission was notified %s after the emergency declaration (limit %s)",
				r.TS.Sub(m.emergency).Round(time.Second), pol.EmergencyNotification)
		}
	case "report":
		if !m.emergency.IsZero() && r.From == "EXECUTED" {
			rep.fail(r.Index, "lifecycle", "an emergency measure was reported before the Commission was notified and reviewed it")
		}
		m.reportBy = r.Actor.ID
	case "verify_report":
		if r.Actor.ID == m.reportBy {
			rep.fail(r.Index, "SoD-7", "the report was verified by its author %s", r.Actor.ID)
		}
	}
	if nv := f.NewVersion; nv != 0 {
		m.version = nv
	}
	if r.To != m.stage {
		m.since = r.TS
		if r.To == "EXECUTED" {
			m.executedAt = r.TS
		}
	}
	m.stage = r.To
}

func checkQuorum(m *measureState, r *entry, pol Policy, rep *Report) {
	v := r.Version
	outcome := r.facts.Outcome
	var approve, reject, ret int
	chair := false
	for _, vr := range m.votes[v] {
		switch vr.facts.Vote {
		case "approve":
			approve++
		case "reject":
			reject++
		case "return":
			ret++
		}
		chair = chair || slices.Contains(vr.Actor.Roles, "commission_chair")
	}
	votes := len(m.votes[v])
	if !chair || votes-1 < pol.QuorumMembers {
		rep.fail(r.Index, "quorum", "decision %q with %d votes on version %d (chair voted: %v); the quorum is the chair and %d members",
			outcome, votes, v, chair, pol.QuorumMembers)
		return
	}
	eligible := pol.CommissionSize - len(m.recused)
	count := map[string]int{"approved": approve, "rejected": reject, "returned": ret}[outcome]
	if 2*count <= eligible && votes < eligible {
		rep.fail(r.Index, "quorum", "decision %q with %d of %d eligible votes, no majority", outcome, count, eligible)
	}
	if outcome == "approved" {
		ap := r.facts.Approval
		if ap.Digest != m.digest[v] {
			rep.fail(r.Index, "digest", "approval of digest %s, but version %d was sealed as %s", ap.Digest, v, m.digest[v])
		}
		start, _ := time.Parse(time.RFC3339Nano, ap.WindowStart)
		end, _ := time.Parse(time.RFC3339Nano, ap.WindowEnd)
		m.approval = &approvalRec{version: v, digest: m.digest[v], start: start, end: end}
	}
}

func checkSteps(m *measureState, r *entry, rep *Report) {
	if targets := m.targets[r.Version]; targets != nil {
		for _, t := range r.facts.Targets {
			if !targets[t] {
				rep.fail(r.Index, "scope", "step on %s, which is not a target of version %d", t, r.Version)
			}
		}
	}
	var last string // a batch's steps often share a time: parse it once
	var at time.Time
	var err error
	for i, step := range r.facts.Steps {
		if step.Witness == r.Actor.ID {
			rep.fail(r.Index, "SoD-5", "step %d witnessed by its executor %s", i, r.Actor.ID)
		}
		if i == 0 || step.At != last {
			at, err = time.Parse(time.RFC3339Nano, step.At)
			last = step.At
		}
		if err != nil {
			// A step that does not say when it was taken cannot be shown inside any window.
			rep.fail(r.Index, "window", "step %d gives no time it was taken (%q)", i, step.At)
			continue
		}
		if m.emergency.IsZero() {
			if m.approval == nil || at.Before(m.approval.start) || !at.Before(m.approval.end) {
				rep.fail(r.Index, "window", "step %d at %s is outside the approved window", i, step.At)
			}
		} else if end, ok := m.emergencyEnd(r.Version); ok && !at.Before(end) {
			rep.fail(r.Index, "window", "step %d at %s is after the emergency window closed at %s", i, step.At, end.Format(time.RFC3339))
		} else if at.Before(m.emergency.Truncate(time.Second).Add(-time.Second)) {
			// The emergency window opens at the declaration (its end is emergencyEnd). The
			// record is stamped a moment after the workflow's own clock opened the window: a
			// second of slack.
			rep.fail(r.Index, "window", "step %d at %s is before the emergency was declared at %s", i, step.At, m.emergency.Format(time.RFC3339))
		}
	}
	if m.emergency.IsZero() && (m.approval == nil || m.approval.version != r.Version) {
		rep.fail(r.Index, "digest", "execution of version %d, which holds no approval", r.Version)
	}
}

// emergencyEnd is when an emergency measure's window closes: the declaration plus the
// requested window, at most the longest approval window, when the seal recorded them.
func (m *measureState) emergencyEnd(v int) (time.Time, bool) {
	window := time.Duration(m.deadlines["approval_window"]) * time.Millisecond
	if req := time.Duration(m.requested[v]) * time.Millisecond; req > 0 {
		window = min(window, req)
	}
	if window <= 0 {
		return time.Time{}, false
	}
	// A second of slack, as for the window's start: the record is stamped a moment after the
	// workflow's clock opened the window.
	return m.emergency.Truncate(time.Second).Add(window + time.Second), true
}

// deadlineGrace is how long past a deadline a record in the same stage may come before the
// deadline's own record: the workflow records a deadline as its timer fires, and an action
// accepted a moment before may be recorded a moment after.
const deadlineGrace = 10 * time.Minute

// firing is a deadline of one version of a measure.
type firing struct {
	name    string
	version int
}

// stageDeadlines appends to due the deadlines the workflow keeps in the measure's current
// stage, from the measure's recorded timers, computed as the workflow computes them
// (measure.AppendDeadlines). It runs for every record: no maps, no allocation.
func (m *measureState) stageDeadlines(due []measure.Due) []measure.Due {
	if m.deadlines == nil {
		return due // a seal from before deadlines were recorded
	}
	c := measure.Clock{Stage: measure.Stage(m.stage), Since: m.since, Declared: m.emergency, Notified: m.notified,
		Executed: m.executedAt, Urgent: m.urgent[m.version], OrderDue: m.orderDue}
	if m.approval != nil {
		c.WindowEnd = m.approval.end
	}
	return measure.AppendDeadlines(due, m.timers, c)
}

// checkDeadlines checks r against the deadlines of the measure's stage: a deadline's record
// comes once it is due, and a deadline that passed is recorded before the measure moves on.
func (p *replayer) checkDeadlines(m *measureState, r *entry) {
	p.due = m.stageDeadlines(p.due[:0])
	if name, ok := strings.CutPrefix(r.Action, "deadline."); ok {
		i := slices.IndexFunc(p.due, func(d measure.Due) bool { return d.Name == name })
		switch {
		case m.deadlines == nil:
		case i < 0:
			p.rep.fail(r.Index, "deadline", "deadline %s recorded in stage %s, which keeps no such deadline", name, m.stage)
		case r.TS.Before(p.due[i].At.Add(-time.Second)):
			p.rep.fail(r.Index, "deadline", "deadline %s recorded at %s, before it fell due at %s", name, r.TS.UTC().Format(time.RFC3339), p.due[i].At.UTC().Format(time.RFC3339))
		}
		m.fired[firing{name, m.version}] = true
		return
	}
	for _, d := range p.due {
		if k := (firing{d.Name, m.version}); !m.fired[k] && r.TS.After(d.At.Add(deadlineGrace)) {
			p.rep.fail(r.Index, "deadline", "deadline %s fell due at %s and the log does not record it before this %s at %s",
				d.Name, d.At.UTC().Format(time.RFC3339), r.Action, r.TS.UTC().Format(time.RFC3339))
			m.fired[k] = true // named once
		}
	}
}
