package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// changeRoles proposes a role change as admin and has admin2 approve it.
func changeRoles(t *testing.T, e *testenv.Env, change map[string]any) {
	t.Helper()
	ctx := context.Background()
	var rc struct{ ID string }
	if err := e.Users["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes", change, &rc); err != nil {
		t.Fatalf("propose %v: %v", change, err)
	}
	err := e.Users["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes/"+rc.ID+"/approve", nil, nil)
	refusedWith(t, err, 403, "two-person")
	if err := e.Users["admin2"].Do(ctx, "POST", "/api/v1/admin/role-changes/"+rc.ID+"/approve", nil, nil); err != nil {
		t.Fatalf("approve %v: %v", change, err)
	}
}

// eventually retries an action until the policy watcher has picked up a change.
func eventually(t *testing.T, try func() error) error {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = try(); err == nil {
			return nil
		}
	}
	return err
}

// TestSeparationOfDutiesThroughTheAPI drives the refusals of DESIGN section 4 through the public
// API, role changes included, and finds every attempt in the audit log.
func TestSeparationOfDutiesThroughTheAPI(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users

	// An administrator granting itself a Commission role; agency and Commission roles in one person.
	err := u["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "grant_role", "user": e.IDs["admin"], "role": "commissioner", "reason": "r"}, nil)
	refusedWith(t, err, 403, "SoD-8")
	err = u["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "grant_role", "user": e.IDs["legal"], "role": "commissioner", "reason": "r"}, nil)
	refusedWith(t, err, 403, "SoD-2")
	err = u["officer"].Do(ctx, "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "grant_role", "user": e.IDs["officer"], "role": "legal", "reason": "r"}, nil)
	refusedWith(t, err, 403, "role")

	// Self-approval: the officer is also made a legal reviewer, then reviews their own request.
	changeRoles(t, e, map[string]any{"kind": "grant_role", "user": e.IDs["officer"], "role": "legal", "reason": "covering a vacancy"})
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	err = eventually(t, func() error {
		_, err := u["officer"].Act(ctx, id, "legal_review", legalApproval)
		if e, ok := err.(*client.Error); ok && e.Rule == "SoD-1" {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatalf("self-approval: want SoD-1 once the grant is in force, got %v", err)
	}
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	// A legal reviewer voting; a commissioner executing.
	_, err = u["legal"].Act(ctx, id, "vote", vote("approve"))
	refusedWith(t, err, 403, "role")
	mustAct(t, u["chair"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], id, "vote", vote("approve"), "APPROVED")
	_, err = u["member3"].Act(ctx, id, "start_execution", nil)
	refusedWith(t, err, 403, "role")

	// The executor's designation is revoked: execution is refused.
	changeRoles(t, e, map[string]any{"kind": "revoke_designation", "user": e.IDs["executor"], "designation": "d-executor", "reason": "reassigned"})
	_, err = u["executor"].Act(ctx, id, "start_execution", nil)
	refusedWith(t, err, 403, "SoD-4")
	// A new designation, already expired.
	past := time.Now().Add(-48 * time.Hour)
	changeRoles(t, e, map[string]any{"kind": "designate", "user": e.IDs["executor"], "scope": "npa", "valid_from": past, "valid_until": past.Add(24 * time.Hour), "reason": "r"})
	_, err = u["executor"].Act(ctx, id, "start_execution", nil)
	refusedWith(t, err, 403, "SoD-4")
	changeRoles(t, e, map[string]any{"kind": "designate", "user": e.IDs["executor"], "scope": "npa", "valid_from": past, "valid_until": time.Now().Add(24 * time.Hour), "reason": "r"})
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")

	// A prefectural executor on a target abroad.
	p := plan("self_execute", e.IDs["executor-pref"])
	caseID, _ := u["officer"].CreateCase(ctx, "abroad", "")
	m, err := u["officer"].CreateMeasure(ctx, caseID, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": "198.51.100.7", "location": "abroad", "country": "NL"}}); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["officer"], m.ID, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], m.ID, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], m.ID, "command_review", map[string]any{"decision": "approve"}, "GATES")
	mustAct(t, u["commander"], m.ID, "record_gate", map[string]any{"gate": "foreign_ministry", "reference": "MOFA 2026-201"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], m.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], m.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], m.ID, "vote", vote("approve"), "APPROVED")
	_, err = u["executor-pref"].Act(ctx, m.ID, "start_execution", nil)
	refusedWith(t, err, 403, "SoD-4")

	// Every attempt is in the audit log, with its rule.
	rows, err := e.D.DB.Query(ctx, `SELECT convert_from(record, 'UTF8')::jsonb FROM audit_entries
		WHERE convert_from(record, 'UTF8')::jsonb->>'action' LIKE 'refused.%'`)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for rows.Next() {
		var raw []byte
		rows.Scan(&raw)
		var r struct {
			Action  string
			Details struct{ Rule string }
		}
		json.Unmarshal(raw, &r)
		found[r.Action+" "+r.Details.Rule] = true
	}
	for _, want := range []string{"refused.role_change.propose SoD-8", "refused.role_change.propose SoD-2", "refused.role_change.propose role",
		"refused.role_change.approve two-person", "refused.legal_review SoD-1", "refused.vote role", "refused.start_execution role",
		"refused.start_execution SoD-4"} {
		if !found[want] {
			t.Errorf("%q is not in the audit log (have %v)", want, found)
		}
	}
	verifyLog(t, e)
}

// TestPolicyChange: a new role policy is proposed, refused when it breaks SoD, approved by a
// second administrator, picked up by the running server, and named in the records after it.
func TestPolicyChange(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	var current struct {
		Version string
		Rules   []map[string]string
	}
	if err := u["admin"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &current); err != nil || current.Version != "v1" {
		t.Fatalf("policy %v: %v", current.Version, err)
	}
	bad := append(current.Rules, map[string]string{"role": "admin", "op": "vote", "effect": "allow"})
	err := u["admin"].Do(ctx, "POST", "/api/v1/admin/policy", map[string]any{"rules": bad, "reason": "r"}, nil)
	refusedWith(t, err, 403, "SoD-8")
	// Officers may no longer withdraw; commanders still may.
	var next []map[string]string
	for _, r := range current.Rules {
		if !(r["role"] == "officer" && r["op"] == "withdraw") {
			next = append(next, r)
		}
	}
	var proposed struct{ Version string }
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/policy", map[string]any{"rules": next, "reason": "withdrawals by command only"}, &proposed); err != nil {
		t.Fatal(err)
	}
	err = u["admin"].Do(ctx, "POST", "/api/v1/admin/policy/"+proposed.Version+"/approve", nil, nil)
	refusedWith(t, err, 403, "two-person")
	id := newDraft(t, e, "self_execute", domestic).ID
	if _, err := u["officer"].Act(ctx, id, "submit", nil); err != nil {
		t.Fatal(err)
	}
	if err := u["admin2"].Do(ctx, "POST", "/api/v1/admin/policy/"+proposed.Version+"/approve", nil, nil); err != nil {
		t.Fatal(err)
	}
	// The running server picks the new version up from the notification.
	err = eventually(t, func() error {
		if err := u["admin"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &current); err != nil || current.Version != "v2" {
			return fmt.Errorf("policy in force %q, %v", current.Version, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = u["officer"].Act(ctx, id, "withdraw", map[string]any{"reason": "x"})
	refusedWith(t, err, 403, "role")
	mustAct(t, u["commander"], id, "withdraw", map[string]any{"reason": "superseded"}, "WITHDRAWN")
	h, _ := u["auditor"].History(ctx, id)
	h = slices.DeleteFunc(h, func(r client.Record) bool { return strings.HasPrefix(r.Action, "read.") })
	if last := h[len(h)-1]; last.Action != "withdraw" || last.Policy != "v2" {
		t.Fatalf("the withdrawal was recorded under policy %q, want v2", last.Policy)
	}
	// The log holds v2's rules, and the auditor's replay judges the withdrawal under them.
	verifyLog(t, e)
}
