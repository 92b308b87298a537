package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

func plan(kind string, executors ...string) map[string]any {
	return map[string]any{
		"title":       "Neutralise PlugX C2",
		"legal_basis": "police_duties_act_6_2",
		"kind":        kind,
		"technique":   "disable_malware",
		"operations":  []string{"send the self-delete command to each node"},
		"executors":   executors,
		"alternatives": []map[string]string{
			{"means": "ask the hosting provider to suspend the server", "outcome": "tried", "reason": "no answer within 48 h"},
		},
		"necessity":         "the C2 commands 4,000 infected routers that attack a hospital",
		"proportionality":   "only the malware process is touched",
		"collateral":        "none expected: the C2 is attacker-rented",
		"rollback_plan":     "none needed: the command only stops the implant",
		"notification_plan": "notify the hosting provider after execution",
	}
}

// mustAct takes an action and requires the measure to reach stage want.
func mustAct(t *testing.T, c *client.Client, id, op string, body any, want string) client.Measure {
	t.Helper()
	m, err := c.Act(context.Background(), id, op, body)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	if m.Stage != want {
		t.Fatalf("after %s: stage %s, want %s", op, m.Stage, want)
	}
	return m
}

// refusedWith requires err to be an API refusal with status and (if given) rule or field.
func refusedWith(t *testing.T, err error, status int, ruleOrField string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a %d refusal, got %v", status, err)
	}
	if e.Status != status || (ruleOrField != "" && e.Rule != ruleOrField && e.Field != ruleOrField) {
		t.Fatalf("want %d %q, got %d rule=%q field=%q: %s", status, ruleOrField, e.Status, e.Rule, e.Field, e.Message)
	}
}

// story is the measure's audit trail as "action FROM>TO" lines, leaving out refusals and
// reads.
func story(t *testing.T, c *client.Client, id string) []string {
	t.Helper()
	h, err := c.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	last := ""
	for _, r := range h {
		if strings.HasPrefix(r.Action, "refused.") || strings.HasPrefix(r.Action, "read.") {
			continue
		}
		if r.Actor.ID == "" || r.TS == "" {
			t.Errorf("entry %s lacks who or when: %+v", r.Action, r)
		}
		if r.Policy != "v1" {
			t.Errorf("entry %s was recorded under policy %q, want the policy in force, v1", r.Action, r.Policy)
		}
		if r.From != "" && last != "" && r.From != last {
			t.Errorf("entry %s starts from %s but the previous entry left the measure in %s", r.Action, r.From, last)
		}
		if r.To != "" {
			last = r.To
		}
		out = append(out, fmt.Sprintf("%s %s>%s", r.Action, r.From, r.To))
	}
	return out
}

// requireRefusals requires each "action rule" refusal to be in the measure's audit entries.
func requireRefusals(t *testing.T, c *client.Client, id string, want ...string) {
	t.Helper()
	h, err := c.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, r := range h {
		if strings.HasPrefix(r.Action, "refused.") {
			have = append(have, r.Action+" "+fmt.Sprint(r.Details["rule"]))
		}
	}
	for _, w := range want {
		if !slices.Contains(have, w) {
			t.Errorf("refusal %q is not in the audit log; refusals: %v", w, have)
		}
	}
}

