// Package workflows holds MeasureWorkflow: one measure request's whole lifecycle (DESIGN
// section 4) as a Temporal workflow.
//
// Human decisions arrive as the Update "act". Its validator refuses a wrong-stage or wrong-person
// attempt synchronously, so it never enters history; an accepted action is persisted by the
// Record activity (new state and audit entry in one transaction) before the workflow's own
// state moves. Deadlines are Temporal timers. The code is deterministic: workflow.Now, no map
// ranging, no goroutines, no I/O.
package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/takedown/takedown/activities"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// TaskQueue is where measure workflows and their activities run.
const TaskQueue = "takedown"

// UpdateAct is the name of the Update that carries every human action.
const UpdateAct = "act"

// QueryState returns the workflow's State (for operators; pages read PostgreSQL).
const QueryState = "state"

// ID is the workflow ID of a measure.
func ID(measureID string) string { return "measure-" + measureID }

// Config holds the lifecycle's durations and the Commission's quorum rule.
type Config struct {
	DecisionTarget        time.Duration `json:"decision_target"`        // Commission decision target (72 h)
	DecisionTargetUrgent  time.Duration `json:"decision_target_urgent"` // for urgent requests (24 h)
	ApprovalWindow        time.Duration `json:"approval_window"`        // longest approval window (14 days)
	EmergencyNotification time.Duration `json:"emergency_notification"` // notify the Commission after an emergency (24 h)
	PostHocReview         time.Duration `json:"post_hoc_review"`        // Commission's post-hoc review (3 days)
	ReportDue             time.Duration `json:"report_due"`             // post-execution report (7 days)
	NotificationDue       time.Duration `json:"notification_due"`       // affected-party notification (30 days)
	CommissionSize        int           `json:"commission_size"`        // voting members including the chair (5)
	QuorumMembers         int           `json:"quorum_members"`         // members besides the chair who must vote (2)
	// HistoryLimit is the history length after which the workflow continues as new with its
	// state (a large execution logs thousands of step batches; a history holds ~50k events).
	HistoryLimit int `json:"history_limit,omitempty"`
}

// deadlines are the measure's timers as its seal records them, in milliseconds, for the auditor's
// replay to hold each record to the deadlines this measure kept.
func (c Config) deadlines() map[string]any {
	sec := func(d time.Duration) int64 { return d.Milliseconds() }
	return map[string]any{"decision_target": sec(c.DecisionTarget), "decision_target_urgent": sec(c.DecisionTargetUrgent),
		"approval_window": sec(c.ApprovalWindow), "emergency_notification": sec(c.EmergencyNotification),
		"post_hoc_review": sec(c.PostHocReview), "report_due": sec(c.ReportDue), "notification_due": sec(c.NotificationDue)}
}

// DefaultConfig returns the defaults of DESIGN section 4.
func DefaultConfig() Config {
	return Config{
		DecisionTarget:        72 * time.Hour,
		DecisionTargetUrgent:  24 * time.Hour,
		ApprovalWindow:        14 * 24 * time.Hour,
		EmergencyNotification: 24 * time.Hour,
		PostHocReview:         72 * time.Hour,
		ReportDue:             7 * 24 * time.Hour,
		NotificationDue:       30 * 24 * time.Hour,
		CommissionSize:        5,
		QuorumMembers:         2,
		HistoryLimit:          10000,
	}
}

// Input starts a MeasureWorkflow.
type Input struct {
	Measure   string `json:"measure"`
	Case      string `json:"case"`
	Requester string `json:"requester"`
	// Org is the owning organisation's ID, shown in the TakedownOrg search attribute.
	Org    string `json:"org,omitempty"`
	Config Config `json:"config"`
	// State carries a running measure over a continue-as-new.
	State *State `json:"state,omitempty"`
}

// Outcome is what an accepted action returns.
type Outcome struct {
	Stage   measure.Stage `json:"stage"`
	Version int           `json:"version"`
	Digest  string        `json:"digest,omitempty"`
}

