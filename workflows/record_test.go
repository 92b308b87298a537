package workflows

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// TestWhatEachChangeCarries: what the workflow hands the Record activity, which the audit log
// and the verifier's replay read: a key of its own for every change (the activity is
// idempotent on it, so two changes sharing one would lose the second), the deadlines in the
// seal alone, the policy an action was checked under, and the outcome the person is told.
func TestWhatEachChangeCarries(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.SetStartTime(t0)
	v2 := func(a measure.Action) measure.Action { a.PolicyVersion = "v2"; return a }
	h.act(time.Minute, v2(measure.Action{Op: authz.OpSubmit, Actor: officer}), "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "overtaken"}, "")
	h.run()
	h.expect([]string{"submit", "legal_review", "withdraw"}, nil)
	for i, ch := range h.changes {
		if want := fmt.Sprintf("measure-m-1/%d", i+1); ch.Key != want {
			t.Errorf("change %d (%s) keyed %q, want %q", i, ch.Kind, ch.Key, want)
		}
		// An action sent without a policy version is checked under the one last in force.
		if ch.Action.PolicyVersion != "v2" {
			t.Errorf("%s recorded under policy %q, want v2", ch.Kind, ch.Action.PolicyVersion)
		}
	}
	if d, ok := h.changes[0].Details["deadlines"].(map[string]any); !ok || d["report_due"] != float64(7*24*time.Hour/time.Millisecond) {
		t.Errorf("the seal's deadlines: %v", h.changes[0].Details["deadlines"])
	}
	if _, ok := h.changes[1].Details["deadlines"]; ok {
		t.Errorf("a legal review carries the deadlines: %v", h.changes[1].Details)
	}
	if len(h.done) != 3 || h.done[0].err != nil || h.done[0].outcome != (Outcome{Stage: measure.LegalReview, Version: 1, Digest: "sha256:v1"}) {
		t.Fatalf("the submitter was told %+v", h.done)
	}
	if o := h.done[1].outcome; o.Stage != measure.CommandReview || o.Version != 1 {
		t.Errorf("the legal reviewer was told %+v", o)
	}

	// An emergency's declaration is its seal too.
	h = newHarness(t, DefaultConfig())
	h.act(time.Minute, measure.Action{Op: authz.OpDeclareEmergency, Actor: commander, Reason: "the botnet is wiping disks"}, "")
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, time.Hour)
	h.env.ExecuteWorkflow(MeasureWorkflow, Input{Measure: "m-1", Case: "c-1", Requester: officer.ID, Config: h.cfg})
	if len(h.changes) == 0 || h.changes[0].Kind != "declare_emergency" || h.changes[0].Details["deadlines"] == nil {
		t.Errorf("the declaration carries no deadlines: %+v", h.changes)
	}
}

// TestRecordRefusalsKeepTheirType: the API tells a person why the log refused their action by
// the refusal's type; wrapped on its way out, every refusal would be a server error.
func TestRecordRefusalsKeepTheirType(t *testing.T) {
	for _, kind := range []string{refusal.TypeRefused, refusal.TypeInvalid, refusal.TypeRejected} {
		t.Run(kind, func(t *testing.T) {
			h := newHarness(t, DefaultConfig())
			h.refuse, h.refuseAs = "submit", kind
			h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
			h.act(2*time.Minute, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "refused"}, "")
			h.run()
			if len(h.done) == 0 || h.done[0].op != authz.OpSubmit {
				t.Fatalf("updates completed: %+v", h.done)
			}
			// As the server carries it to the client: only the error itself crosses, not
			// what it wraps.
			fc := temporal.GetDefaultFailureConverter()
			got := fc.FailureToError(fc.ErrorToFailure(h.done[0].err))
			var app *temporal.ApplicationError
			if !errors.As(got, &app) || app.Type() != kind {
				t.Fatalf("the submitter was told %v, want a refusal of type %s", got, kind)
			}
			if s := h.result(); s.Stage != measure.Withdrawn || s.Version != 1 {
				t.Errorf("after the refusal: %s at version %d", s.Stage, s.Version)
			}
		})
	}
}

// TestAnOutageFailsTheActionInTime: a person's action whose record keeps failing (the
// database down) fails within ActionRecordTimeout, so that its sender hears of it and the
// measure goes on.
func TestAnOutageFailsTheActionInTime(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.fail = "submit"
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(10*time.Minute, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "resubmit later"}, "")
	h.run()
	if len(h.done) != 2 || h.done[0].op != authz.OpSubmit || h.done[0].err == nil {
		t.Fatalf("want the submission failed before the withdrawal: %+v", h.done)
	}
	if took := h.done[0].at.Sub(h.failed[0]); took > ActionRecordTimeout || len(h.failed) < 3 {
		t.Errorf("the submitter heard of the outage after %v and %d attempts, want within %v", took, len(h.failed), ActionRecordTimeout)
	}
	if s := h.result(); s.Stage != measure.Withdrawn {
		t.Errorf("ends %s", s.Stage)
	}
}

