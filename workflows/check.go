package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// The checks an action must pass: the stage, the person, the digest, the window and the
// inputs. The Update's validator runs them to refuse at once; the handler runs them again under
// the workflow's lock, since another action may have moved the measure in between.

// stages lists where each operation may be taken.
var stages = map[authz.Op][]measure.Stage{
	authz.OpSubmit:           {measure.Draft},
	authz.OpLegalReview:      {measure.LegalReview},
	authz.OpCommandReview:    {measure.CommandReview},
	authz.OpRecordGate:       {measure.Gates, measure.EmergencyExecuting},
	authz.OpDeclareConflict:  {measure.CommissionReview, measure.InfoRequested, measure.CommissionNotified},
	authz.OpVote:             {measure.CommissionReview},
	authz.OpRequestInfo:      {measure.CommissionReview},
	authz.OpRespondInfo:      {measure.InfoRequested},
	authz.OpWithdraw:         {measure.Draft, measure.LegalReview, measure.CommandReview, measure.Gates, measure.CommissionReview, measure.InfoRequested, measure.Approved, measure.OrderIssued},
	authz.OpIssueOrder:       {measure.Approved},
	authz.OpOrderOutcome:     {measure.OrderIssued},
	authz.OpStartExecution:   {measure.Approved, measure.OrderIssued},
	authz.OpLogSteps:         {measure.Executing, measure.EmergencyExecuting},
	authz.OpFinishExecution:  {measure.Executing, measure.EmergencyExecuting},
	authz.OpDeclareEmergency: {measure.Draft, measure.LegalReview, measure.CommandReview, measure.Gates},
	authz.OpNotifyCommission: {measure.Executed},
	authz.OpPostHocDecision:  {measure.CommissionNotified},
	authz.OpReport:           {measure.Executed, measure.PostHocReviewed},
	authz.OpVerifyReport:     {measure.Reported},
	authz.OpNotify:           {measure.Notifying},
	authz.OpClose:            {measure.Notifying},
}

// StagesFor returns the stages in which op may be taken (for the API and documentation).
func StagesFor(op authz.Op) []measure.Stage { return stages[op] }

// WrongStage refuses an action the measure's stage does not allow.
type WrongStage struct {
	Op    authz.Op
	Stage measure.Stage
	Why   string
}

func (e *WrongStage) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("%s is not possible in stage %s: %s", e.Op, e.Stage, e.Why)
	}
	return fmt.Sprintf("%s is not possible in stage %s (allowed in %v)", e.Op, e.Stage, stages[e.Op])
}

// StaleDigest refuses a decision on a digest that is not the measure's current one.
type StaleDigest struct {
	Op      authz.Op
	Seen    string // the digest the person decided on
	Version int    // the current version
	Digest  string // and its digest
}

func (e *StaleDigest) Error() string {
	if e.Seen == "" {
		return fmt.Sprintf("%s names no digest: give the digest of the version decided on (version %d is %s)", e.Op, e.Version, e.Digest)
	}
	return fmt.Sprintf("%s was decided on digest %s, but the measure is now at version %d with digest %s: read it again", e.Op, e.Seen, e.Version, e.Digest)
}

// validate refuses an action before it enters history. It re-checks what the API checked,
// from workflow state alone.
func (w *measureWorkflow) validate(a measure.Action, now time.Time) error {
	return failure(w.check(a, now))
}