// State is the workflow's whole state, one serialisable struct.
type State struct {
	Stage     measure.Stage     `json:"stage"`
	Version   int               `json:"version"`
	Digest    string            `json:"digest,omitempty"`
	Seq       int               `json:"seq"` // transitions recorded so far
	Sealed    *measure.Sealed   `json:"sealed,omitempty"`
	Facts     authz.Facts       `json:"facts"`
	Votes     []measure.Vote    `json:"votes,omitempty"`
	Gates     []string          `json:"gates,omitempty"` // gates recorded for the current version
	Emergency bool              `json:"emergency,omitempty"`
	Approval  *measure.Approval `json:"approval,omitempty"`
	Order     *measure.Order    `json:"order,omitempty"`
	Notices   int               `json:"notices,omitempty"`
	Steps     int               `json:"steps,omitempty"` // execution steps logged
	Since     time.Time         `json:"since"`           // when the current stage was entered
	Declared  time.Time         `json:"declared,omitzero"`
	Notified  time.Time         `json:"notified,omitzero"`
	Executed  time.Time         `json:"executed,omitzero"`
	Fired     []string          `json:"fired,omitempty"` // deadlines already recorded
	// Policy is the authorization policy of the latest human action; the workflow's own
	// transitions are recorded under it.
	Policy string `json:"policy,omitempty"`
	// Rules is the revision of the workflow's own rules the measure started under. A workflow
	// replaying its history must decide as it decided then, so rules added later apply only
	// to measures started after them.
	Rules int `json:"rules,omitempty"`
}

// Rules revisions:
//
//	0: the first lifecycle
//	1: input limits at the door of the workflow; emergency steps held to the emergency window
//	   and no step ahead of the clock; a conflict declared before voting; a conflict
//	   declaration is no part in the measure; an emergency measure is reviewed before it is
//	   reported
//	2: an operation that judges a version names the digest it judges, and is refused unless it
//	   is the current one; a recused member takes no part in the Commission's review
//	3: the workflow keeps search attributes (stage, organisation, emergency, next deadline)
const currentRules = 3

type measureWorkflow struct {
	in    Input
	s     State
	mu    workflow.Mutex
	shown published // the search attributes last upserted
}

// MeasureWorkflow runs one measure request from DRAFT to a terminal stage.
func MeasureWorkflow(ctx workflow.Context, in Input) (State, error) {
	// A sealed input copied into a workflow of another ID (by someone who reaches the cluster)
	// runs nothing: the input names its measure, and the measure its workflow.
	if id := workflow.GetInfo(ctx).WorkflowExecution.ID; id != ID(in.Measure) {
		return State{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workflow %s was started with the input of measure %s: refused", id, in.Measure), "WrongWorkflow", nil)
	}
	w := &measureWorkflow{in: in, mu: workflow.NewMutex(ctx)}
	w.s = State{Stage: measure.Draft, Version: 1, Since: workflow.Now(ctx), Facts: authz.Facts{Requester: in.Requester}, Rules: currentRules}
	if in.State != nil {
		w.s, in.State = *in.State, nil
	}

	if err := workflow.SetQueryHandler(ctx, QueryState, func() (State, error) { return w.s, nil }); err != nil {
		return w.s, err
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAct,
		func(ctx workflow.Context, a measure.Action) (Outcome, error) { return w.act(ctx, a) },
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, a measure.Action) error {
			return w.validate(a, workflow.Now(ctx))
		}},
	)
	if err != nil {
		return w.s, err
	}

	for !w.s.Stage.Terminal() {
		if err := w.publish(ctx); err != nil {
			return w.s, err
		}
		if w.historyFull(ctx) {
			// Hand over at a quiet point: no action half-recorded.
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return w.s, err
			}
			next := in
			st := w.s
			next.State = &st
			return w.s, workflow.NewContinueAsNewError(ctx, MeasureWorkflow, next)
		}
		seq := w.s.Seq
		moved := func() bool { return w.s.Seq != seq }
		name, at, ok := w.nextDeadline()
		if !ok {
			if err := workflow.Await(ctx, moved); err != nil {
				return w.s, err
			}
			continue
		}
		if wait := at.Sub(workflow.Now(ctx)); wait > 0 {
			done, err := workflow.AwaitWithTimeout(ctx, wait, moved)
			if err != nil {
				return w.s, err
			}
			if done {
				continue
			}
		}
		if err := w.deadline(ctx, seq, name); err != nil {
			return w.s, err
		}
	}
	// Let accepted Updates finish before the workflow completes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return w.s, err
	}
	return w.s, w.publish(ctx)
}

