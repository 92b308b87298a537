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
)

// Clock and Due are measure's: the one computation of deadlines is measure.AppendDeadlines.
type (
	Clock = measure.Clock
	Due   = measure.Due
)

// Timers are the configured durations deadlines run for.
func (cfg Config) Timers() measure.Timers {
	return measure.Timers{DecisionTarget: cfg.DecisionTarget, DecisionTargetUrgent: cfg.DecisionTargetUrgent,
		EmergencyNotification: cfg.EmergencyNotification, PostHocReview: cfg.PostHocReview,
		ReportDue: cfg.ReportDue, NotificationDue: cfg.NotificationDue}
}

// Deadlines lists, earliest first, the deadlines the lifecycle keeps in the clock's stage
// (DESIGN section 4's timers): the workflow's timers and My work both read it.
func (cfg Config) Deadlines(c Clock) []Due {
	return measure.AppendDeadlines(nil, cfg.Timers(), c)
}

// Clock is the state as Deadlines reads it.
func (s State) Clock() Clock {
	c := Clock{Stage: s.Stage, Since: s.Since, Notified: s.Notified, Executed: s.Executed, Urgent: s.Sealed != nil && s.Sealed.Urgent}
	if s.Emergency {
		c.Declared = s.Declared
	}
	if s.Approval != nil {
		c.WindowEnd = s.Approval.WindowEnd
	}
	if s.Order != nil {
		c.OrderDue = s.Order.Deadline
	}
	return c
}

// changeKeepDeadlineTimer names the change that keeps one timer per deadline (GetVersion 1).
// Before it, each wait started a timer of its own and an action cancelled it: two history
// events per action, a sixth of a long execution's history.
const changeKeepDeadlineTimer = "keep-deadline-timer"

// deadlineTimer is the timer of the deadline the workflow waits for, kept across actions
// that leave that deadline where it is. A nil *deadlineTimer is the workflow before the
// change.
type deadlineTimer struct {
	at     time.Time
	fired  workflow.Future
	cancel workflow.CancelFunc
}

// await waits until moved or the deadline at passes, starting a timer only when at is not
// the one already running. It reports whether moved ended the wait.
func (t *deadlineTimer) await(ctx workflow.Context, at time.Time, wait time.Duration, moved func() bool) (bool, error) {
	if t.fired == nil || !t.at.Equal(at) {
		t.stop()
		tctx, cancel := workflow.WithCancel(ctx)
		t.at, t.fired, t.cancel = at, workflow.NewTimer(tctx, wait), cancel
	}
	if err := workflow.Await(ctx, func() bool { return moved() || t.fired.IsReady() }); err != nil {
		return false, err
	}
	if moved() {
		return true, nil
	}
	t.fired, t.cancel = nil, nil // fired: the next wait needs a timer of its own
	return false, nil
}

// stop cancels a running timer whose deadline no longer applies.
func (t *deadlineTimer) stop() {
	if t == nil || t.fired == nil {
		return
	}
	if !t.fired.IsReady() {
		t.cancel()
	}
	t.fired, t.cancel = nil, nil
}

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
