// Package workflows holds MeasureWorkflow: one measure request's whole lifecycle (DESIGN
// section 4) as a Temporal workflow.
//
// Human decisions arrive as the Update "act". Its validator refuses a wrong-stage or wrong-person
// attempt synchronously, so it never enters history; an accepted action is persisted by the
// Record activity (new state and audit entry in one transaction) before the workflow's own
// state moves. Deadlines are Temporal timers. The code is deterministic: workflow.Now, no map
// ranging, no goroutines, no I/O.
//
// The files: measure.go the workflow's loop and state, check.go what an action must pass,
// act.go what an accepted action does, deadlines.go the timers, search.go the search
// attributes.
//
// # Changing workflow code
//
// A measure's workflow runs for weeks and is replayed from its history by whatever code the
// workers run then. Any change to what the workflow asks Temporal to do (an activity, a timer,
// a search attribute upsert, a marker, continue-as-new) or to their order, count or options
// would make a running measure's replay diverge: the worker fails its workflow tasks
// ("nondeterminism") and the measure stalls until the old code is back. So:
//
//  1. Guard the change with workflow.GetVersion under a new change ID, as
//     changeKeepDeadlineTimer does: DefaultVersion keeps the old code for measures started
//     before it, the new version runs for the rest (a continue-as-new takes the new code).
//     Decide-only changes (what an action is allowed, how a vote is counted) go through
//     State.Rules instead, which the auditors' replay reads too.
//
//  2. Record the histories of every path under the new code into a new directory beside the
//     old ones and commit them, keeping the old ones while any measure may run under them:
//
//     TAKEDOWN_RECORD_HISTORIES=$PWD/workflows/testdata/histories/vN-what-changed \
//     go test -count=1 -run 'TestNormalPathWithReturn|TestEmergencyPath|TestApprovalExpires|TestOrderPathWithInformationRequest|TestLongExecutionContinuesAsNew' ./internal/daemon
//
//  3. TestReplayRecordedHistories replays them all against the code; the same change without
//     its guard fails it ("a matching Timer command was expected…").
//
// A version branch is removed only when no measure started before it still runs (the
// TakedownStage search attribute tells), and its histories with it.
package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

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
	// Handled holds the IDs of the last Updates taken (maxHandled of them), carried across
	// continue-as-new: Temporal answers a repeated Update ID only within one run, so a retry
	// with the same idempotency key that arrives after the hand-over would be taken again.
	Handled []string `json:"handled,omitempty"`
}

// maxHandled bounds State.Handled: retries come within minutes, and a run hands over after
// thousands of events.
const maxHandled = 256

// handled reports whether the Update ctx carries was taken already (in an earlier run).
func (w *measureWorkflow) handled(ctx workflow.Context) bool {
	info := workflow.GetCurrentUpdateInfo(ctx)
	return info != nil && info.ID != "" && slices.Contains(w.s.Handled, info.ID)
}

// taken remembers the Update ctx carries as taken.
func (w *measureWorkflow) taken(ctx workflow.Context) {
	if info := workflow.GetCurrentUpdateInfo(ctx); info != nil && info.ID != "" {
		w.s.Handled = append(w.s.Handled, info.ID)
		if n := len(w.s.Handled); n > maxHandled {
			w.s.Handled = slices.Clone(w.s.Handled[n-maxHandled:])
		}
	}
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
		func(ctx workflow.Context, a measure.Action) (Outcome, error) {
			if w.handled(ctx) {
				// A retry of an action an earlier run took: answered, not taken again.
				return Outcome{Stage: w.s.Stage, Version: w.s.Version, Digest: w.s.Digest}, nil
			}
			out, err := w.act(ctx, a)
			if err == nil {
				w.taken(ctx)
			}
			return out, err
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, a measure.Action) error {
			if w.handled(ctx) {
				return nil
			}
			return w.validate(a, workflow.Now(ctx))
		}},
	)
	if err != nil {
		return w.s, err
	}

	// Versioned change (see the package documentation): one timer per deadline, kept while
	// actions come and go, instead of a timer started and cancelled around every action.
	var timer *deadlineTimer
	if workflow.GetVersion(ctx, changeKeepDeadlineTimer, workflow.DefaultVersion, 1) >= 1 {
		timer = &deadlineTimer{}
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
			timer.stop()
			if err := workflow.Await(ctx, moved); err != nil {
				return w.s, err
			}
			continue
		}
		if wait := at.Sub(workflow.Now(ctx)); wait > 0 {
			var done bool
			var err error
			if timer != nil {
				done, err = timer.await(ctx, at, wait, moved)
			} else {
				done, err = workflow.AwaitWithTimeout(ctx, wait, moved)
			}
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