// historyFull reports whether the history is long enough to continue as new.
func (w *measureWorkflow) historyFull(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	limit := w.in.Config.HistoryLimit
	return info.GetContinueAsNewSuggested() || (limit > 0 && info.GetCurrentHistoryLength() > limit)
}

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
		if len(a.Steps) == 0 {
			return &measure.FieldError{Field: "steps", Message: "must not be empty"}
		}
		window := s.Approval
		if s.Emergency {
			window = w.emergencyWindow()
		}
		for i := range a.Steps {
			st := &a.Steps[i]
			if !rev1 {
				if err := legacyStep(st); err != nil {
					return measure.Within(fmt.Sprintf("steps[%d]", i), err)
				}
			}
			if st.Witness == a.Actor.ID {
				return &authz.Denied{Rule: "SoD-5", Reason: fmt.Sprintf("steps[%d]: the witness must differ from the executor", i)}
			}
			// Sealed versions from before the technique was sealed carry none: nothing to compare.
			if s.Sealed != nil && s.Sealed.Technique != "" && st.Technique != s.Sealed.Technique {
				return &authz.Denied{Rule: "scope", Reason: fmt.Sprintf("steps[%d].technique %s is not the approved technique %s", i, st.Technique, s.Sealed.Technique)}
			}
			if s.Emergency && !rev1 {
				continue
			}
			if err := inWindow(window, st.At, fmt.Sprintf("steps[%d].at", i)); err != nil {
				return err
			}
			if rev1 && st.At.After(now.Add(MaxClockSkew)) {
				return &authz.Denied{Rule: "window", Reason: fmt.Sprintf("steps[%d].at %s is in the future", i, st.At.UTC().Format(time.RFC3339))}
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

// act carries out an accepted action: re-check under the lock (another action may have moved
// the measure since validation), persist, then move the workflow's state.
func (w *measureWorkflow) act(ctx workflow.Context, a measure.Action) (Outcome, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return Outcome{}, err
	}
	defer w.mu.Unlock()
	now := workflow.Now(ctx)
	if err := w.check(a, now); err != nil {
		return Outcome{}, failure(err)
	}
	s := &w.s
	to := w.next(a)
	ch := w.change(string(a.Op), a, to)
	if a.Op == authz.OpSubmit || a.Op == authz.OpDeclareEmergency {
		ch.Details = map[string]any{"deadlines": w.in.Config.deadlines()}
	}
	if (a.Op == authz.OpLegalReview || a.Op == authz.OpCommandReview) && a.Decision == "return" {
		ch.NewVersion = s.Version + 1
	}
	// Facts after the change, so the projection the API reads is current.
	f := s.Facts
	switch a.Op {
	case authz.OpLegalReview:
		f.LegalReviewer = a.Actor.ID
	case authz.OpCommandReview:
		f.Commander = a.Actor.ID
	case authz.OpVote:
		f.Voters = append(slices.Clone(f.Voters), a.Actor.ID)
	case authz.OpDeclareConflict:
		if a.Conflicted && !slices.Contains(f.Recused, a.Actor.ID) {
			f.Recused = append(slices.Clone(f.Recused), a.Actor.ID)
		}
	case authz.OpLogSteps:
		if !slices.Contains(f.Executors, a.Actor.ID) {
			f.Executors = append(slices.Clone(f.Executors), a.Actor.ID)
		}
	case authz.OpReport:
		f.ReportAuthor = a.Actor.ID
	case authz.OpRecordGate:
		if a.Gate == "foreign_ministry" {
			f.ForeignMinistry = true
		}
	}
	// A conflict declaration is not a part in the measure: a member who declared none may still
	// review it after the fact.
	if a.Actor.ID != "" && !slices.Contains(f.Participants, a.Actor.ID) && a.Op != authz.OpPostHocDecision && (a.Op != authz.OpDeclareConflict || s.Rules < 1) {
		f.Participants = append(slices.Clone(f.Participants), a.Actor.ID)
	}
	if ch.NewVersion != 0 {
		f = resetReviews(f)
	}
	ch.Facts = f

	res, err := w.record(ctx, ch)
	if err != nil {
		return Outcome{}, err
	}
	s.Facts = f
	if res.Sealed != nil {
		s.Sealed, s.Digest = res.Sealed, res.Sealed.Digest
		s.Facts.NamedExecutors = res.Sealed.Executors
		s.Facts.Foreign = res.Sealed.Foreign
	}
	switch a.Op {
	case authz.OpVote:
		s.Votes = append(s.Votes, measure.Vote{Member: a.Actor.ID, Chair: a.Actor.Has(authz.CommissionChair),
			Vote: a.Decision, Reason: a.Reason, Conditions: a.Conditions})
	case authz.OpRecordGate:
		s.Gates = append(s.Gates, a.Gate)
	case authz.OpDeclareEmergency:
		s.Emergency, s.Declared = true, now
	case authz.OpIssueOrder:
		s.Order = a.Order
	case authz.OpNotifyCommission:
		s.Notified = now
	case authz.OpNotify:
		s.Notices += len(a.Notices)
	case authz.OpLogSteps:
		s.Steps += len(a.Steps)
	}
	if to == measure.Executed {
		s.Executed = now
	}
	if ch.NewVersion != 0 {
		w.newVersion(ch.NewVersion)
	}
	w.enter(to, now)

	// Transitions that follow on their own.
	if err := w.follow(ctx); err != nil {
		return Outcome{}, err
	}
	return Outcome{Stage: s.Stage, Version: s.Version, Digest: s.Digest}, nil
}

// next is the stage an accepted action leads to.
func (w *measureWorkflow) next(a measure.Action) measure.Stage {
	s := w.s.Stage
	switch a.Op {
	case authz.OpSubmit:
		return measure.LegalReview
	case authz.OpLegalReview:
		if a.Decision == "return" {
			return measure.Draft
		}
		return measure.CommandReview
	case authz.OpCommandReview:
		if a.Decision == "return" {
			return measure.Draft
		}
		return measure.Gates
	case authz.OpRequestInfo:
		return measure.InfoRequested
	case authz.OpRespondInfo:
		return measure.CommissionReview
	case authz.OpWithdraw:
		return measure.Withdrawn
	case authz.OpIssueOrder:
		return measure.OrderIssued
	case authz.OpOrderOutcome:
		if a.Decision == "complied" {
			return measure.Executed
		}
	case authz.OpStartExecution:
		return measure.Executing
	case authz.OpFinishExecution:
		return measure.Executed
	case authz.OpDeclareEmergency:
		return measure.EmergencyExecuting
	case authz.OpNotifyCommission:
		return measure.CommissionNotified
	case authz.OpPostHocDecision:
		return measure.PostHocReviewed
	case authz.OpReport:
		return measure.Reported
	case authz.OpVerifyReport:
		return measure.Notifying
	case authz.OpClose:
		return measure.Closed
	}
	return s
}

// follow makes the transitions no person decides: gates already satisfied, and the
// Commission's decision once the votes settle it.
func (w *measureWorkflow) follow(ctx workflow.Context) error {
	s := &w.s
	if s.Stage == measure.Gates && w.gatesDone() {
		ch := w.change("gates_satisfied", measure.Action{Actor: authz.System}, measure.CommissionReview)
		ch.Details = map[string]any{"gates": s.Gates}
		if _, err := w.record(ctx, ch); err != nil {
			return err
		}
		w.enter(measure.CommissionReview, workflow.Now(ctx))
	}
	if s.Stage == measure.CommissionReview {
		tally, ok := w.tally()
		if !ok {
			return nil
		}
		now := workflow.Now(ctx)
		to := map[string]measure.Stage{"approved": measure.Approved, "rejected": measure.Rejected, "returned": measure.Draft}[tally.Outcome]
		ch := w.change("decide", measure.Action{Actor: authz.System}, to)
		ch.Tally = &tally
		if tally.Outcome == "approved" {
			ch.Approval = w.approval(tally, now)
		}
		if tally.Outcome == "returned" {
			ch.NewVersion = s.Version + 1
			ch.Facts = resetReviews(s.Facts)
		}
		if _, err := w.record(ctx, ch); err != nil {
			return err
		}
		s.Facts = ch.Facts
		s.Approval = ch.Approval
		if ch.NewVersion != 0 {
			w.newVersion(ch.NewVersion)
		}
		w.enter(to, now)
	}
	return nil
}

func (w *measureWorkflow) gatesDone() bool {
	for _, g := range w.gatesNeeded() {
		if !slices.Contains(w.s.Gates, g) {
			return false
		}
	}
	return true
}

// tally applies the quorum rule: the chair and QuorumMembers other members present; a strict
// majority of the eligible (non-recused) members decides; once every eligible member has voted,
// the most votes decide and a tie goes to the chair's vote.
func (w *measureWorkflow) tally() (measure.Tally, bool) {
	cfg := w.in.Config
	s := &w.s
	t := measure.Tally{Eligible: cfg.CommissionSize - len(s.Facts.Recused), Votes: s.Votes}
	chair := ""
	for _, v := range s.Votes {
		switch v.Vote {
		case "approve":
			t.Approve++
		case "reject":
			t.Reject++
		case "return":
			t.Return++
		}
		if v.Chair {
			chair = v.Vote
		}
	}
	if chair == "" || len(s.Votes)-1 < cfg.QuorumMembers {
		return t, false
	}
	outcomes := []struct {
		name  string
		vote  string
		count int
	}{{"approved", "approve", t.Approve}, {"rejected", "reject", t.Reject}, {"returned", "return", t.Return}}
	for _, o := range outcomes {
		if 2*o.count > t.Eligible {
			t.Outcome = o.name
			return t, true
		}
	}
	if len(s.Votes) < t.Eligible {
		return t, false
	}
	best := 0
	for _, o := range outcomes {
		best = max(best, o.count)
	}
	var top []string
	for _, o := range outcomes {
		if o.count == best {
			top = append(top, o.name)
		}
	}
	if len(top) == 1 {
		t.Outcome = top[0]
		return t, true
	}
	for _, o := range outcomes {
		if o.vote == chair && slices.Contains(top, o.name) {
			t.Outcome, t.Casting = o.name, true
			return t, true
		}
	}
	// The chair voted for an option outside the tie: no option can win; the request goes back.
	t.Outcome = "returned"
	return t, true
}

func (w *measureWorkflow) approval(t measure.Tally, now time.Time) *measure.Approval {
	s := &w.s
	window := w.in.Config.ApprovalWindow
	if r := s.Sealed.RequestedWindow; r > 0 {
		window = min(window, r)
	}
	var conds []string
	for _, v := range t.Votes {
		if v.Vote == "approve" {
			for _, c := range v.Conditions {
				if !slices.Contains(conds, c) {
					conds = append(conds, c)
				}
			}
		}
	}
	slices.Sort(conds)
	// Executors log step times to the second; a window that opened mid-second must not refuse
	// a step logged in that same second.
	start := now.Truncate(time.Second)
	return &measure.Approval{
		Version: s.Version, Digest: s.Digest, WindowStart: start, WindowEnd: start.Add(window), Conditions: conds,
		SelfExecutionAllowed: s.Sealed.Kind == measure.SelfExecute || s.Sealed.SelfExecutionFallback,
	}
}

// newVersion opens a new draft version: everything given on the old digest is void.
func (w *measureWorkflow) newVersion(v int) {
	s := &w.s
	s.Version, s.Digest, s.Sealed, s.Votes, s.Gates, s.Approval = v, "", nil, nil, nil, nil
}

func resetReviews(f authz.Facts) authz.Facts {
	f.LegalReviewer, f.Commander, f.Voters, f.ForeignMinistry = "", "", nil, false
	return f
}

func (w *measureWorkflow) enter(to measure.Stage, now time.Time) {
	if to != w.s.Stage {
		w.s.Stage, w.s.Since = to, now
	}
}

func (w *measureWorkflow) change(kind string, a measure.Action, to measure.Stage) activities.Change {
	s := &w.s
	if a.PolicyVersion != "" {
		s.Policy = a.PolicyVersion
	} else {
		a.PolicyVersion = s.Policy
	}
	return activities.Change{
		Key:     fmt.Sprintf("%s/%d", ID(w.in.Measure), s.Seq+1),
		Measure: w.in.Measure, Case: w.in.Case, Version: s.Version, Action: a, Kind: kind,
		From: s.Stage, To: to, Facts: s.Facts, Digest: s.Digest,
	}
}

// record persists a change; the transition counter moves only once it is committed.
//
// A person's action is retried for at most ActionRecordTimeout: its Update then fails and the
// person is told, rather than waiting for ever on a database that does not answer. What the
// workflow does on its own (decisions, gates, deadlines) is retried until it lands, with the
// activity logging each failure. Errors that retrying cannot heal are never retried: the
// activity audits them as refusals.
func (w *measureWorkflow) record(ctx workflow.Context, ch activities.Change) (activities.Result, error) {
	opts := workflow.ActivityOptions{
		// Short: a transaction takes milliseconds, and after a crash the workflow waits this long
		// before it retries an activity that was in flight.
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
			NonRetryableErrorTypes: []string{refusal.TypeRefused, refusal.TypeInvalid, refusal.TypeRejected, refusal.TypeHalted},
		},
	}
	if ch.Action.Actor.ID != authz.System.ID {
		opts.ScheduleToCloseTimeout = ActionRecordTimeout
	}
	ctx = workflow.WithActivityOptions(ctx, opts)
	var res activities.Result
	var a *activities.Activities
	if err := workflow.ExecuteActivity(ctx, a.Record, ch).Get(ctx, &res); err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && slices.Contains([]string{refusal.TypeRefused, refusal.TypeInvalid, refusal.TypeRejected, refusal.TypeHalted}, app.Type()) {
			return res, app
		}
		return res, fmt.Errorf("record %s: %w", ch.Kind, err)
	}
	w.s.Seq++
	return res, nil
}