func requireStory(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("audit story:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func newDraft(t *testing.T, e *testenv.Env, kind string, targets []map[string]any) client.Measure {
	t.Helper()
	ctx := context.Background()
	off := e.Users["officer"]
	caseID, err := off.CreateCase(ctx, "PlugX botnet", "PlugX variant controlling SOHO routers")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, plan(kind, e.IDs["executor"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, targets); err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddEvidence(ctx, m.ID, url.Values{"filename": {"c2.pcap"}, "kind": {"pcap"}, "provenance": {"own_investigation"}},
		strings.NewReader("pcap bytes of the C2 beacon")); err != nil {
		t.Fatal(err)
	}
	return m
}

// legalApproval is a legal reviewer's approval, every statutory requirement confirmed.
var legalApproval = map[string]any{"decision": "approve", "checklist": measure.LegalRequirements}

var domestic = []map[string]any{
	{"kind": "ip", "value": "203.0.113.10", "port": 443, "location": "domestic", "country": "JP", "role": "c2", "ownership": "attacker_controlled"},
	{"kind": "domain", "value": "update.example-c2.jp", "location": "domestic", "role": "c2"},
}

func steps(e *testenv.Env, at time.Time, targets ...string) map[string]any {
	var s []map[string]any
	for _, t := range targets {
		s = append(s, map[string]any{"target": t, "technique": "disable_malware", "action": "sent self-delete",
			"result": "success", "witness": e.IDs["executor2"], "at": at.UTC().Format(time.RFC3339Nano)})
	}
	return map[string]any{"steps": s}
}

// reviewAndApprove takes a draft through both reviews and the Commission's approval.
func reviewAndApprove(t *testing.T, e *testenv.Env, id string) {
	t.Helper()
	u := e.Users
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], id, "vote", vote("approve"), "APPROVED")
}

func vote(v string) map[string]any {
	b := map[string]any{"decision": v}
	if v != "approve" {
		b["reason"] = "the necessity statement does not show why an order would fail"
	}
	return b
}

