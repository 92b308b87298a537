package workflows

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

var (
	executor = authz.Actor{ID: "u-executor", Username: "executor", Org: "npa", Roles: []authz.Role{authz.Executor},
		Designations: []authz.Designation{{Scope: "npa", ValidFrom: t0.AddDate(0, -1, 0), ValidUntil: t0.AddDate(1, 0, 0)}}}
	reviewer = authz.Actor{ID: "u-m3", Username: "m3", Org: "commission", Roles: []authz.Role{authz.Commissioner}}
)

func stepAt(at time.Time, technique string) []measure.Step {
	return []measure.Step{{Target: "203.0.113.10", Technique: technique, Action: "sent the self-delete command", Result: "success", Witness: "u-executor2", At: at}}
}

// hours is a time after the workflow's start.
func hours(h float64) time.Duration { return time.Duration(h * float64(time.Hour)) }

// expect checks the changes the workflow recorded, in order, and when it recorded those given.
func (h *harness) expect(kinds []string, when map[string]time.Duration) {
	h.t.Helper()
	if !slices.Equal(h.kinds(), kinds) {
		h.t.Fatalf("changes\n%v\nwant\n%v", h.kinds(), kinds)
	}
	for kind, after := range when {
		if got := h.at[slices.Index(kinds, kind)].Sub(t0); got != after {
			h.t.Errorf("%s recorded %v after the start, want %v", kind, got, after)
		}
	}
}

func (h *harness) result() State {
	h.t.Helper()
	var s State
	if err := h.env.GetWorkflowResult(&s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// TestEmergencyLifecycle: an emergency measure from its declaration to closing, every
// statutory deadline it misses recorded at the second it passes.
func TestEmergencyLifecycle(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.SetStartTime(t0)
	h.act(time.Minute, measure.Action{Op: authz.OpDeclareEmergency, Actor: commander, Reason: "the botnet is wiping disks"}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLogSteps, Actor: executor, Steps: stepAt(t0.Add(2*time.Minute), "disable_malware")}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpFinishExecution, Actor: executor}, "")
	h.act(4*time.Minute, measure.Action{Op: authz.OpNotifyCommission, Actor: executor, Body: "done"}, "SoD-6")
	h.act(hours(26), measure.Action{Op: authz.OpNotifyCommission, Actor: commander, Body: "what was done, and why it could not wait"}, "")
	h.act(hours(27), measure.Action{Op: authz.OpPostHocDecision, Actor: executor, Decision: "accepted"}, "SoD-6")
	h.act(hours(100), measure.Action{Op: authz.OpPostHocDecision, Actor: reviewer, Decision: "accepted"}, "")
	h.act(hours(200), measure.Action{Op: authz.OpReport, Actor: executor, Body: "the C2 is silent"}, "")
	h.act(hours(200.5), measure.Action{Op: authz.OpVerifyReport, Actor: executor}, "SoD-7")
	h.act(hours(201), measure.Action{Op: authz.OpVerifyReport, Actor: commander}, "")
	h.act(hours(1000), measure.Action{Op: authz.OpNotify, Actor: officer, Notices: []measure.Notification{{Addressee: "abuse@example.net", Status: "sent"}}}, "")
	h.act(hours(1001), measure.Action{Op: authz.OpClose, Actor: officer}, "")
	h.run()
	h.expect([]string{"declare_emergency", "log_steps", "finish_execution", "deadline.commission_notification_overdue",
		"notify_commission", "deadline.post_hoc_review_overdue", "post_hoc_decision", "deadline.report_overdue", "report",
		"verify_report", "deadline.notification_overdue", "notify", "close"}, map[string]time.Duration{
		"deadline.commission_notification_overdue": time.Minute + 24*time.Hour, // declared + 24 h
		"deadline.post_hoc_review_overdue":         hours(26) + 72*time.Hour,   // notified + 3 days
		"deadline.report_overdue":                  3*time.Minute + 7*24*time.Hour,
		"deadline.notification_overdue":            hours(201) + 30*24*time.Hour, // notifying since the report's verification
	})
	s := h.result()
	if s.Stage != measure.Closed || s.Steps != 1 || s.Notices != 1 || s.Seq != 13 {
		t.Errorf("ends %s with %d steps, %d notices, %d changes", s.Stage, s.Steps, s.Notices, s.Seq)
	}
	if !s.Declared.Equal(t0.Add(time.Minute)) || !s.Executed.Equal(t0.Add(3*time.Minute)) || !s.Notified.Equal(t0.Add(hours(26))) {
		t.Errorf("declared %v, executed %v, notified %v", s.Declared, s.Executed, s.Notified)
	}
	f := s.Facts
	if !slices.Equal(f.Executors, []string{executor.ID}) || f.ReportAuthor != executor.ID {
		t.Errorf("executors %v, report author %q", f.Executors, f.ReportAuthor)
	}
	// The post-hoc reviewer takes no part in the measure: a second reviewer may still come.
	if want := []string{commander.ID, executor.ID, officer.ID}; !slices.Equal(f.Participants, want) {
		t.Errorf("participants %v, want %v", f.Participants, want)
	}
}

