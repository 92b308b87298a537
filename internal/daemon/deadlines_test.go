package daemon_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestWorkAgreesWithTheWorkflow: the deadline My work shows a person is the one the measure's
// workflow keeps its timer for, on every path: normal, returned, information requested,
// emergency with its post-hoc review, and an order.
func TestWorkAgreesWithTheWorkflow(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
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

	opsOn := func(who, id string) []string {
		t.Helper()
		var work struct {
			Items []struct {
				Measure struct {
					ID string `json:"id"`
				} `json:"measure"`
				Ops []string `json:"ops"`
			} `json:"work"`
		}
		if err := u[who].Do(ctx, "GET", "/api/v1/work", nil, &work); err != nil {
			t.Fatal(err)
		}
		for _, it := range work.Items {
			if it.Measure.ID == id {
				return it.Ops
			}
		}
		return nil
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
	// Only an emergency measure is notified to the Commission after the fact: nobody is
	// offered it on an approved one (a stranger's legal reviewer was told it was overdue).
	for _, who := range []string{"officer", "legal", "commander"} {
		if o := opsOn(who, id); slices.Contains(o, "notify_commission") {
			t.Errorf("an approved measure, executed: %s is offered %v", who, o)
		}
	}
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
	if o := opsOn("commander", id); !slices.Contains(o, "notify_commission") {
		t.Errorf("an emergency measure, executed: the commander is offered %v", o)
	}
	mustAct(t, u["commander"], id, "notify_commission", map[string]any{"body": "taken at 10:02"}, "COMMISSION_NOTIFIED")
	agree("member1", id, "COMMISSION_NOTIFIED")
	mustAct(t, u["member1"], id, "post_hoc_decision", map[string]any{"decision": "accepted"}, "POST_HOC_REVIEWED")
	agree("officer", id, "POST_HOC_REVIEWED")

	// An order to the administrator: My work offers the order, and no execution before it.
	id = newDraft(t, e, "order_administrator", domestic).ID
	reviewAndApprove(t, e, id)
	agree("commander", id, "APPROVED")
	ops := func(who string) []string { return opsOn(who, id) }
	if got := ops("commander"); !slices.Contains(got, "issue_order") {
		t.Fatalf("the commander's My work offers %v on an approved order, not the order", got)
	}
	if got := ops("executor"); slices.Contains(got, "start_execution") {
		t.Fatalf("the executor's My work offers execution of an order not yet issued: %v", got)
	}
	mustAct(t, u["commander"], id, "issue_order", map[string]any{"order": map[string]any{
		"addressee": "Provider X", "content": "remove the C2 panel", "deadline": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)}}, "ORDER_ISSUED")
	agree("officer", id, "ORDER_ISSUED")
}

// TestCaseListsOnlyReadableMeasures: a case names only the measures of it its reader may open.
func TestCaseListsOnlyReadableMeasures(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	m := newDraft(t, e, "self_execute", domestic)
	submitted, err := u["officer"].CreateMeasure(ctx, m.Case, plan("self_execute", e.IDs["executor"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].AddTargets(ctx, submitted.ID, domestic); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["officer"], submitted.ID, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], submitted.ID, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], submitted.ID, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	for who, want := range map[string][]string{"officer": {m.ID, submitted.ID}, "chair": {submitted.ID}} {
		var c struct {
			Measures []string `json:"measures"`
		}
		if err := u[who].Do(ctx, "GET", "/api/v1/cases/"+m.Case, nil, &c); err != nil {
			t.Fatalf("%s reads the case: %v", who, err)
		}
		if !slices.Equal(c.Measures, want) {
			t.Fatalf("%s is shown the case's measures %v, want %v", who, c.Measures, want)
		}
	}
	// The case page names the requesting agency, not its code.
	var c struct {
		Org     string `json:"org"`
		OrgName string `json:"org_name"`
	}
	if err := u["officer"].Do(ctx, "GET", "/api/v1/cases/"+m.Case, nil, &c); err != nil || c.OrgName == "" {
		t.Fatalf("the case's agency has no name: %+v (%v)", c, err)
	}
	if _, body := webGet(t, webSession(t, e, "chair"), e.D.URL+"/cases/"+m.Case); !strings.Contains(body, c.OrgName) || strings.Contains(body, "<dd>"+c.Org+"</dd>") {
		t.Fatalf("the case page does not name the agency %q", c.OrgName)
	}
}
