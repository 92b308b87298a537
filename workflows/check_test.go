package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// TestCheckRefuses holds the workflow's own checks, the ones the API cannot make from the
// request alone, to what a careless or hostile person would try at each stage: every refusal
// at its boundary, and the case just inside it accepted.
func TestCheckRefuses(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	designated := func(id, scope string) authz.Actor {
		return authz.Actor{ID: id, Username: strings.TrimPrefix(id, "u-"), Org: "npa", Roles: []authz.Role{authz.Executor},
			Designations: []authz.Designation{{Scope: scope, ValidFrom: now.Add(-24 * time.Hour), ValidUntil: now.Add(30 * 24 * time.Hour)}}}
	}
	exec := designated("u-executor", "npa")
	reviewer := authz.Actor{ID: "u-m3", Username: "m3", Org: "commission", Roles: []authz.Role{authz.Commissioner}}
	window := &measure.Approval{Version: 1, Digest: "sha256:v1", WindowStart: now.Add(-time.Hour), WindowEnd: now.Add(time.Hour), SelfExecutionAllowed: true}
	step := func(at time.Time) measure.Step {
		return measure.Step{Target: "203.0.113.10", Technique: "disable_malware", Action: "sent the self-delete command", Result: "success", Witness: "u-executor2", At: at}
	}
	steps := func(s ...measure.Step) measure.Action {
		return measure.Action{Op: authz.OpLogSteps, Actor: exec, Steps: s}
	}
	order := func(deadline time.Time) measure.Action {
		return measure.Action{Op: authz.OpIssueOrder, Actor: commander, Order: &measure.Order{Addressee: "Example Hosting KK", Content: "take the server offline", Deadline: deadline}}
	}
	// state is a measure at stage, reviewed, sealed for self-execution by u-executor of a
	// domestic target with technique disable_malware, under the current rules.
	state := func(stage measure.Stage, edit ...func(*State)) State {
		s := State{Stage: stage, Version: 1, Digest: "sha256:v1", Rules: currentRules,
			Sealed: &measure.Sealed{Version: 1, Digest: "sha256:v1", Kind: measure.SelfExecute, LegalBasis: "police_duties_act_6_2",
				Executors: []string{exec.ID}, Technique: "disable_malware"},
			Facts: authz.Facts{Requester: officer.ID, LegalReviewer: legal.ID, Commander: commander.ID, NamedExecutors: []string{exec.ID},
				Participants: []string{officer.ID, legal.ID, commander.ID}}}
		for _, e := range edit {
			e(&s)
		}
		return s
	}
	approved := func(s *State) { s.Approval = window }
	emergency := func(s *State) { s.Emergency, s.Declared = true, now.Add(-30*time.Minute+300*time.Millisecond) }
	ordered := func(s *State) { s.Sealed.Kind = measure.OrderAdministrator }
	foreign := func(s *State) { s.Sealed.Foreign = true }
	sdf := func(s *State) { s.Sealed.LegalBasis = "sdf_act_communications_protection" }
	legacy := func(s *State) { s.Rules = 0 }

	var wrongStage *WrongStage
	var stale *StaleDigest
	var denied *authz.Denied
	var field *measure.FieldError
	tests := []struct {
		name  string
		state State
		a     measure.Action
		now   time.Time // zero: now
		want  any       // nil: accepted; else the type of refusal
		says  string
	}{
		{"an operation that does not exist", state(measure.Draft), measure.Action{Op: "delete_measure", Actor: officer}, time.Time{}, &field, "unknown operation"},
		{"a control character in a reason", state(measure.LegalReview), measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "return", Reason: "bad\x00"}, time.Time{}, &field, "reason"},
		{"the same reason in a measure started before the input limits", state(measure.LegalReview, legacy),
			measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "return", Reason: "bad\x00"}, time.Time{}, nil, ""},
		{"a vote on a draft", state(measure.Draft), measure.Action{Op: authz.OpVote, Actor: chair, Decision: "approve"}, time.Time{}, &wrongStage, "not possible in stage DRAFT"},
		{"a vote on the version before", state(measure.CommissionReview, func(s *State) { s.Version, s.Digest = 2, "sha256:v2" }),
			measure.Action{Op: authz.OpVote, Actor: chair, Decision: "approve", Digest: "sha256:v1"}, time.Time{}, &stale, "decided on digest sha256:v1, but the measure is now at version 2 with digest sha256:v2"},
		{"a legal review naming no digest", state(measure.LegalReview), measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve", Digest: noDigest},
			time.Time{}, &stale, "names no digest"},
		{"a legal review naming no digest, before decisions named one", state(measure.LegalReview, func(s *State) { s.Rules = 1 }),
			measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve", Digest: noDigest}, time.Time{}, nil, ""},
		{"a report verified on another digest", state(measure.Reported, func(s *State) { s.Facts.ReportAuthor = officer.ID }),
			measure.Action{Op: authz.OpVerifyReport, Actor: commander, Digest: "sha256:v0"}, time.Time{}, &stale, "sha256:v0"},
		{"an execution, which judges no version, needs no digest", state(measure.Approved, approved),
			measure.Action{Op: authz.OpStartExecution, Actor: exec, Digest: noDigest}, time.Time{}, nil, ""},
		{"information requested by a recused member", state(measure.CommissionReview, func(s *State) { s.Facts.Recused = []string{reviewer.ID} }),
			measure.Action{Op: authz.OpRequestInfo, Actor: reviewer, Reason: "the contract"}, time.Time{}, &denied, "recused"},
		{"a legal review that neither approves nor returns", state(measure.LegalReview), measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "reject"}, time.Time{}, &field, "must be one of [approve return]"},
		{"a command review returned without a reason", state(measure.CommandReview), measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "return", Reason: " "}, time.Time{}, &field, "reason"},
		{"a command review returned with a reason", state(measure.CommandReview), measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "return", Reason: "no pcap"}, time.Time{}, nil, ""},
		{"a command review approved without a reason", state(measure.CommandReview), measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "approve"}, time.Time{}, nil, ""},

		{"a gate that does not exist", state(measure.Gates, foreign), measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "cabinet", Reference: "x"}, time.Time{}, &field, "must be one of"},
		{"a Foreign Ministry gate for a domestic target", state(measure.Gates), measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "foreign_ministry", Reference: "MOFA-1"}, time.Time{}, &wrongStage, "does not need gate foreign_ministry"},
		{"a Foreign Ministry gate for a target abroad", state(measure.Gates, foreign), measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "foreign_ministry", Reference: "MOFA-1"}, time.Time{}, nil, ""},
		{"a gate without its reference", state(measure.Gates, foreign), measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "foreign_ministry"}, time.Time{}, &field, "reference"},
		{"a gate recorded twice", state(measure.Gates, foreign, func(s *State) { s.Gates = []string{"foreign_ministry"} }),
			measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "foreign_ministry", Reference: "MOFA-2"}, time.Time{}, &wrongStage, "already recorded"},
		{"a Prime Minister's order under the SDF Act", state(measure.Gates, sdf), measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "pm_order", Reference: "PMO-1"}, time.Time{}, nil, ""},
		{"a Prime Minister's order under police law", state(measure.Gates), measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "pm_order", Reference: "PMO-1"}, time.Time{}, &wrongStage, "does not need gate pm_order"},
		{"a Prime Minister's order for an SDF emergency", state(measure.EmergencyExecuting, sdf, emergency), measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "pm_order", Reference: "PMO-1"}, time.Time{}, &wrongStage, "does not need gate pm_order"},
		{"a gate before anything is sealed", state(measure.Gates, func(s *State) { s.Sealed = nil }), measure.Action{Op: authz.OpRecordGate, Actor: commander, Gate: "foreign_ministry", Reference: "MOFA-1"}, time.Time{}, &wrongStage, "does not need gate"},

		{"a conflict declared after voting", state(measure.CommissionReview, func(s *State) { s.Facts.Voters = []string{member1.ID} }),
			measure.Action{Op: authz.OpDeclareConflict, Actor: member1, Conflicted: true, Reason: "former employer"}, time.Time{}, &wrongStage, "declared before voting"},
		{"a conflict declared after voting, before that rule", state(measure.CommissionReview, legacy, func(s *State) { s.Facts.Voters = []string{member1.ID} }),
			measure.Action{Op: authz.OpDeclareConflict, Actor: member1, Conflicted: true, Reason: "former employer"}, time.Time{}, nil, ""},
		{"no conflict, after voting", state(measure.CommissionReview, func(s *State) { s.Facts.Voters = []string{member1.ID} }),
			measure.Action{Op: authz.OpDeclareConflict, Actor: member1}, time.Time{}, nil, ""},
		{"a conflict without its reason", state(measure.CommissionReview), measure.Action{Op: authz.OpDeclareConflict, Actor: member1, Conflicted: true}, time.Time{}, &field, "reason"},
		{"an abstention", state(measure.CommissionReview), measure.Action{Op: authz.OpVote, Actor: member1, Decision: "abstain"}, time.Time{}, &field, "must be one of [approve reject return]"},
		{"a rejection without a reason", state(measure.CommissionReview), measure.Action{Op: authz.OpVote, Actor: member1, Decision: "reject"}, time.Time{}, &field, "reason"},
		{"a return with a reason", state(measure.CommissionReview), measure.Action{Op: authz.OpVote, Actor: member1, Decision: "return", Reason: "which servers?"}, time.Time{}, nil, ""},
		{"an approval without a reason", state(measure.CommissionReview), measure.Action{Op: authz.OpVote, Actor: member1, Decision: "approve"}, time.Time{}, nil, ""},
		{"a question without a question", state(measure.CommissionReview), measure.Action{Op: authz.OpRequestInfo, Actor: member1}, time.Time{}, &field, "reason"},
		{"a withdrawal without a reason", state(measure.Approved, approved), measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "\t"}, time.Time{}, &field, "reason"},
		{"an empty answer", state(measure.InfoRequested), measure.Action{Op: authz.OpRespondInfo, Actor: officer}, time.Time{}, &field, "body"},
		{"an emergency without a reason", state(measure.Draft), measure.Action{Op: authz.OpDeclareEmergency, Actor: commander}, time.Time{}, &field, "reason"},

		{"an order for a self-executed measure", state(measure.Approved, approved), order(now.Add(time.Minute)), time.Time{}, &wrongStage, "self-execution, not an order"},
		{"an order without an order", state(measure.Approved, approved, ordered), measure.Action{Op: authz.OpIssueOrder, Actor: commander}, time.Time{}, &field, "order"},
		{"an order to nobody", state(measure.Approved, approved, ordered), measure.Action{Op: authz.OpIssueOrder, Actor: commander,
			Order: &measure.Order{Content: "take it offline", Deadline: now.Add(time.Minute)}}, time.Time{}, &field, "order.addressee"},
		{"an order that orders nothing", state(measure.Approved, approved, ordered), measure.Action{Op: authz.OpIssueOrder, Actor: commander,
			Order: &measure.Order{Addressee: "Example Hosting KK", Deadline: now.Add(time.Minute)}}, time.Time{}, &field, "order.content"},
		{"an order due now", state(measure.Approved, approved, ordered), order(now), time.Time{}, &field, "must be in the future"},
		{"an order due a moment from now", state(measure.Approved, approved, ordered), order(now.Add(time.Nanosecond)), time.Time{}, nil, ""},
		{"an order due when the window closes", state(measure.Approved, approved, ordered), order(window.WindowEnd), time.Time{}, nil, ""},
		{"an order due after the window closes", state(measure.Approved, approved, ordered), order(window.WindowEnd.Add(time.Nanosecond)), time.Time{}, &field, "inside the approval window"},
		{"an order outcome that is neither", state(measure.OrderIssued, approved, ordered), measure.Action{Op: authz.OpOrderOutcome, Actor: commander, Decision: "ignored"}, time.Time{}, &field, "must be one of [complied not_complied]"},

		{"execution of an approved order", state(measure.Approved, approved, ordered), measure.Action{Op: authz.OpStartExecution, Actor: exec}, time.Time{}, &wrongStage, "issue it first"},
		{"execution of an ignored order without self-execution allowed", state(measure.OrderIssued, ordered, func(s *State) {
			w := *window
			w.SelfExecutionAllowed = false
			s.Approval = &w
		}), measure.Action{Op: authz.OpStartExecution, Actor: exec}, time.Time{}, &denied, "does not cover execution by the agency"},
		{"execution of an ignored order with self-execution allowed", state(measure.OrderIssued, ordered, approved), measure.Action{Op: authz.OpStartExecution, Actor: exec}, time.Time{}, nil, ""},
		{"execution as the window opens", state(measure.Approved, approved), measure.Action{Op: authz.OpStartExecution, Actor: exec}, window.WindowStart, nil, ""},
		{"execution before the window", state(measure.Approved, approved), measure.Action{Op: authz.OpStartExecution, Actor: exec}, window.WindowStart.Add(-time.Nanosecond), &denied, "outside the approved window"},
		{"execution as the window closes", state(measure.Approved, approved), measure.Action{Op: authz.OpStartExecution, Actor: exec}, window.WindowEnd, &denied, "outside the approved window"},
		{"execution without an approval", state(measure.Approved), measure.Action{Op: authz.OpStartExecution, Actor: exec}, time.Time{}, &denied, "no approval is in force"},

		{"no steps", state(measure.Executing, approved), steps(), time.Time{}, &field, "steps"},
		{"a step the executor witnessed", state(measure.Executing, approved), steps(func() measure.Step { s := step(now); s.Witness = exec.ID; return s }()), time.Time{}, &denied, "witness must differ"},
		{"a step with another technique", state(measure.Executing, approved), steps(step(now), func() measure.Step { s := step(now); s.Technique = "block_c2"; return s }()), time.Time{}, &denied, "steps[1].technique block_c2 is not the approved technique"},
		{"a step of a version sealed before techniques were", state(measure.Executing, approved, func(s *State) { s.Sealed.Technique = "" }),
			steps(func() measure.Step { s := step(now); s.Technique = "block_c2"; return s }()), time.Time{}, nil, ""},
		{"a step as the window opens", state(measure.Executing, approved), steps(step(window.WindowStart)), time.Time{}, nil, ""},
		{"a step before the window", state(measure.Executing, approved), steps(step(now), step(window.WindowStart.Add(-time.Nanosecond))), time.Time{}, &denied, "steps[1].at"},
		{"a step a minute ahead of the clock", state(measure.Executing, approved), steps(step(now.Add(MaxClockSkew))), time.Time{}, nil, ""},
		{"a step more than a minute ahead of the clock", state(measure.Executing, approved), steps(step(now.Add(MaxClockSkew + time.Nanosecond))), time.Time{}, &denied, "in the future"},
		{"a step without a witness, before the input limits", state(measure.Executing, approved, legacy), steps(func() measure.Step { s := step(now); s.Witness = ""; return s }()), time.Time{}, &field, "steps[0].witness"},
		{"a step ahead of the clock, before that rule", state(measure.Executing, approved, legacy), steps(step(now.Add(MaxClockSkew + time.Second))), time.Time{}, nil, ""},
		{"an emergency step in the declaration's second", state(measure.EmergencyExecuting, emergency), steps(step(now.Add(-30 * time.Minute))), time.Time{}, nil, ""},
		{"an emergency step a moment before the declaration's second", state(measure.EmergencyExecuting, emergency), steps(step(now.Add(-30*time.Minute - time.Nanosecond))), time.Time{}, &denied, "outside the approved window"},
		{"an emergency step before the declaration, before that rule", state(measure.EmergencyExecuting, emergency, legacy), steps(step(now.Add(-31 * time.Minute))), time.Time{}, nil, ""},
		{"an emergency step after the requested window", state(measure.EmergencyExecuting, emergency, func(s *State) { s.Sealed.RequestedWindow = time.Hour }),
			steps(step(now.Add(-30*time.Minute + time.Hour))), now.Add(40 * time.Minute), &denied, "outside the approved window"},
		{"an emergency step inside the requested window", state(measure.EmergencyExecuting, emergency, func(s *State) { s.Sealed.RequestedWindow = time.Hour }),
			steps(step(now.Add(-30*time.Minute + time.Hour - time.Second))), now.Add(40 * time.Minute), nil, ""},
		{"an emergency step after the longest window, however long the request", state(measure.EmergencyExecuting, emergency, func(s *State) { s.Sealed.RequestedWindow = 30 * 24 * time.Hour }),
			steps(step(now.Add(-30*time.Minute + 14*24*time.Hour))), now.Add(15 * 24 * time.Hour), &denied, "outside the approved window"},
		{"finishing before any step", state(measure.Executing, approved), measure.Action{Op: authz.OpFinishExecution, Actor: exec}, time.Time{}, &wrongStage, "at least one execution step"},
		{"finishing after a step", state(measure.Executing, approved, func(s *State) { s.Steps = 1 }), measure.Action{Op: authz.OpFinishExecution, Actor: exec}, time.Time{}, nil, ""},

		{"an emergency reported before its review", state(measure.Executed, emergency), measure.Action{Op: authz.OpReport, Actor: exec, Body: "done"}, time.Time{}, &wrongStage, "reviewed after the fact before it is reported"},
		{"an emergency reported before its review, before that rule", state(measure.Executed, emergency, legacy), measure.Action{Op: authz.OpReport, Actor: exec, Body: "done"}, time.Time{}, nil, ""},
		{"an emergency reported after its review", state(measure.PostHocReviewed, emergency), measure.Action{Op: authz.OpReport, Actor: exec, Body: "done"}, time.Time{}, nil, ""},
		{"an empty report", state(measure.Executed), measure.Action{Op: authz.OpReport, Actor: exec}, time.Time{}, &field, "body"},
		{"a Commission notification of a measure it approved", state(measure.Executed), measure.Action{Op: authz.OpNotifyCommission, Actor: commander, Body: "done"}, time.Time{}, &wrongStage, "only an emergency measure"},
		{"an empty Commission notification", state(measure.Executed, emergency), measure.Action{Op: authz.OpNotifyCommission, Actor: commander}, time.Time{}, &field, "body"},
		{"a post-hoc review that decides nothing", state(measure.CommissionNotified, emergency), measure.Action{Op: authz.OpPostHocDecision, Actor: reviewer, Decision: "noted"}, time.Time{}, &field, "must be one of [accepted impropriety]"},
		{"an impropriety without a remedy", state(measure.CommissionNotified, emergency), measure.Action{Op: authz.OpPostHocDecision, Actor: reviewer, Decision: "impropriety"}, time.Time{}, &field, "body"},
		{"an acceptance without remarks", state(measure.CommissionNotified, emergency), measure.Action{Op: authz.OpPostHocDecision, Actor: reviewer, Decision: "accepted"}, time.Time{}, nil, ""},
		{"no notifications", state(measure.Notifying), measure.Action{Op: authz.OpNotify, Actor: officer}, time.Time{}, &field, "notifications"},
		{"a deferral without its reason, before the input limits", state(measure.Notifying, legacy),
			measure.Action{Op: authz.OpNotify, Actor: officer, Notices: []measure.Notification{{Addressee: "admin@example.net", Status: "deferred"}}}, time.Time{}, &field, "notifications[0].reason"},
		{"closing before anyone is notified", state(measure.Notifying), measure.Action{Op: authz.OpClose, Actor: officer}, time.Time{}, &wrongStage, "notification of affected parties"},
		{"closing after a notification", state(measure.Notifying, func(s *State) { s.Notices = 1 }), measure.Action{Op: authz.OpClose, Actor: officer}, time.Time{}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &measureWorkflow{in: Input{Measure: "m-1", Config: DefaultConfig()}, s: tt.state}
			at := tt.now
			if at.IsZero() {
				at = now
			}
			err := w.check(seen(tt.a, tt.state.Digest), at)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == nil:
			case err == nil:
				t.Fatalf("accepted, want a %T saying %q", tt.want, tt.says)
			case !errors.As(err, tt.want) || !strings.Contains(err.Error(), tt.says):
				t.Fatalf("refused with %T %q, want a %T saying %q", err, err, tt.want, tt.says)
			}
		})
	}
}

// noDigest, as an action's digest in these tests, sends none; an action that leaves it empty
// is sent with the digest of the version it judges, as every door sends it.
const noDigest = "none"

// seen gives a decision the digest the person saw: current, unless the test named another.
func seen(a measure.Action, current string) measure.Action {
	switch {
	case a.Digest == noDigest:
		a.Digest = ""
	case a.Digest == "" && measure.Judges(a.Op):
		a.Digest = current
	}
	return a
}