// ActionRecordTimeout bounds how long a person's action is retried against the database.
const ActionRecordTimeout = time.Minute

// nextDeadline is the earliest deadline of the current stage not yet recorded.
func (w *measureWorkflow) nextDeadline() (string, time.Time, bool) {
	for _, d := range w.in.Config.Deadlines(w.s.Clock()) {
		if !slices.Contains(w.s.Fired, w.firedKey(d.Name)) {
			return d.Name, d.At, true
		}
	}
	return "", time.Time{}, false
}

func (w *measureWorkflow) firedKey(name string) string {
	return fmt.Sprintf("%s@v%d", name, w.s.Version)
}

// deadline records a deadline that passed; an approval window that passes unused expires the
// measure.
func (w *measureWorkflow) deadline(ctx workflow.Context, seq int, name string) error {
	if err := w.mu.Lock(ctx); err != nil {
		return err
	}
	defer w.mu.Unlock()
	if w.s.Seq != seq { // an action moved the measure while the timer fired
		return nil
	}
	to := w.s.Stage
	if name == "expired" {
		to = measure.Expired
	}
	ch := w.change("deadline."+name, measure.Action{Actor: authz.System}, to)
	if _, err := w.record(ctx, ch); err != nil {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) {
			return err
		}
		// Refused for good (audited by the activity): do not fire it again, keep the measure.
		workflow.GetLogger(ctx).Error("deadline could not be recorded", "deadline", name, "err", err)
		w.s.Fired = append(w.s.Fired, w.firedKey(name))
		return nil
	}
	w.s.Fired = append(w.s.Fired, w.firedKey(name))
	w.enter(to, workflow.Now(ctx))
	return nil
}

// failure turns a refusal into an application error the API can map to an HTTP status.
func failure(err error) error {
	if err == nil {
		return nil
	}
	var ws *WrongStage
	var sd *StaleDigest
	var d *authz.Denied
	var fe *measure.FieldError
	switch {
	case errors.As(err, &sd):
		return temporal.NewNonRetryableApplicationError(err.Error(), refusal.TypeStale, nil)
	case errors.As(err, &ws):
		return temporal.NewNonRetryableApplicationError(err.Error(), refusal.TypeWrongStage, nil)
	case errors.As(err, &d):
		return temporal.NewNonRetryableApplicationError(err.Error(), refusal.TypeDenied, nil, *d)
	case errors.As(err, &fe):
		return temporal.NewNonRetryableApplicationError(err.Error(), refusal.TypeInvalid, nil, *fe)
	}
	return err
}
