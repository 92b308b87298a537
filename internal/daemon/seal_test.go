package daemon_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestSwappedTargetIsNotExecuted: a database owner who rewrites an approved target in SQL
// (or adds one) does not get it executed. Execution is held to the seal the workflow keeps:
// starting, logging steps and finishing are refused with the rule "seal", each refusal audited;
// the honest rows restored, execution goes on.
func TestSwappedTargetIsNotExecuted(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)

	for _, tc := range []struct{ name, tamper, restore string }{
		{"a target's value rewritten",
			`UPDATE targets SET value = '198.18.0.66' WHERE measure_id = $1 AND value = '203.0.113.10'`,
			`UPDATE targets SET value = '203.0.113.10' WHERE measure_id = $1 AND value = '198.18.0.66'`},
		{"a target added to the approved version",
			`INSERT INTO targets (measure_id, version, seq, kind, value, location, role)
				SELECT measure_id, version, 99, 'ip', '198.18.0.66', 'domestic', 'c2' FROM targets WHERE measure_id = $1 LIMIT 1`,
			`DELETE FROM targets WHERE measure_id = $1 AND seq = 99`},
		{"a target's location changed",
			`UPDATE targets SET location = 'abroad' WHERE measure_id = $1 AND value = '203.0.113.10'`,
			`UPDATE targets SET location = 'domestic' WHERE measure_id = $1 AND value = '203.0.113.10'`},
	} {
		if _, err := e.Owner.Exec(ctx, tc.tamper, id); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err := u["executor"].Act(ctx, id, "start_execution", nil)
		refusedWith(t, err, 403, "seal")
		if _, err := e.Owner.Exec(ctx, tc.restore, id); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "update.example-c2.jp"), "EXECUTING")

	// Swapped while executing: the step on the swapped address is refused, and so is one on
	// an approved address, until the rows agree with the seal again.
	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '198.18.0.66' WHERE measure_id = $1 AND value = '203.0.113.10'`, id); err != nil {
		t.Fatal(err)
	}
	_, err := u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "198.18.0.66"))
	refusedWith(t, err, 403, "seal")
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "update.example-c2.jp"))
	refusedWith(t, err, 403, "seal")
	_, err = u["executor"].Act(ctx, id, "finish_execution", nil)
	refusedWith(t, err, 403, "seal")
	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '203.0.113.10' WHERE measure_id = $1 AND value = '198.18.0.66'`, id); err != nil {
		t.Fatal(err)
	}
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "198.18.0.66"))
	refusedWith(t, err, 403, "scope")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")

	requireRefusals(t, u["auditor"], id, "refused.start_execution seal", "refused.log_steps seal", "refused.finish_execution seal", "refused.log_steps scope")
	var steps int
	if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM execution_steps WHERE measure_id = $1 AND target = '198.18.0.66'`, id).Scan(&steps); err != nil || steps != 0 {
		t.Fatalf("%d steps on the swapped address were stored (%v)", steps, err)
	}
	verifyLog(t, e)
}

// TestDecisionOnATamperedVersionIsRefused: a vote on a version whose target rows were changed
// after it was sealed is refused, whatever the page showed.
func TestDecisionOnATamperedVersionIsRefused(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	if _, err := e.Owner.Exec(ctx, `DELETE FROM targets WHERE measure_id = $1 AND value = 'update.example-c2.jp'`, id); err != nil {
		t.Fatal(err)
	}
	_, err := u["legal"].Act(ctx, id, "legal_review", legalApproval)
	refusedWith(t, err, 403, "seal")
	requireRefusals(t, u["auditor"], id, "refused.legal_review seal")
}

// TestDesignationEditedInSQLIsNotHonoured: an operator with the database's credentials edits
// the named executor's designation (its window, its scope, or gives them another's). The
// service executes only under designations as their signed records say: the action is
// refused with a named refusal, the log halts, and once the rows are put back and the halt
// cleared the executor acts again.
func TestDesignationEditedInSQLIsNotHonoured(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)
	verifyLog(t, e) // the designations' records are signed
	executor := e.IDs["executor"]
	const snapshot = `CREATE TEMP TABLE IF NOT EXISTS honest AS SELECT * FROM executor_designations`
	const putBack = `UPDATE executor_designations d SET user_id = h.user_id, scope = h.scope, valid_until = h.valid_until FROM honest h WHERE h.id = d.id`
	conn, err := e.Owner.Acquire(ctx) // the temporary table lives on one connection
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, snapshot); err != nil {
		t.Fatal(err)
	}
	for _, tamper := range []string{
		`UPDATE executor_designations SET valid_until = valid_until + interval '10 years' WHERE user_id = $1`,
		`UPDATE executor_designations SET scope = 'prefectural' WHERE user_id = $1`,
		`UPDATE executor_designations SET user_id = $1 WHERE user_id = (SELECT id FROM users WHERE username = 'executor2')`,
	} {
		if _, err := conn.Exec(ctx, tamper, executor); err != nil {
			t.Fatalf("%s: %v", tamper, err)
		}
		_, err := u["executor"].Act(ctx, id, "start_execution", nil)
		refusedWith(t, err, 403, "seal")
		var ce *client.Error
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, "is not what the audit log recorded") {
			t.Fatalf("%s: the refusal does not say the designation differs from its record: %v", tamper, err)
		}
		halts, err := audit.Halted(ctx, e.Owner)
		if err != nil || len(halts) != 1 || !strings.HasPrefix(halts[0], "grant: designation ") {
			t.Fatalf("%s: halts %q (%v)", tamper, halts, err)
		}
		for _, q := range []string{putBack, `UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("put back: %v", err)
			}
		}
	}
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
}