func (w *measureWorkflow) check(a measure.Action, now time.Time) error {
	s := &w.s
	allowed, ok := stages[a.Op]
	if !ok {
		return &measure.FieldError{Field: "op", Message: fmt.Sprintf("unknown operation %q", a.Op)}
	}
	rev1 := s.Rules >= 1
	if rev1 {
		if err := a.CheckInput(); err != nil {
			return err
		}
	}
	if !slices.Contains(allowed, s.Stage) {
		return &WrongStage{Op: a.Op, Stage: s.Stage}
	}
	if err := authz.SoD(a.Op, a.Actor, s.Facts, now); err != nil {
		return err
	}
	if s.Rules >= 2 && measure.Judges(a.Op) && a.Digest != s.Digest {
		return &StaleDigest{Op: a.Op, Seen: a.Digest, Version: s.Version, Digest: s.Digest}
	}
	need := func(field, value string) error {
		if strings.TrimSpace(value) == "" {
			return &measure.FieldError{Field: field, Message: "is required"}
		}
		return nil
	}
	oneOf := func(field, value string, options ...string) error {
		if !slices.Contains(options, value) {
			return &measure.FieldError{Field: field, Message: fmt.Sprintf("must be one of %v", options)}
		}
		return nil
	}
	switch a.Op {
	case authz.OpLegalReview, authz.OpCommandReview:
		if err := oneOf("decision", a.Decision, "approve", "return"); err != nil {
			return err
		}
		if a.Decision == "return" {
			return need("reason", a.Reason)
		}
	case authz.OpRecordGate:
		if err := oneOf("gate", a.Gate, "foreign_ministry", "pm_order"); err != nil {
			return err
		}
		if !slices.Contains(w.gatesNeeded(), a.Gate) {
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: "this measure does not need gate " + a.Gate}
		}
		if slices.Contains(s.Gates, a.Gate) {
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: "gate " + a.Gate + " is already recorded"}
		}
		return need("reference", a.Reference)
	case authz.OpDeclareConflict:
		if rev1 && a.Conflicted && slices.Contains(s.Facts.Voters, a.Actor.ID) {
			// A recused member's vote must not count, and a vote is not taken back.
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: a.Actor.Username + " has voted on this version: a conflict is declared before voting"}
		}
		if a.Conflicted {
			return need("reason", a.Reason)
		}
	case authz.OpVote:
		if err := oneOf("decision", a.Decision, "approve", "reject", "return"); err != nil {
			return err
		}
		if a.Decision != "approve" {
			return need("reason", a.Reason)
		}
	case authz.OpRequestInfo, authz.OpWithdraw:
		return need("reason", a.Reason)
	case authz.OpRespondInfo, authz.OpReport:
		if rev1 && a.Op == authz.OpReport && s.Stage == measure.Executed && s.Emergency {
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: "an emergency measure is notified to the Commission and reviewed after the fact before it is reported"}
		}
		return need("body", a.Body)
	case authz.OpDeclareEmergency:
		return need("reason", a.Reason)
	case authz.OpNotifyCommission:
		if !s.Emergency {
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: "only an emergency measure is notified after the fact"}
		}
		return need("body", a.Body)
	case authz.OpPostHocDecision:
		if err := oneOf("decision", a.Decision, "accepted", "impropriety"); err != nil {
			return err
		}
		if a.Decision == "impropriety" {
			return need("body", a.Body) // the remediation ordered
		}
	case authz.OpIssueOrder:
		if s.Sealed == nil || s.Sealed.Kind != measure.OrderAdministrator {
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: "the approved measure is self-execution, not an order"}
		}
		if a.Order == nil {
			return &measure.FieldError{Field: "order", Message: "is required"}
		}
		if err := need("order.addressee", a.Order.Addressee); err != nil {
			return err
		}
		if err := need("order.content", a.Order.Content); err != nil {
			return err
		}
		if !a.Order.Deadline.After(now) {
			return &measure.FieldError{Field: "order.deadline", Message: "must be in the future"}
		}
		if s.Approval != nil && a.Order.Deadline.After(s.Approval.WindowEnd) {
			return &measure.FieldError{Field: "order.deadline", Message: "must fall inside the approval window"}
		}
	case authz.OpOrderOutcome:
		return oneOf("decision", a.Decision, "complied", "not_complied")
	case authz.OpStartExecution:
		if s.Stage == measure.Approved && s.Sealed.Kind == measure.OrderAdministrator {
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: "the approval is for an order to the administrator: issue it first"}
		}
		if s.Stage == measure.OrderIssued && !s.Approval.SelfExecutionAllowed {
			return &authz.Denied{Rule: "scope", Reason: "the approval does not cover execution by the agency itself"}
		}
		return inWindow(s.Approval, now, "now")
	case authz.OpLogSteps:
		if a.StepCount() == 0 {
			return &measure.FieldError{Field: "steps", Message: "must not be empty"}
		}
		window := s.Approval
		if s.Emergency {
			window = w.emergencyWindow()
		}
		if a.Batch != nil {
			return w.checkBatch(a, window, now, rev1)
		}
		for i := range a.Steps {
			st := &a.Steps[i]
			if !rev1 {
				if err := legacyStep(st); err != nil {
					return measure.Within(fmt.Sprintf("steps[%d]", i), err)
				}
			}
			if err := w.checkStep(a, i, st.Witness, st.Technique); err != nil {
				return err
			}
			if s.Emergency && !rev1 {
				continue
			}
			if err := checkStepTime(window, st.At, i, now, rev1); err != nil {
				return err
			}
		}
	case authz.OpFinishExecution:
		if s.Steps == 0 {
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: "log at least one execution step first"}
		}
	case authz.OpNotify:
		if len(a.Notices) == 0 {
			return &measure.FieldError{Field: "notifications", Message: "must not be empty"}
		}
		if !rev1 {
			for i := range a.Notices {
				if err := a.Notices[i].Validate(); err != nil {
					return measure.Within(fmt.Sprintf("notifications[%d]", i), err)
				}
			}
		}
	case authz.OpClose:
		if s.Notices == 0 {
			return &WrongStage{Op: a.Op, Stage: s.Stage, Why: "record the notification of affected parties (sent or deferred with reasons) first"}
		}
	}
	return nil
}