// TestOrderLifecycle: an urgent order to a foreign server's administrator, under the SDF Act:
// both gates, the Commission's conditions, the order ignored, the agency's own execution.
func TestOrderLifecycle(t *testing.T) {
	cfg := DefaultConfig()
	h := newHarness(t, cfg)
	h.env.SetStartTime(t0)
	h.seal = func(v int) *measure.Sealed {
		return &measure.Sealed{Version: v, Digest: "sha256:order", Kind: measure.OrderAdministrator, LegalBasis: "sdf_act_communications_protection",
			SelfExecutionFallback: true, RequestedWindow: 48 * time.Hour, Urgent: true, Foreign: true, Executors: []string{executor.ID}, Technique: "block_c2"}
	}
	member3 := reviewer
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "approve"}, "")
	h.act(4*time.Minute, measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "foreign_ministry", Reference: "MOFA-2026-118"}, "")
	h.act(5*time.Minute, measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "pm_order", Reference: "PMO-2026-7"}, "")
	h.act(hours(30), measure.Action{Op: authz.OpDeclareConflict, Actor: member3, Conflicted: true, Reason: "advised the hosting company"}, "")
	h.act(hours(30)+time.Minute, measure.Action{Op: authz.OpVote, Actor: chair, Decision: "approve", Conditions: []string{"log every packet"}}, "")
	h.act(hours(30)+2*time.Minute, measure.Action{Op: authz.OpVote, Actor: member1, Decision: "approve", Conditions: []string{"block only port 443", "log every packet"}}, "")
	h.act(hours(30)+3*time.Minute, measure.Action{Op: authz.OpVote, Actor: member3, Decision: "approve"}, "SoD-3")
	h.act(hours(30)+4*time.Minute, measure.Action{Op: authz.OpVote, Actor: member2, Decision: "approve", Conditions: []string{"log every packet"}}, "")
	h.act(hours(31), measure.Action{Op: authz.OpStartExecution, Actor: executor}, "issue it first")
	h.act(hours(31)+time.Minute, measure.Action{Op: authz.OpIssueOrder, Actor: commander,
		Order: &measure.Order{Addressee: "Example Hosting Ltd", Content: "null-route 198.51.100.7", Deadline: t0.Add(hours(40))}}, "")
	h.act(hours(41), measure.Action{Op: authz.OpOrderOutcome, Actor: commander, Decision: "not_complied"}, "")
	h.act(hours(42), measure.Action{Op: authz.OpStartExecution, Actor: executor}, "")
	h.act(hours(43), measure.Action{Op: authz.OpLogSteps, Actor: executor, Steps: stepAt(t0.Add(hours(43)), "block_c2")}, "")
	h.act(hours(44), measure.Action{Op: authz.OpFinishExecution, Actor: executor}, "")
	h.act(hours(45), measure.Action{Op: authz.OpReport, Actor: executor, Body: "null-routed by the agency"}, "")
	h.act(hours(46), measure.Action{Op: authz.OpVerifyReport, Actor: commander}, "")
	h.act(hours(47), measure.Action{Op: authz.OpNotify, Actor: officer, Notices: []measure.Notification{{Addressee: "Example Hosting Ltd", Status: "deferred", Reason: "the investigation continues"}}}, "")
	h.act(hours(48), measure.Action{Op: authz.OpClose, Actor: officer}, "")
	h.run()
	h.expect([]string{"submit", "legal_review", "command_review", "record_gate", "record_gate", "gates_satisfied",
		"deadline.decision_overdue", "declare_conflict", "vote", "vote", "vote", "decide", "issue_order", "deadline.order_deadline_passed",
		"order_outcome", "start_execution", "log_steps", "finish_execution", "report", "verify_report", "notify", "close"}, map[string]time.Duration{
		"gates_satisfied":                5 * time.Minute,
		"deadline.decision_overdue":      5*time.Minute + 24*time.Hour, // urgent: 24 h, not 72
		"decide":                         hours(30) + 4*time.Minute,
		"deadline.order_deadline_passed": hours(40),
	})
	decide := h.changes[slices.Index(h.kinds(), "decide")]
	ap := decide.Approval
	if decide.Tally == nil || decide.Tally.Outcome != "approved" || decide.Tally.Eligible != 4 || ap == nil {
		t.Fatalf("decision %+v, approval %+v", decide.Tally, ap)
	}
	if ap.WindowEnd.Sub(ap.WindowStart) != 48*time.Hour || !ap.SelfExecutionAllowed || !slices.Equal(ap.Conditions, []string{"block only port 443", "log every packet"}) {
		t.Errorf("approval %+v: want the requested 48 h, self-execution as a fallback, the approving votes' conditions", ap)
	}
	if g := h.changes[slices.Index(h.kinds(), "gates_satisfied")].Details["gates"]; fmt.Sprint(g) != "[foreign_ministry pm_order]" {
		t.Errorf("gates satisfied by %v", g)
	}
	if s := h.result(); s.Stage != measure.Closed || !s.Facts.ForeignMinistry || !slices.Equal(s.Facts.Recused, []string{member3.ID}) {
		t.Errorf("ends %s, foreign ministry %v, recused %v", s.Stage, s.Facts.ForeignMinistry, s.Facts.Recused)
	}
}