// TestNormalPathWithReturn drives a measure through every role to CLOSED, with the
// Commission returning it in the middle: votes cast on the first version must not count
// towards the second.
func TestNormalPathWithReturn(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	m := newDraft(t, e, "self_execute", domestic)
	id := m.ID

	// Bad input changes nothing and names the field.
	_, err := u["officer"].AddTargets(ctx, id, []map[string]any{{"kind": "ip", "value": "203.0.113.300"}})
	refusedWith(t, err, 400, "targets[0].value")
	_, err = u["officer"].AddTargets(ctx, id, []map[string]any{})
	refusedWith(t, err, 400, "targets")
	err = u["officer"].Do(ctx, "POST", "/api/v1/measures/"+id+"/targets", map[string]any{"targets": domestic, "extra": 1}, nil)
	refusedWith(t, err, 400, "extra")
	_, err = u["officer"].AddEvidence(ctx, id, url.Values{"filename": {"big.bin"}, "kind": {"dump"}, "provenance": {"osint"}},
		strings.NewReader(strings.Repeat("x", 1<<20+1)))
	refusedWith(t, err, 413, "")
	// Wrong stage, wrong person.
	_, err = u["legal"].Act(ctx, id, "legal_review", legalApproval)
	refusedWith(t, err, 409, "")
	_, err = u["legal"].Act(ctx, id, "submit", nil)
	refusedWith(t, err, 403, "role")

	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	_, err = u["legal"].Act(ctx, id, "vote", vote("approve"))
	refusedWith(t, err, 403, "role")

	// Version 1: the chair and member1 approve, three members return it.
	mustAct(t, u["chair"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], id, "vote", vote("return"), "COMMISSION_REVIEW")
	mustAct(t, u["member3"], id, "vote", vote("return"), "COMMISSION_REVIEW")
	m = mustAct(t, u["member4"], id, "vote", vote("return"), "DRAFT")
	if m.Version != 2 {
		t.Fatalf("a return opens version 2, got %d", m.Version)
	}

	// Version 2: one more target; the reviews and votes start again.
	if _, err := u["officer"].AddTargets(ctx, id, []map[string]any{{"kind": "cidr", "value": "198.51.100.0/28", "location": "domestic"}}); err != nil {
		t.Fatal(err)
	}
	m = mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	if m.Targets != 3 {
		t.Fatalf("version 2 has %d targets, want 3", m.Targets)
	}
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	// Had the first version's approvals (chair, member1) counted, these two would make four.
	mustAct(t, u["member2"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member3"], id, "vote", map[string]any{"decision": "approve", "conditions": []string{"stop after 72 h"}}, "COMMISSION_REVIEW")
	_, err = u["member3"].Act(ctx, id, "vote", vote("approve"))
	refusedWith(t, err, 403, "SoD-3")
	m = mustAct(t, u["chair"], id, "vote", vote("approve"), "APPROVED")
	if !strings.Contains(string(m.Approval), m.Digest) || !strings.Contains(string(m.Approval), "stop after 72 h") {
		t.Fatalf("approval %s does not bind digest %s with its conditions", m.Approval, m.Digest)
	}

	// Execution, inside scope and window, witnessed.
	_, err = u["executor-pref"].Act(ctx, id, "start_execution", nil)
	refusedWith(t, err, 404, "") // not named, another organisation: the measure is not theirs to see, nor to know of
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	_, err = u["executor"].Act(ctx, id, "finish_execution", nil)
	refusedWith(t, err, 409, "")            // nothing logged yet
	now := time.Now().Truncate(time.Second) // executors' tools often log whole seconds
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, now, "192.0.2.99"))
	refusedWith(t, err, 403, "scope")
	// Each target outside is named by the first step naming it; past twenty, counted.
	wide := []string{"203.0.113.10"}
	for i := range 25 {
		wide = append(wide, fmt.Sprintf("192.0.2.%d", i+1))
	}
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, now, wide...))
	refusedWith(t, err, 403, "scope")
	if msg := err.Error(); !strings.Contains(msg, "steps[1] 192.0.2.1,") || !strings.Contains(msg, "steps[20] 192.0.2.20 and 5 more") {
		t.Errorf("the scope refusal names: %s", msg)
	}
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, now.Add(-time.Hour), "203.0.113.10"))
	refusedWith(t, err, 403, "window")
	bad := steps(e, now, "203.0.113.10")
	bad["steps"].([]map[string]any)[0]["witness"] = e.IDs["executor"]
	_, err = u["executor"].Act(ctx, id, "log_steps", bad)
	refusedWith(t, err, 403, "SoD-5")
	mustAct(t, u["executor"], id, "log_steps", steps(e, now, "203.0.113.10", "update.example-c2.jp", "198.51.100.0/28"), "EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")
	mustAct(t, u["officer"], id, "report", map[string]any{"body": "3 targets neutralised, no collateral"}, "REPORTED")
	_, err = u["officer"].Act(ctx, id, "verify_report", nil)
	refusedWith(t, err, 403, "role")
	mustAct(t, u["commander"], id, "verify_report", nil, "NOTIFYING")
	_, err = u["officer"].Act(ctx, id, "close", nil)
	refusedWith(t, err, 409, "")
	mustAct(t, u["officer"], id, "notify", map[string]any{"notifications": []map[string]any{
		{"addressee": "hosting provider abuse desk", "status": "sent"}}}, "NOTIFYING")
	mustAct(t, u["officer"], id, "close", nil, "CLOSED")
	_, err = u["officer"].Act(ctx, id, "withdraw", map[string]any{"reason": "too late"})
	refusedWith(t, err, 409, "")

	requireStory(t, story(t, u["auditor"], id), []string{
		"measure.created >DRAFT",
		"targets.added >", "evidence.added >",
		"submit DRAFT>LEGAL_REVIEW",
		"legal_review LEGAL_REVIEW>COMMAND_REVIEW",
		"command_review COMMAND_REVIEW>GATES",
		"gates_satisfied GATES>COMMISSION_REVIEW",
		"vote COMMISSION_REVIEW>COMMISSION_REVIEW",
		"vote COMMISSION_REVIEW>COMMISSION_REVIEW",
		"vote COMMISSION_REVIEW>COMMISSION_REVIEW",
		"vote COMMISSION_REVIEW>COMMISSION_REVIEW",
		"vote COMMISSION_REVIEW>COMMISSION_REVIEW",
		"decide COMMISSION_REVIEW>DRAFT",
		"targets.added >",
		"submit DRAFT>LEGAL_REVIEW",
		"legal_review LEGAL_REVIEW>COMMAND_REVIEW",
		"command_review COMMAND_REVIEW>GATES",
		"gates_satisfied GATES>COMMISSION_REVIEW",
		"vote COMMISSION_REVIEW>COMMISSION_REVIEW",
		"vote COMMISSION_REVIEW>COMMISSION_REVIEW",
		"vote COMMISSION_REVIEW>COMMISSION_REVIEW",
		"decide COMMISSION_REVIEW>APPROVED",
		"start_execution APPROVED>EXECUTING",
		"log_steps EXECUTING>EXECUTING",
		"finish_execution EXECUTING>EXECUTED",
		"report EXECUTED>REPORTED",
		"verify_report REPORTED>NOTIFYING",
		"notify NOTIFYING>NOTIFYING",
		"close NOTIFYING>CLOSED",
	})
	h, _ := u["auditor"].History(ctx, id)
	var refusals []string
	for _, r := range h {
		if strings.HasPrefix(r.Action, "refused.") {
			refusals = append(refusals, r.Action+" "+fmt.Sprint(r.Details["rule"]))
		}
	}
	// The server is shared: the replay holds this measure among the others.
	if rep := verifyLog(t, e); rep.Measures < 1 {
		t.Fatalf("replayed %d measures", rep.Measures)
	}
	for _, want := range []string{"refused.submit role", "refused.vote role", "refused.vote SoD-3", "refused.start_execution need-to-know",
		"refused.log_steps scope", "refused.log_steps window", "refused.log_steps SoD-5", "refused.legal_review ", "refused.close ", "refused.withdraw ", "refused.finish_execution "} {
		if !slices.Contains(refusals, want) {
			t.Errorf("refusal %q is not in the audit log; refusals: %v", want, refusals)
		}
	}
	testenv.RecordHistory(t, e, id, "normal-with-return")
}