// TestQuorumDespiteRecusals: recusals lower the majority needed, never the quorum: with three
// members recused, the chair and the one member left cannot decide.
func TestQuorumDespiteRecusals(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.SetStartTime(t0)
	member3 := reviewer
	member4 := authz.Actor{ID: "u-m4", Username: "m4", Org: "commission", Roles: []authz.Role{authz.Commissioner}}
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "approve"}, "")
	for i, m := range []authz.Actor{member2, member3, member4} {
		h.act(time.Duration(4+i)*time.Minute, measure.Action{Op: authz.OpDeclareConflict, Actor: m, Conflicted: true, Reason: "advised the provider"}, "")
	}
	h.act(10*time.Minute, measure.Action{Op: authz.OpVote, Actor: chair, Decision: "approve"}, "")
	h.act(11*time.Minute, measure.Action{Op: authz.OpVote, Actor: member1, Decision: "approve"}, "")
	h.act(12*time.Minute, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "the Commission cannot sit"}, "")
	h.run()
	if k := h.kinds(); slices.Contains(k, "decide") {
		t.Fatalf("decided by the chair and one member: %v", k)
	}
	if s := h.result(); s.Stage != measure.Withdrawn || len(s.Facts.Recused) != 3 {
		t.Errorf("ends %s with %v recused", s.Stage, s.Facts.Recused)
	}
}

// TestOrderWithoutFallback: an order to the administrator of a domestic server, approved
// without self-execution as a fallback: the agency may not execute when the order is ignored,
// and a Prime Minister's order recorded is no Foreign Ministry consultation.
func TestOrderWithoutFallback(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.SetStartTime(t0)
	h.seal = func(v int) *measure.Sealed {
		return &measure.Sealed{Version: v, Digest: "sha256:order", Kind: measure.OrderAdministrator, LegalBasis: "sdf_act_communications_protection",
			Executors: []string{executor.ID}, Technique: "block_c2"}
	}
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "approve"}, "")
	h.act(4*time.Minute, measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "pm_order", Reference: "PMO-2026-9"}, "")
	for i, m := range []authz.Actor{chair, member1, member2} {
		h.act(time.Duration(5+i)*time.Minute, measure.Action{Op: authz.OpVote, Actor: m, Decision: "approve"}, "")
	}
	h.act(hours(1), measure.Action{Op: authz.OpIssueOrder, Actor: commander,
		Order: &measure.Order{Addressee: "Example Hosting KK", Content: "null-route 198.51.100.7", Deadline: t0.Add(hours(10))}}, "")
	h.act(hours(11), measure.Action{Op: authz.OpOrderOutcome, Actor: commander, Decision: "not_complied"}, "")
	h.act(hours(12), measure.Action{Op: authz.OpStartExecution, Actor: executor}, "does not cover execution by the agency itself")
	h.act(hours(13), measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "refer to the prosecutor"}, "")
	h.run()
	decide := h.changes[slices.Index(h.kinds(), "decide")]
	if decide.Approval == nil || decide.Approval.SelfExecutionAllowed {
		t.Errorf("approval %+v: want no self-execution", decide.Approval)
	}
	if s := h.result(); s.Stage != measure.Withdrawn || s.Facts.ForeignMinistry {
		t.Errorf("ends %s, foreign ministry consulted: %v", s.Stage, s.Facts.ForeignMinistry)
	}
}

// TestNoConflictDeclaredIsNoPart: a member who declared no conflict of interest has taken no
// part in the measure, and may review it after the fact.
func TestNoConflictDeclaredIsNoPart(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.SetStartTime(t0)
	h.act(time.Minute, measure.Action{Op: authz.OpDeclareEmergency, Actor: commander, Reason: "the botnet is wiping disks"}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLogSteps, Actor: executor, Steps: stepAt(t0.Add(2*time.Minute), "disable_malware")}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpFinishExecution, Actor: executor}, "")
	h.act(3*time.Minute+30*time.Second, measure.Action{Op: authz.OpNotifyCommission, Actor: commander, Body: "what was done"}, "")
	h.act(4*time.Minute, measure.Action{Op: authz.OpDeclareConflict, Actor: reviewer, Reason: "none: no tie to the provider"}, "")
	h.act(5*time.Minute, measure.Action{Op: authz.OpPostHocDecision, Actor: reviewer, Decision: "accepted"}, "")
	h.act(6*time.Minute, measure.Action{Op: authz.OpReport, Actor: executor, Body: "the C2 is silent"}, "")
	h.act(7*time.Minute, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "x"}, "not possible")
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, time.Hour)
	h.env.ExecuteWorkflow(MeasureWorkflow, Input{Measure: "m-1", Case: "c-1", Requester: officer.ID, Config: h.cfg})
	if k := h.kinds(); !slices.Contains(k, "post_hoc_decision") {
		t.Fatalf("changes %v: the post-hoc review was refused", k)
	}
}
