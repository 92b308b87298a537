package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestWorkAgreesWithTheWorkflow: the deadline My work shows a person is the one the measure's
// workflow keeps its timer for, on every path: normal, returned, information requested,
// emergency with its post-hoc review, and an order.
func TestWorkAgreesWithTheWorkflow(t *testing.T) {
	cfg := workflows.DefaultConfig()
	e := testenv.Start(t, cfg)
	ctx := context.Background()
	u := e.Users
	agree := func(who, id, stage string) {
		t.Helper()
		v, err := e.D.Temporal.QueryWorkflow(ctx, workflows.ID(id), "", workflows.QueryState)
		if err != nil {
			t.Fatal(err)
		}
		var st workflows.State
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		if string(st.Stage) != stage {
			t.Fatalf("the workflow is in %s, want %s", st.Stage, stage)
		}
		var want time.Time
		if ds := cfg.Deadlines(st.Clock()); len(ds) > 0 {
			want = ds[0].At
		}
		var work struct {
			Items []struct {
				Measure struct {
					ID string `json:"id"`
				} `json:"measure"`
				Deadline time.Time `json:"deadline"`
			} `json:"work"`
		}
		if err := u[who].Do(ctx, "GET", "/api/v1/work", nil, &work); err != nil {
			t.Fatal(err)
		}
		for _, it := range work.Items {
			if it.Measure.ID != id {
				continue
			}
			// The workflow's clock and the database's differ by the time a transaction takes.
			if it.Deadline.IsZero() != want.IsZero() || it.Deadline.Sub(want).Abs() > 5*time.Second {
				t.Fatalf("in %s, %s's My work shows the deadline %v; the workflow keeps %v", stage, who, it.Deadline, want)
			}
			return
		}
		t.Fatalf("in %s, the measure is not in %s's My work: %+v", stage, who, work.Items)
	}

	// Normal, with a return and an information request before the Commission.
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	agree("chair", id, "COMMISSION_REVIEW")
	mustAct(t, u["secretariat"], id, "request_info", map[string]any{"reason": "which provider was asked?"}, "INFO_REQUESTED")
	agree("officer", id, "INFO_REQUESTED")
	mustAct(t, u["officer"], id, "respond_info", map[string]any{"body": "Provider X, no answer"}, "COMMISSION_REVIEW")
	agree("chair", id, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], id, "vote", vote("return"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], id, "vote", vote("return"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], id, "vote", vote("return"), "DRAFT")
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	agree("member3", id, "COMMISSION_REVIEW")
	for _, who := range []string{"chair", "member1"} {
		mustAct(t, u[who], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	}
	mustAct(t, u["member3"], id, "vote", vote("approve"), "APPROVED")
	agree("executor", id, "APPROVED")
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")
	agree("officer", id, "EXECUTED")
	mustAct(t, u["officer"], id, "report", map[string]any{"body": "C2 disabled"}, "REPORTED")
	mustAct(t, u["commander"], id, "verify_report", nil, "NOTIFYING")
	agree("officer", id, "NOTIFYING")

	// An emergency, notified and reviewed after the fact.
	id = newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["commander"], id, "declare_emergency", map[string]any{"reason": "ransomware deployment under way"}, "EMERGENCY_EXECUTING")
	agree("executor", id, "EMERGENCY_EXECUTING")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EMERGENCY_EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")
	agree("commander", id, "EXECUTED")
	mustAct(t, u["commander"], id, "notify_commission", map[string]any{"body": "taken at 10:02"}, "COMMISSION_NOTIFIED")
	agree("member1", id, "COMMISSION_NOTIFIED")
	mustAct(t, u["member1"], id, "post_hoc_decision", map[string]any{"decision": "accepted"}, "POST_HOC_REVIEWED")
	agree("officer", id, "POST_HOC_REVIEWED")

	// An order to the administrator.
	id = newDraft(t, e, "order_administrator", domestic).ID
	reviewAndApprove(t, e, id)
	agree("commander", id, "APPROVED")
	mustAct(t, u["commander"], id, "issue_order", map[string]any{"order": map[string]any{
		"addressee": "Provider X", "content": "remove the C2 panel", "deadline": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)}}, "ORDER_ISSUED")
	agree("officer", id, "ORDER_ISSUED")
}