// TestEmergencyPath: a commander declares an emergency, the measure is executed at once,
// the Commission is notified afterwards and reviews it.
func TestEmergencyPath(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	foreign := []map[string]any{{"kind": "ip", "value": "198.51.100.77", "location": "abroad", "country": "NL", "role": "c2"}}
	id := newDraft(t, e, "self_execute", foreign).ID

	_, err := u["officer"].Act(ctx, id, "declare_emergency", map[string]any{"reason": "ransomware deployment under way"})
	refusedWith(t, err, 403, "role")
	mustAct(t, u["commander"], id, "declare_emergency", map[string]any{"reason": "ransomware deployment under way at a hospital"}, "EMERGENCY_EXECUTING")
	// A target abroad needs the Foreign Minister consultation, even now.
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "198.51.100.77"))
	refusedWith(t, err, 403, "SoD-4")
	mustAct(t, u["commander"], id, "record_gate", map[string]any{"gate": "foreign_ministry", "reference": "MOFA consultation 2026-117"}, "EMERGENCY_EXECUTING")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "198.51.100.77"), "EMERGENCY_EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")
	_, err = u["executor"].Act(ctx, id, "notify_commission", map[string]any{"body": "done"})
	refusedWith(t, err, 403, "role")
	mustAct(t, u["commander"], id, "notify_commission", map[string]any{"body": "emergency measure taken at 10:02; details attached"}, "COMMISSION_NOTIFIED")
	_, err = u["member1"].Act(ctx, id, "post_hoc_decision", map[string]any{"decision": "impropriety"})
	refusedWith(t, err, 400, "body")
	mustAct(t, u["member1"], id, "post_hoc_decision", map[string]any{"decision": "impropriety",
		"body": "the consultation came after the declaration; record consultations before acting"}, "POST_HOC_REVIEWED")
	mustAct(t, u["executor"], id, "report", map[string]any{"body": "C2 disabled"}, "REPORTED")
	mustAct(t, u["legal"], id, "verify_report", nil, "NOTIFYING")
	_, err = u["officer"].Act(ctx, id, "notify", map[string]any{"notifications": []map[string]any{{"addressee": "NL hosting provider", "status": "deferred"}}})
	refusedWith(t, err, 400, "notifications[0].reason")
	mustAct(t, u["officer"], id, "notify", map[string]any{"notifications": []map[string]any{
		{"addressee": "NL hosting provider", "status": "deferred", "reason": "investigation of the operators continues"}}}, "NOTIFYING")
	mustAct(t, u["commander"], id, "close", nil, "CLOSED")

	requireStory(t, story(t, u["auditor"], id), []string{
		"measure.created >DRAFT", "targets.added >", "evidence.added >",
		"declare_emergency DRAFT>EMERGENCY_EXECUTING",
		"record_gate EMERGENCY_EXECUTING>EMERGENCY_EXECUTING",
		"log_steps EMERGENCY_EXECUTING>EMERGENCY_EXECUTING",
		"finish_execution EMERGENCY_EXECUTING>EXECUTED",
		"notify_commission EXECUTED>COMMISSION_NOTIFIED",
		"post_hoc_decision COMMISSION_NOTIFIED>POST_HOC_REVIEWED",
		"report POST_HOC_REVIEWED>REPORTED",
		"verify_report REPORTED>NOTIFYING",
		"notify NOTIFYING>NOTIFYING",
		"close NOTIFYING>CLOSED",
	})
	requireRefusals(t, u["auditor"], id, "refused.declare_emergency role", "refused.log_steps SoD-4", "refused.notify_commission role")
	verifyLog(t, e)
	testenv.RecordHistory(t, e, id, "emergency")
}

