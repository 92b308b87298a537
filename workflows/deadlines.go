package workflows

import (
	"slices"
	"time"

	"github.com/takedown/takedown/internal/measure"
)

// Clock is what a measure's deadlines run from: its stage and the instants that start them.
type Clock struct {
	Stage measure.Stage
	// Since is when the measure entered its stage; Declared, Notified and Executed when the
	// emergency was declared, the Commission notified and the execution finished (zero: not).
	Since, Declared, Notified, Executed time.Time
	Urgent                              bool      // the sealed version asks for an urgent decision
	WindowEnd                           time.Time // the approval window's end, once approved
	OrderDue                            time.Time // the order's deadline, once issued
}

// Due is one deadline the lifecycle keeps.
type Due struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// Deadlines lists, earliest first, the deadlines the lifecycle keeps in the clock's stage
// (DESIGN section 4's timers). It is the one place each is computed: the workflow's timers and
// My work both read it. Before the Commission the decision target runs from when the measure
// last came before it (an information request stops it; the answer starts it again); the
// report is due a set time after the execution, whether or not a post-hoc review came between.
func (cfg Config) Deadlines(c Clock) []Due {
	var ds []Due
	switch c.Stage {
	case measure.CommissionReview:
		target := cfg.DecisionTarget
		if c.Urgent {
			target = cfg.DecisionTargetUrgent
		}
		ds = append(ds, Due{"decision_overdue", c.Since.Add(target)})
	case measure.Approved:
		if !c.WindowEnd.IsZero() {
			ds = append(ds, Due{"expired", c.WindowEnd})
		}
	case measure.OrderIssued:
		if !c.OrderDue.IsZero() {
			ds = append(ds, Due{"order_deadline_passed", c.OrderDue})
		}
		if !c.WindowEnd.IsZero() {
			ds = append(ds, Due{"expired", c.WindowEnd})
		}
	case measure.EmergencyExecuting:
		ds = append(ds, Due{"commission_notification_overdue", c.Declared.Add(cfg.EmergencyNotification)})
	case measure.Executed:
		if !c.Declared.IsZero() {
			ds = append(ds, Due{"commission_notification_overdue", c.Declared.Add(cfg.EmergencyNotification)})
		} else {
			ds = append(ds, Due{"report_overdue", c.Executed.Add(cfg.ReportDue)})
		}
	case measure.CommissionNotified:
		ds = append(ds, Due{"post_hoc_review_overdue", c.Notified.Add(cfg.PostHocReview)})
	case measure.PostHocReviewed:
		ds = append(ds, Due{"report_overdue", c.Executed.Add(cfg.ReportDue)})
	case measure.Notifying:
		ds = append(ds, Due{"notification_overdue", c.Since.Add(cfg.NotificationDue)})
	}
	slices.SortStableFunc(ds, func(a, b Due) int { return a.At.Compare(b.At) })
	return ds
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
