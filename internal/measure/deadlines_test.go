package measure

import (
	"reflect"
	"testing"
	"time"
)

// TestDeadlinesOfEachStage: the deadlines each stage keeps and when each falls due, from the
// instants that start them (DESIGN section 4).
func TestDeadlinesOfEachStage(t *testing.T) {
	h := time.Hour
	timers := Timers{DecisionTarget: 72 * h, DecisionTargetUrgent: 24 * h, EmergencyNotification: 24 * h,
		PostHocReview: 72 * h, ReportDue: 7 * 24 * h, NotificationDue: 30 * 24 * h}
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name string
		c    Clock
		want []Due
	}{
		{"before the Commission", Clock{Stage: CommissionReview, Since: at(h)}, []Due{{"decision_overdue", at(73 * h)}}},
		{"urgent, before the Commission", Clock{Stage: CommissionReview, Since: at(h), Urgent: true}, []Due{{"decision_overdue", at(25 * h)}}},
		{"approved", Clock{Stage: Approved, WindowEnd: at(5 * h)}, []Due{{"expired", at(5 * h)}}},
		{"approved, no window recorded", Clock{Stage: Approved}, nil},
		{"order issued, due before the window ends", Clock{Stage: OrderIssued, WindowEnd: at(9 * h), OrderDue: at(3 * h)},
			[]Due{{"order_deadline_passed", at(3 * h)}, {"expired", at(9 * h)}}},
		{"order issued, due after the window ends", Clock{Stage: OrderIssued, WindowEnd: at(2 * h), OrderDue: at(3 * h)},
			[]Due{{"expired", at(2 * h)}, {"order_deadline_passed", at(3 * h)}}},
		{"order issued, nothing recorded", Clock{Stage: OrderIssued}, nil},
		{"emergency execution", Clock{Stage: EmergencyExecuting, Declared: at(2 * h)}, []Due{{"commission_notification_overdue", at(26 * h)}}},
		{"executed in an emergency", Clock{Stage: Executed, Declared: at(2 * h), Executed: at(4 * h)}, []Due{{"commission_notification_overdue", at(26 * h)}}},
		{"executed", Clock{Stage: Executed, Executed: at(4 * h)}, []Due{{"report_overdue", at(4*h + 7*24*h)}}},
		{"Commission notified", Clock{Stage: CommissionNotified, Notified: at(6 * h), Executed: at(4 * h)}, []Due{{"post_hoc_review_overdue", at(78 * h)}}},
		{"post-hoc review done: the report runs from the execution", Clock{Stage: PostHocReviewed, Since: at(50 * h), Executed: at(4 * h)},
			[]Due{{"report_overdue", at(4*h + 7*24*h)}}},
		{"notifying", Clock{Stage: Notifying, Since: at(8 * h)}, []Due{{"notification_overdue", at(8*h + 30*24*h)}}},
		{"information requested: no clock runs", Clock{Stage: InfoRequested, Since: at(h)}, nil},
		{"draft", Clock{Stage: Draft, Since: at(h)}, nil},
	} {
		if got := AppendDeadlines(nil, timers, tc.c); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Appending leaves what was there, in its place.
	prior := []Due{{"other", at(100 * h)}}
	got := AppendDeadlines(prior, timers, Clock{Stage: OrderIssued, WindowEnd: at(9 * h), OrderDue: at(3 * h)})
	if len(got) != 3 || got[0].Name != "other" || got[1].Name != "order_deadline_passed" {
		t.Errorf("appended to a list: %v", got)
	}
}