// TestApprovalExpires: an approval window that passes with no execution ends the measure.
func TestApprovalExpires(t *testing.T) {
	t.Parallel() // a server of its own; it polls with seconds to spare: runs beside the others
	cfg := workflows.DefaultConfig()
	cfg.ApprovalWindow = 2 * time.Second
	e := testenv.Start(t, cfg)
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)

	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := u["officer"].Measure(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Stage == "EXPIRED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("measure still %s 30 s after a 2 s window", m.Stage)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err := u["executor"].Act(context.Background(), id, "start_execution", nil)
	refusedWith(t, err, 409, "")
	got := story(t, u["auditor"], id)
	if last := got[len(got)-1]; last != "deadline.expired APPROVED>EXPIRED" {
		t.Fatalf("last entry %q, want the expiry", last)
	}
	verifyLog(t, e)
	testenv.RecordHistory(t, e, id, "expiry")
}

// TestOrderPathWithInformationRequest: the Commission asks for information and one member
// recuses; the approval is for an order to the administrator, who does not comply, and the
// agency then executes itself as the approval allows.
func TestOrderPathWithInformationRequest(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	off := u["officer"]
	caseID, err := off.CreateCase(ctx, "Qakbot C2", "")
	if err != nil {
		t.Fatal(err)
	}
	p := plan("order_administrator", e.IDs["executor"])
	p["self_execution_fallback"] = true
	m, err := off.CreateMeasure(ctx, caseID, p)
	if err != nil {
		t.Fatal(err)
	}
	id := m.ID
	if _, err := off.AddTargets(ctx, id, domestic); err != nil {
		t.Fatal(err)
	}
	mustAct(t, off, id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	mustAct(t, u["secretariat"], id, "request_info", map[string]any{"reason": "which hosting provider was asked, and when?"}, "INFO_REQUESTED")
	_, err = u["chair"].Act(ctx, id, "vote", vote("approve"))
	refusedWith(t, err, 409, "") // paused while the information is pending
	_, err = u["officer2"].Act(ctx, id, "respond_info", map[string]any{"body": "x"})
	refusedWith(t, err, 403, "requester")
	mustAct(t, off, id, "respond_info", map[string]any{"body": "Provider X abuse desk, 2026-11-20 09:00 JST, no answer"}, "COMMISSION_REVIEW")
	mustAct(t, u["member4"], id, "declare_conflict", map[string]any{"conflicted": true, "reason": "former counsel of the provider"}, "COMMISSION_REVIEW")
	_, err = u["member4"].Act(ctx, id, "vote", vote("approve"))
	refusedWith(t, err, 403, "SoD-3")
	mustAct(t, u["chair"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], id, "vote", vote("reject"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	// Four eligible after the recusal: three approvals are a majority; member1's dissent is kept.
	mustAct(t, u["member3"], id, "vote", vote("approve"), "APPROVED")
	_, err = u["executor"].Act(ctx, id, "start_execution", nil)
	refusedWith(t, err, 409, "") // the order comes first
	mustAct(t, u["commander"], id, "issue_order", map[string]any{"order": map[string]any{
		"addressee": "Provider X", "content": "remove the C2 panel", "deadline": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
		"proof_of_delivery": "registered mail 1234"}}, "ORDER_ISSUED")
	mustAct(t, off, id, "order_outcome", map[string]any{"decision": "not_complied"}, "ORDER_ISSUED")
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")

	requireRefusals(t, u["auditor"], id, "refused.vote SoD-3", "refused.respond_info requester", "refused.vote ")
	h, err := u["auditor"].History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h {
		if r.Action == "decide" {
			tally := r.Details["tally"].(map[string]any)
			if tally["eligible"] != float64(4) || tally["reject"] != float64(1) || len(tally["votes"].([]any)) != 4 {
				t.Fatalf("decision tally %v: want 4 eligible and the dissent kept", tally)
			}
		}
	}
	verifyLog(t, e)
	testenv.RecordHistory(t, e, id, "order-with-information-request")
}

// TestLongExecutionContinuesAsNew: a measure whose execution logs many batches continues as
// new when its history grows long, and loses nothing on the way, nor takes a retried batch twice.
func TestLongExecutionContinuesAsNew(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	cfg := workflows.DefaultConfig()
	cfg.HistoryLimit = 120
	e := testenv.Start(t, cfg)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	const batches = 40
	for i := range batches {
		body := steps(e, time.Now(), "203.0.113.10", "update.example-c2.jp")
		// Each sent twice under its key, as a client does whose first answer was lost: the
		// retry is answered, not taken again, also when it arrives after the hand-over to a
		// new run (Temporal knows an Update's ID within one run only).
		for range 2 {
			if _, err := u["executor"].ActOnce(ctx, id, "log_steps", fmt.Sprintf("batch-%d", i), body); err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
		}
	}
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")
	runs := 0
	it, err := e.D.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: e.Namespace, Query: fmt.Sprintf("WorkflowId = '%s'", workflows.ID(id))})
	if err == nil {
		runs = len(it.Executions)
	}
	var logged, stepRows int
	e.D.DB.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE measure_id = $1 AND convert_from(record, 'UTF8')::jsonb->>'action' = 'log_steps'`, id).Scan(&logged)
	e.D.DB.QueryRow(ctx, `SELECT count(*) FROM execution_steps WHERE measure_id = $1`, id).Scan(&stepRows)
	if logged != batches || stepRows != 2*batches {
		t.Fatalf("%d step batches and %d steps recorded, want %d and %d", logged, stepRows, batches, 2*batches)
	}
	if runs < 2 {
		t.Fatalf("the workflow ran %d times; a history of %d events should have continued as new", runs, cfg.HistoryLimit)
	}
	t.Logf("%d runs", runs)
	testenv.RecordHistory(t, e, id, "continue-as-new")
}
