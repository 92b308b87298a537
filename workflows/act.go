package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/takedown/takedown/activities"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// What an accepted action does: the next stage, the Commission's tally, the approval and
// its window, and the Record activity that makes the change durable with its audit entry.

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
		s.Steps += a.StepCount()
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
