package web_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/takedown/takedown/internal/service"
)

// TestBrowserEveryForm submits, in Chromium, each decision form the pages offer on an order to
// the administrator with a target abroad, with valid input, and expects each to succeed: the
// consultation, the information asked and answered, a member's declaration of no conflict, the
// votes, the order with its addressee, content and deadline, its outcome, the execution that
// follows, the report, its verification, the notification and the closure; and a withdrawal.
// Nothing is chosen for the person: a form sent as drawn is refused by the browser itself.
// (The emergency's forms are TestBrowserEmergency's.)
func TestBrowserEveryForm(t *testing.T) {
	exe, e, pw := start(t)
	base := e.D.URL
	ctx := context.Background()
	off := e.Users["officer"]
	caseID, err := off.CreateCase(ctx, "TraderTraitor relays", "")
	if err != nil {
		t.Fatal(err)
	}
	plan := map[string]any{"title": "Order the relay's administrator", "legal_basis": "police_duties_act_6_2", "kind": "order_administrator",
		"self_execution_fallback": true, "technique": "block_c2", "operations": []string{"remove the relay configuration"},
		"executors": []string{e.IDs["executor"]}, "alternatives": []map[string]string{{"means": "abuse report", "outcome": "tried", "reason": "no answer"}},
		"necessity": "n", "proportionality": "p", "collateral": "c", "rollback_plan": "r", "notification_plan": "notify the provider"}
	m, err := off.CreateMeasure(ctx, caseID, plan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": "198.51.100.77", "location": "abroad", "country": "NL", "role": "proxy"}}); err != nil {
		t.Fatal(err)
	}
	page := base + "/measures/" + m.ID
	people := map[string]context.Context{}
	as := func(who string) context.Context {
		if people[who] == nil {
			people[who] = browser(t, exe)
			logIn(t, people[who], base, who, pw[who])
		}
		do(t, people[who], chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#stage")))
		return people[who]
	}
	done := map[string]bool{}
	// act fills op's form as fill says, sends it, and requires success and the stage after.
	act := func(who, op string, want string, fill ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		b := as(who)
		if forms := formIDs(t, b); !slices.Contains(forms, "act-"+op) {
			t.Fatalf("%s is not offered %s in %s: %v", who, op, text(t, b, "#stage"), forms)
		}
		do(t, b, fill...)
		submit(t, b, "#act-"+op)
		stage(t, b, want)
		done[op] = true
	}
	radio := func(op, v string) chromedp.Action[chromedp.Void] {
		return chromedp.Click(chromedp.CSS(`#act-` + op + ` input[value="` + v + `"]`))
	}
	keys := func(sel, v string) chromedp.Action[chromedp.Void] { return chromedp.SendKeys(chromedp.CSS(sel), v) }

	act("officer", "submit", "LEGAL_REVIEW")
	// A decision sent as drawn is no decision: the browser keeps it (nothing is preselected).
	b := as("legal")
	do(t, b, chromedp.Click(chromedp.CSS("#act-legal_review button")))
	if got := text(t, b, "#stage"); !strings.Contains(got, "法務審査中") {
		t.Fatalf("a legal review sent with no decision chosen moved the measure: %q", got)
	}
	act("legal", "legal_review", "COMMAND_REVIEW", append([]chromedp.Action[chromedp.Void]{radio("legal_review", "approve")}, checklist()...)...)
	act("commander", "command_review", "GATES", radio("command_review", "approve"))
	act("commander", "record_gate", "COMMISSION_REVIEW", chromedp.SetValue(chromedp.CSS(`#act-record_gate select[name="gate"]`), "foreign_ministry"),
		keys(`#act-record_gate input[name="reference"]`, "MOFA consultation 2026-201"))
	act("secretariat", "request_info", "INFO_REQUESTED", keys("#request_info-reason", "which provider was asked, and when?"))
	act("officer", "respond_info", "COMMISSION_REVIEW", keys("#respond_info-body", "Provider X abuse desk, 2026-11-20, no answer"))
	act("member4", "declare_conflict", "COMMISSION_REVIEW", radio("declare_conflict", "false"))
	act("chair", "vote", "COMMISSION_REVIEW", radio("vote", "approve"))
	act("member1", "vote", "COMMISSION_REVIEW", radio("vote", "approve"))
	act("member2", "vote", "APPROVED", radio("vote", "approve"))
	// The order: its addressee, content and deadline (JST), inside the approval window.
	deadline := time.Now().Add(48 * time.Hour).In(service.JST).Format("2006-01-02T15:04")
	act("commander", "issue_order", "ORDER_ISSUED", keys("#order-addressee", "Provider X"), keys("#order-content", "remove the relay configuration"),
		chromedp.SetValue(chromedp.CSS("#order-deadline"), deadline), keys("#order-proof", "registered mail 1234"))
	if got := text(t, people["commander"], "#order-fields"); !strings.Contains(got, "Provider X") || !strings.Contains(got, "registered mail 1234") {
		t.Fatalf("the order as the page shows it: %q", got)
	}
	act("officer", "order_outcome", "ORDER_ISSUED", radio("order_outcome", "not_complied"))
	act("executor", "start_execution", "EXECUTING")
	act("executor", "log_steps", "EXECUTING", keys("#log_steps-steps",
		"198.51.100.77,block_c2,removed the relay configuration,success,"+e.IDs["executor2"]+","+time.Now().UTC().Format(time.RFC3339)))
	act("executor", "finish_execution", "EXECUTED")
	act("officer", "report", "REPORTED", keys("#report-body", "relay removed"))
	act("commander", "verify_report", "NOTIFYING")
	act("officer", "notify", "NOTIFYING", keys("#notify-notices", "Provider X,sent"))
	act("officer", "close", "CLOSED")
	if got := text(t, people["officer"], "#info-list"); !strings.Contains(got, "which provider was asked") || !strings.Contains(got, "Provider X abuse desk") {
		t.Fatalf("the information asked and answered on the page: %q", got)
	}

	// A self-execution measure offers no order; a draft can be withdrawn.
	m2, err := off.CreateMeasure(ctx, caseID, map[string]any{"title": "withdrawn", "kind": "self_execute"})
	if err != nil {
		t.Fatal(err)
	}
	page = base + "/measures/" + m2.ID
	act("officer", "withdraw", "WITHDRAWN", keys("#withdraw-reason", "the relay went offline"))
	for _, op := range []string{"submit", "legal_review", "command_review", "record_gate", "request_info", "respond_info", "declare_conflict", "vote",
		"issue_order", "order_outcome", "start_execution", "log_steps", "finish_execution", "report", "verify_report", "notify", "close", "withdraw"} {
		if !done[op] {
			t.Errorf("the form of %s was not submitted", op)
		}
	}
}

// checklist ticks every statutory requirement of the legal review.
func checklist() []chromedp.Action[chromedp.Void] {
	var out []chromedp.Action[chromedp.Void]
	for i := 1; i <= 6; i++ {
		out = append(out, chromedp.Click(chromedp.CSS(`#act-legal_review .checklist label:nth-of-type(`+string(rune('0'+i))+`) input`)))
	}
	return out
}
