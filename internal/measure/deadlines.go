package measure

import (
	"slices"
	"time"
)

// Timers are the durations a measure's deadlines run for (DESIGN section 4), as the lifecycle
// is configured and as the measure's seal records them.
type Timers struct {
	DecisionTarget, DecisionTargetUrgent time.Duration
	EmergencyNotification, PostHocReview time.Duration
	ReportDue, NotificationDue           time.Duration
}

// Clock is what a measure's deadlines run from: its stage and the instants that start them.
type Clock struct {
	Stage Stage
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

// AppendDeadlines appends to ds, earliest first, the deadlines the lifecycle keeps in the
// clock's stage. It is the one place each is computed: the workflow's timers, My work, the
// statistics and the auditor's replay all read it. Before the Commission the decision target
// runs from when the measure last came before it (an information request stops it; the answer
// starts it again); the report is due a set time after the execution, whether or not a
// post-hoc review came between.
func AppendDeadlines(ds []Due, t Timers, c Clock) []Due {
	start := len(ds)
	switch c.Stage {
	case CommissionReview:
		target := t.DecisionTarget
		if c.Urgent {
			target = t.DecisionTargetUrgent
		}
		ds = append(ds, Due{"decision_overdue", c.Since.Add(target)})
	case Approved:
		if !c.WindowEnd.IsZero() {
			ds = append(ds, Due{"expired", c.WindowEnd})
		}
	case OrderIssued:
		if !c.OrderDue.IsZero() {
			ds = append(ds, Due{"order_deadline_passed", c.OrderDue})
		}
		if !c.WindowEnd.IsZero() {
			ds = append(ds, Due{"expired", c.WindowEnd})
		}
	case EmergencyExecuting:
		ds = append(ds, Due{"commission_notification_overdue", c.Declared.Add(t.EmergencyNotification)})
	case Executed:
		if !c.Declared.IsZero() {
			ds = append(ds, Due{"commission_notification_overdue", c.Declared.Add(t.EmergencyNotification)})
		} else {
			ds = append(ds, Due{"report_overdue", c.Executed.Add(t.ReportDue)})
		}
	case CommissionNotified:
		ds = append(ds, Due{"post_hoc_review_overdue", c.Notified.Add(t.PostHocReview)})
	case PostHocReviewed:
		ds = append(ds, Due{"report_overdue", c.Executed.Add(t.ReportDue)})
	case Notifying:
		ds = append(ds, Due{"notification_overdue", c.Since.Add(t.NotificationDue)})
	}
	slices.SortStableFunc(ds[start:], func(a, b Due) int { return a.At.Compare(b.At) })
	return ds
}