// TestCommissionReturns: a majority returning the request opens a new draft version on which
// nothing given before counts.
func TestCommissionReturns(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.SetStartTime(t0)
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "approve"}, "")
	h.act(4*time.Minute, measure.Action{Op: authz.OpRequestInfo, Actor: member1, Reason: "which servers are in Japan?"}, "")
	h.act(5*time.Minute, measure.Action{Op: authz.OpVote, Actor: chair, Decision: "approve"}, "not possible in stage INFO_REQUESTED")
	h.act(6*time.Minute, measure.Action{Op: authz.OpRespondInfo, Actor: officer, Body: "two of them"}, "")
	for i, m := range []authz.Actor{chair, member1, member2} {
		h.act(time.Duration(7+i)*time.Minute, measure.Action{Op: authz.OpVote, Actor: m, Decision: "return", Reason: "name the Japanese servers"}, "")
	}
	h.act(10*time.Minute, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "the servers went offline"}, "")
	h.run()
	h.expect([]string{"submit", "legal_review", "command_review", "gates_satisfied", "request_info", "respond_info",
		"vote", "vote", "vote", "decide", "withdraw"}, nil)
	decide, withdraw := h.changes[9], h.changes[10]
	if decide.NewVersion != 2 || decide.To != measure.Draft || decide.Facts.LegalReviewer != "" || len(decide.Facts.Voters) != 0 {
		t.Errorf("a return decided: %+v", decide)
	}
	if withdraw.Version != 2 || withdraw.Digest != "" || withdraw.From != measure.Draft {
		t.Errorf("after the return: version %d digest %q from %s", withdraw.Version, withdraw.Digest, withdraw.From)
	}
}

// TestRefusedDeadlineFiresOnce: a deadline the activity refuses for good is not fired again,
// and the measure goes on.
func TestRefusedDeadlineFiresOnce(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.SetStartTime(t0)
	h.refuse = "deadline.decision_overdue"
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "approve"}, "")
	h.act(hours(100), measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "overtaken"}, "")
	h.run()
	h.expect([]string{"submit", "legal_review", "command_review", "gates_satisfied", "withdraw"}, nil)
	if s := h.result(); !slices.Equal(s.Fired, []string{"decision_overdue@v1"}) {
		t.Errorf("fired %v", s.Fired)
	}
}
