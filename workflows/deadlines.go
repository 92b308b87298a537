package workflows

import (
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