// TestRoleGrantedInSQLIsNotHonoured: an operator grants a role in SQL, around the two
// administrators (a Commission role to an agency officer, the auditor's reading of every case
// to an administrator), or undoes a revocation. The principal's next request is refused with a
// named refusal and the log halts; a role granted through the service is honoured at once,
// before the sequencer has signed its record.
func TestRoleGrantedInSQLIsNotHonoured(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	verifyLog(t, e)
	for _, tc := range []struct{ who, role string }{{"officer2", "commissioner"}, {"admin", "auditor"}} {
		if _, err := e.Owner.Exec(ctx, `INSERT INTO role_grants (user_id, role) VALUES ($1, $2)`, e.IDs[tc.who], tc.role); err != nil {
			t.Fatal(err)
		}
		err := u[tc.who].Do(ctx, "GET", "/api/v1/cases", nil, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 403 || !strings.Contains(ce.Message, "role "+tc.role+" of "+e.IDs[tc.who]+" as stored") {
			t.Fatalf("%s with %s granted in SQL: %v", tc.who, tc.role, err)
		}
		halts, err := audit.Halted(ctx, e.Owner)
		if err != nil || len(halts) != 1 || !strings.HasPrefix(halts[0], "grant: role "+tc.role) {
			t.Fatalf("halts %q (%v)", halts, err)
		}
		for _, q := range []string{`DELETE FROM role_grants WHERE user_id = '` + e.IDs[tc.who] + `' AND role = '` + tc.role + `'`,
			`UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`} {
			if _, err := e.Owner.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if err := u[tc.who].Do(ctx, "GET", "/api/v1/cases", nil, nil); err != nil {
			t.Fatalf("%s after the row was put back: %v", tc.who, err)
		}
	}
}

// TestDraftEditedInSQLIsNotSealed: while a measure is a draft, an operator swaps a target's
// value in SQL, adds a row, or puts back a row the officer removed. Submitting it is refused
// with the rule "seal" (the rows are not those the officer's recorded edits made), nothing is
// sealed, and once the rows are the officer's again it is sealed as they made it. A version
// opened again for changes is held to the same check, from its predecessor's seal.
func TestDraftEditedInSQLIsNotSealed(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	m := newDraft(t, e, "self_execute", domestic)
	if _, err := u["officer"].AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": "192.0.2.44", "location": "domestic"}}); err != nil {
		t.Fatal(err)
	}
	if err := u["officer"].Do(ctx, "POST", "/api/v1/measures/"+m.ID+"/targets/remove", map[string]any{"values": []string{"192.0.2.44"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, tamper, restore string }{
		{"a value swapped", `UPDATE targets SET value = '198.18.0.66' WHERE measure_id = $1 AND value = '203.0.113.10'`,
			`UPDATE targets SET value = '203.0.113.10' WHERE measure_id = $1 AND value = '198.18.0.66'`},
		{"a row added", `INSERT INTO targets (measure_id, version, seq, kind, value, location) VALUES ($1, 1, 99, 'ip', '198.18.0.66', 'domestic')`,
			`DELETE FROM targets WHERE measure_id = $1 AND seq = 99`},
		{"a removed row put back", `INSERT INTO targets (measure_id, version, seq, kind, value, location) VALUES ($1, 1, 98, 'ip', '192.0.2.44', 'domestic')`,
			`DELETE FROM targets WHERE measure_id = $1 AND seq = 98`},
		{"a location changed", `UPDATE targets SET location = 'abroad', country = 'NL' WHERE measure_id = $1 AND value = '203.0.113.10'`,
			`UPDATE targets SET location = 'domestic', country = 'JP' WHERE measure_id = $1 AND value = '203.0.113.10'`},
	} {
		if _, err := e.Owner.Exec(ctx, tc.tamper, m.ID); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err := u["officer"].Act(ctx, m.ID, "submit", nil)
		refusedWith(t, err, 403, "seal")
		var sealed int
		if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM measure_versions WHERE measure_id = $1`, m.ID).Scan(&sealed); err != nil || sealed != 0 {
			t.Fatalf("%s: %d versions sealed (%v)", tc.name, sealed, err)
		}
		if _, err := e.Owner.Exec(ctx, tc.restore, m.ID); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	mustAct(t, u["officer"], m.ID, "submit", nil, "LEGAL_REVIEW")
	// Returned for changes: version 2 starts as version 1's rows, and is held to them.
	mustAct(t, u["legal"], m.ID, "legal_review", map[string]any{"decision": "return", "reason": "name the hosting provider"}, "DRAFT")
	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '198.18.0.66' WHERE measure_id = $1 AND version = 2 AND value = '203.0.113.10'`, m.ID); err != nil {
		t.Fatal(err)
	}
	_, err := u["officer"].Act(ctx, m.ID, "submit", nil)
	refusedWith(t, err, 403, "seal")
	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '203.0.113.10' WHERE measure_id = $1 AND version = 2 AND value = '198.18.0.66'`, m.ID); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["officer"], m.ID, "submit", nil, "LEGAL_REVIEW")
	requireRefusals(t, u["auditor"], m.ID, "refused.submit seal", "refused.submit seal", "refused.submit seal", "refused.submit seal", "refused.submit seal")
}

// TestPolicyEditedInSQLIsNotInForce: an operator slips a rule into the policy in force, or
// writes a whole new version marked approved, in SQL. Neither is put in force: the service
// keeps the version the log recorded, halts the log and says why.
func TestPolicyEditedInSQLIsNotInForce(t *testing.T) {
	t.Parallel() // a server of its own; it polls with seconds to spare: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	policy := func() (string, int) {
		t.Helper()
		var p struct {
			Version string `json:"version"`
			Rules   []any  `json:"rules"`
		}
		if err := e.Users["auditor"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &p); err != nil {
			t.Fatal(err)
		}
		return p.Version, len(p.Rules)
	}
	version, rules := policy()
	for _, tc := range []struct {
		name string
		sql  []string
	}{
		{"a rule slipped into the version in force", []string{
			`INSERT INTO authz_rules (version, role, op, effect) VALUES (1, 'officer', 'vote', 'allow')`,
			`SELECT pg_notify('authz_policy', 'authz_rules')`}},
		{"a version written as approved", []string{
			`INSERT INTO authz_policy_versions (version, proposed_by, approved_by, reason, approved_at)
				SELECT 2, (SELECT id FROM users WHERE username = 'admin'), (SELECT id FROM users WHERE username = 'admin2'), 'slipped', now()`,
			`INSERT INTO authz_rules (version, role, op, effect) SELECT 2, role, op, effect FROM authz_rules WHERE version = 1`}},
	} {
		for _, q := range tc.sql {
			if _, err := e.Owner.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		var halts []string
		for start := time.Now(); time.Since(start) < 10*time.Second && len(halts) == 0; time.Sleep(100 * time.Millisecond) {
			var err error
			if halts, err = audit.Halted(ctx, e.Owner); err != nil {
				t.Fatal(err)
			}
		}
		if len(halts) != 1 || !strings.HasPrefix(halts[0], "policy: version v") {
			t.Fatalf("%s: halts %q", tc.name, halts)
		}
		if v, n := policy(); v != version || n != rules {
			t.Fatalf("%s: the policy in force became %s with %d rules (was %s with %d)", tc.name, v, n, version, rules)
		}
		if _, err := e.Owner.Exec(ctx, `UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSwappedEvidenceIsNotJudged: a sealed version's evidence file swapped for another in SQL
// (its hash rewritten) is not judged: the review is refused with the rule "seal".
func TestSwappedEvidenceIsNotJudged(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	other := newDraft(t, e, "self_execute", domestic).ID
	if _, err := u["officer"].AddEvidence(ctx, other, url.Values{"filename": {"other.pcap"}, "kind": {"pcap"}, "provenance": {"own_investigation"}},
		strings.NewReader("another file altogether")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE evidence SET sha256 = (SELECT sha256 FROM evidence WHERE measure_id = $2 AND filename = 'other.pcap')
		WHERE measure_id = $1`, id, other); err != nil {
		t.Fatal(err)
	}
	_, err := u["legal"].Act(ctx, id, "legal_review", legalApproval)
	refusedWith(t, err, 403, "seal")
	var ce *client.Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "evidence files are not the 1 sealed") {
		t.Fatalf("the refusal does not name the evidence: %v", err)
	}
}

// TestVoteInsertedInSQLIsNamed: an operator inserts a member's vote in SQL, ahead of the
// member. The member's own vote is refused with the rule "seal", saying the table was altered
// (not blamed on their input), and nothing is recorded.
func TestVoteInsertedInSQLIsNamed(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	if _, err := e.Owner.Exec(ctx, `INSERT INTO votes (measure_id, version, digest, member_id, vote) SELECT id, version, digest, $2, 'reject' FROM measures WHERE id = $1`,
		id, e.IDs["member2"]); err != nil {
		t.Fatal(err)
	}
	_, err := u["member2"].Act(ctx, id, "vote", vote("approve"))
	refusedWith(t, err, 403, "seal")
	var ce *client.Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "already holds a row this vote would write") {
		t.Fatalf("the refusal does not say the table was altered: %v", err)
	}
}

// TestPolicyRolledBackInSQLIsNotInForce: an insider un-approves the newest policy version in
// SQL, so that the one before (without its signature requirement) would be the newest
// approved. The version the log approved stays in force and the log halts.
func TestPolicyRolledBackInSQLIsNotInForce(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	rules := authz.DefaultPolicy()
	rules = append(rules, authz.Rule{Role: authz.AnyRole, Op: "vote", Effect: "sign"})
	var v struct{ Version string }
	if err := e.Users["admin"].Do(ctx, "POST", "/api/v1/admin/policy", map[string]any{"rules": rules, "reason": "signed votes"}, &v); err != nil {
		t.Fatal(err)
	}
	if err := e.Users["admin2"].Do(ctx, "POST", "/api/v1/admin/policy/"+v.Version+"/approve", nil, nil); err != nil {
		t.Fatal(err)
	}
	inForce := func() string {
		var p struct{ Version string }
		if err := e.Users["auditor"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &p); err != nil {
			t.Fatal(err)
		}
		return p.Version
	}
	for start := time.Now(); inForce() != v.Version; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s never came in force", v.Version)
		}
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE authz_policy_versions SET approved_by = NULL, approved_at = NULL WHERE version = 2`); err != nil {
		t.Fatal(err)
	}
	var halts []string
	for start := time.Now(); time.Since(start) < 10*time.Second && len(halts) == 0; time.Sleep(100 * time.Millisecond) {
		var err error
		if halts, err = audit.Halted(ctx, e.Owner); err != nil {
			t.Fatal(err)
		}
	}
	if len(halts) != 1 || !strings.Contains(halts[0], "the log records v2 approved after it") {
		t.Fatalf("halts %q", halts)
	}
	if got := inForce(); got != v.Version {
		t.Fatalf("after the rollback in SQL the policy in force is %s, want %s", got, v.Version)
	}
}