func inWindow(ap *measure.Approval, t time.Time, field string) error {
	if ap == nil {
		return &authz.Denied{Rule: "window", Reason: "no approval is in force"}
	}
	if t.Before(ap.WindowStart) || !t.Before(ap.WindowEnd) {
		return &authz.Denied{Rule: "window", Reason: fmt.Sprintf("%s %s is outside the approved window %s to %s",
			field, t.UTC().Format(time.RFC3339), ap.WindowStart.UTC().Format(time.RFC3339), ap.WindowEnd.UTC().Format(time.RFC3339))}
	}
	return nil
}

// legacyStep checks a step as rules revision 0 did (rev 1 checks it at the door, in CheckInput).
func legacyStep(st *measure.Step) error {
	need := func(field, v string) error {
		if strings.TrimSpace(v) == "" {
			return &measure.FieldError{Field: field, Message: "is required"}
		}
		return nil
	}
	for _, f := range []struct{ name, v string }{{"target", st.Target}, {"action", st.Action}, {"witness", st.Witness}} {
		if err := need(f.name, f.v); err != nil {
			return err
		}
	}
	if !slices.Contains([]string{"success", "failure", "partial"}, st.Result) {
		return &measure.FieldError{Field: "result", Message: "must be one of [success failure partial]"}
	}
	if st.At.IsZero() {
		return &measure.FieldError{Field: "at", Message: "is required"}
	}
	return nil
}

// MaxClockSkew is how far ahead of the server's clock a logged step's time may be.
const MaxClockSkew = time.Minute

// emergencyWindow is the window an emergency measure's steps must fall in: from the second it
// was declared, for the requested window capped by the longest approval window.
func (w *measureWorkflow) emergencyWindow() *measure.Approval {
	s := &w.s
	window := w.in.Config.ApprovalWindow
	if s.Sealed != nil && s.Sealed.RequestedWindow > 0 {
		window = min(window, s.Sealed.RequestedWindow)
	}
	start := s.Declared.Truncate(time.Second)
	return &measure.Approval{Version: s.Version, Digest: s.Digest, WindowStart: start, WindowEnd: start.Add(window)}
}

func (w *measureWorkflow) gatesNeeded() []string {
	var g []string
	if w.s.Sealed == nil {
		return g
	}
	if w.s.Sealed.Foreign {
		g = append(g, "foreign_ministry")
	}
	if w.s.Sealed.LegalBasis == "sdf_act_communications_protection" && !w.s.Emergency {
		g = append(g, "pm_order")
	}
	return g
}

// checkStep refuses step i of a, witnessed by witness with technique: the witness must differ
// from the executor, and the technique must be the approved one.
func (w *measureWorkflow) checkStep(a measure.Action, i int, witness, technique string) error {
	if witness == a.Actor.ID {
		return &authz.Denied{Rule: "SoD-5", Reason: fmt.Sprintf("steps[%d]: the witness must differ from the executor", i)}
	}
	// Sealed versions from before the technique was sealed carry none: nothing to compare.
	if s := w.s.Sealed; s != nil && s.Technique != "" && technique != s.Technique {
		return &authz.Denied{Rule: "scope", Reason: fmt.Sprintf("steps[%d].technique %s is not the approved technique %s", i, technique, s.Technique)}
	}
	return nil
}

// checkStepTime refuses step i done at at outside the window or, under rules revision 1 on,
// ahead of the workflow's clock.
func checkStepTime(window *measure.Approval, at time.Time, i int, now time.Time, rev1 bool) error {
	if err := inWindow(window, at, fmt.Sprintf("steps[%d].at", i)); err != nil {
		return err
	}
	if rev1 && at.After(now.Add(MaxClockSkew)) {
		return &authz.Denied{Rule: "window", Reason: fmt.Sprintf("steps[%d].at %s is in the future", i, at.UTC().Format(time.RFC3339))}
	}
	return nil
}

// checkBatch judges a stored batch of steps by its summary, as checkStep and checkStepTime
// judge each step: a rule every step must keep holds for the batch when it holds for each
// witness and technique found in it and for its earliest and latest time (the window is one
// interval). A refusal names the first step holding the value refused.
func (w *measureWorkflow) checkBatch(a measure.Action, window *measure.Approval, now time.Time, rev1 bool) error {
	b := a.Batch
	first := -1
	var refused error
	note := func(i int, err error) {
		if err != nil && (first < 0 || i < first) {
			first, refused = i, err
		}
	}
	for _, m := range b.Witnesses {
		note(m.Step, w.checkStep(a, m.Step, m.Value, w.approvedTechnique()))
	}
	for _, m := range b.Techniques {
		note(m.Step, w.checkStep(a, m.Step, "", m.Value))
	}
	if refused != nil {
		return refused
	}
	if w.s.Emergency && !rev1 {
		return nil
	}
	for _, m := range []measure.MarkedAt{b.Earliest, b.Latest} {
		note(m.Step, checkStepTime(window, m.At, m.Step, now, rev1))
	}
	return refused
}

// approvedTechnique is the technique the sealed version names, if any.
func (w *measureWorkflow) approvedTechnique() string {
	if w.s.Sealed == nil {
		return ""
	}
	return w.s.Sealed.Technique
}
