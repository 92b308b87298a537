package daemon_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestKeyInsertedInSQLIsNotHonoured: an insider inserts a signing key in force for a member
// straight into personal_keys and signs a vote with it. The server refuses the vote (rule
// seal: the log never registered that key), records nothing, and halts the log.
func TestKeyInsertedInSQLIsNotHonoured(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	m := mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	line, _ := audit.ParseSSHKey(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	keyID := audit.KeyID(audit.KeySSH, line)
	if _, err := e.Owner.Exec(ctx, `INSERT INTO personal_keys (id, user_id, kind, public_key, proof, approved_by, approved_at)
		VALUES ($1, $2, 'ssh', $3, '{}', $4, now())`, keyID, e.IDs["member1"], line, e.IDs["admin"]); err != nil {
		t.Fatal(err)
	}
	// Reconcile names the row: the log never wrote it.
	diffs, err := reconcile.Run(ctx, e.D.DB)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(diffs, func(d reconcile.Difference) bool {
		return d.Table == "personal_keys" && d.Key == keyID && d.InLog == ""
	}) {
		t.Fatalf("reconcile does not name the key inserted in SQL: %v", diffs)
	}
	at := time.Now().UTC().Truncate(time.Second)
	st := audit.DecisionStatement(e.IDs["member1"], id, m.Version, m.Digest, "vote", audit.Decided{Decision: "approve"}, at)
	s, _ := signer.Sign(rand.Reader, audit.SSHSignedData(st.Bytes()))
	_, err = u["member1"].Act(ctx, id, "vote", map[string]any{"decision": "approve", "digest": m.Digest,
		"signature": map[string]string{"kind": "ssh", "key": keyID, "time": at.Format(time.RFC3339), "sshsig": audit.ArmorSSHSig(signer.PublicKey(), s)}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 403 || ce.Rule != "seal" {
		t.Fatalf("a vote signed with a key inserted in SQL: %v, want 403 seal", err)
	}
	if got, _ := u["chair"].Measure(ctx, id); got.Stage != "COMMISSION_REVIEW" {
		t.Fatalf("after the refused vote the measure is %s", got.Stage)
	}
	if problems, err := audit.Halted(ctx, e.D.DB); err != nil || len(problems) == 0 {
		t.Fatalf("the log is not halted: %v %v", problems, err)
	}
}

// TestSignedDecisionSentAgainIsRefused: a signed decision's body sent again (by whoever holds
// the member's token or captured it) is refused: each signature is used once, as the verifier
// requires; a retry under the same idempotency key is answered as the first time.
func TestSignedDecisionSentAgainIsRefused(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	m := mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	line, _ := audit.ParseSSHKey(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	keyID := audit.KeyID(audit.KeySSH, line)
	sign := func(st audit.Statement) string {
		s, _ := signer.Sign(rand.Reader, audit.SSHSignedData(st.Bytes()))
		return audit.ArmorSSHSig(signer.PublicKey(), s)
	}
	at := time.Now().UTC().Truncate(time.Second)
	member := e.IDs["member1"]
	if err := u["member1"].Do(ctx, "POST", "/api/v1/keys", map[string]any{"kind": "ssh", "public_key": line,
		"proof": map[string]string{"time": at.Format(time.RFC3339), "sshsig": sign(audit.Statement{Person: member, Op: audit.OpRegisterKey, Digest: keyID, Time: at})}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := u["admin"].Do(ctx, "POST", "/api/v1/keys/"+keyID+"/approve", nil, nil); err != nil {
		t.Fatal(err)
	}
	no := false
	st := audit.DecisionStatement(member, id, m.Version, m.Digest, "declare_conflict", audit.Decided{}, at)
	body := map[string]any{"conflicted": no, "digest": m.Digest, "signature": map[string]string{"kind": "ssh", "key": keyID, "time": at.Format(time.RFC3339), "sshsig": sign(st)}}
	if _, err := u["member1"].ActOnce(ctx, id, "declare_conflict", "dc-1", body); err != nil {
		t.Fatal(err)
	}
	if _, err := u["member1"].ActOnce(ctx, id, "declare_conflict", "dc-1", body); err != nil {
		t.Fatalf("a retry under the same key: %v", err)
	}
	for _, key := range []string{"", "dc-2"} {
		_, err := u["member1"].ActOnce(ctx, id, "declare_conflict", key, body)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 403 || ce.Rule != "signature" || !strings.Contains(ce.Message, "used already") {
			t.Fatalf("the signed body sent again (key %q): %v, want 403 signature", key, err)
		}
	}
	if rep := verifyLog(t, e); rep.Signed != 1 {
		t.Fatalf("%d signed decisions in the log, want 1", rep.Signed)
	}
}

// TestPendingChangesEditedInSQLAreNotApplied: an insider edits a proposal waiting for the second
// administrator: the proposer (so that one administrator approves their own change), the role
// granted, a designation's end, a key's public half. The approval applies none of them: it is
// refused (rule seal), nothing changes, and the log halts.
func TestPendingChangesEditedInSQLAreNotApplied(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	for _, tt := range []struct {
		name  string
		edit  func(t *testing.T, e *testenv.Env) (approver, path string)
		check func(t *testing.T, e *testenv.Env)
	}{
		{"the proposer of a new administrator", func(t *testing.T, e *testenv.Env) (string, string) {
			var c struct{ ID string }
			mustDo(t, e.Users["admin2"], "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "create_user", "role": "admin", "reason": "x",
				"account": map[string]any{"org_id": "oversight", "username": "mallory", "display_name": "M"}}, &c)
			mustExec(t, e, `UPDATE role_changes SET proposed_by = $2 WHERE id = $1`, c.ID, e.IDs["admin"])
			return "admin2", "/api/v1/admin/role-changes/" + c.ID + "/approve"
		}, nil},
		{"the role granted", func(t *testing.T, e *testenv.Env) (string, string) {
			var c struct{ ID string }
			mustDo(t, e.Users["admin"], "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "grant_role", "user": e.IDs["officer2"],
				"role": "commander", "reason": "x"}, &c)
			mustExec(t, e, `UPDATE role_changes SET role = 'legal', user_id = $2 WHERE id = $1`, c.ID, e.IDs["officer"])
			return "admin2", "/api/v1/admin/role-changes/" + c.ID + "/approve"
		}, nil},
		{"a designation's end", func(t *testing.T, e *testenv.Env) (string, string) {
			var c struct{ ID string }
			from := time.Now().UTC().Truncate(time.Second)
			mustDo(t, e.Users["admin"], "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "designate", "user": e.IDs["executor2"],
				"scope": "npa", "valid_from": from, "valid_until": from.AddDate(0, 6, 0), "reason": "x"}, &c)
			mustExec(t, e, `UPDATE role_changes SET valid_until = valid_until + interval '70 years' WHERE id = $1`, c.ID)
			return "admin2", "/api/v1/admin/role-changes/" + c.ID + "/approve"
		}, nil},
		{"the proposer of a policy version", func(t *testing.T, e *testenv.Env) (string, string) {
			var v struct{ Version string }
			mustDo(t, e.Users["admin2"], "POST", "/api/v1/admin/policy", map[string]any{"rules": authz.DefaultPolicy(), "reason": "x"}, &v)
			mustExec(t, e, `UPDATE authz_policy_versions SET proposed_by = $1 WHERE version = 2`, e.IDs["admin"])
			return "admin2", "/api/v1/admin/policy/" + v.Version + "/approve"
		}, func(t *testing.T, e *testenv.Env) {
			var n int
			_ = e.Owner.QueryRow(context.Background(), `SELECT count(*) FROM authz_policy_versions WHERE version = 2 AND approved_by IS NOT NULL`).Scan(&n)
			if n != 0 {
				t.Error("the version was approved")
			}
		}},
		{"the reason shown to the approver", func(t *testing.T, e *testenv.Env) (string, string) {
			var c struct{ ID string }
			mustDo(t, e.Users["admin"], "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "revoke_role", "user": e.IDs["member4"],
				"role": "commissioner", "reason": "term ended"}, &c)
			mustExec(t, e, `UPDATE role_changes SET reason = 'as the chair asked' WHERE id = $1`, c.ID)
			return "admin2", "/api/v1/admin/role-changes/" + c.ID + "/approve"
		}, nil},
		{"a key's public half", func(t *testing.T, e *testenv.Env) (string, string) {
			id := proposeSSHKey(t, e, "member1")
			mustExec(t, e, `UPDATE personal_keys SET public_key = $2 WHERE id = $1`, id, newSSHKey(t).line)
			return "admin", "/api/v1/keys/" + id + "/approve"
		}, func(t *testing.T, e *testenv.Env) {
			var n int
			_ = e.Owner.QueryRow(context.Background(), `SELECT count(*) FROM personal_keys WHERE approved_at IS NOT NULL`).Scan(&n)
			if n != 0 {
				t.Errorf("%d keys in force", n)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := testenv.Start(t, workflows.DefaultConfig())
			approver, path := tt.edit(t, e)
			err := e.Users[approver].Do(context.Background(), "POST", path, nil, nil)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != 403 || ce.Rule != "seal" {
				t.Fatalf("the approval of a proposal edited in SQL: %v, want 403 seal", err)
			}
			var applied int
			_ = e.Owner.QueryRow(context.Background(), `SELECT count(*) FROM role_changes WHERE approved_by IS NOT NULL`).Scan(&applied)
			if applied != 0 {
				t.Errorf("%d changes applied", applied)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
			if problems, err := audit.Halted(context.Background(), e.D.DB); err != nil || len(problems) == 0 {
				t.Fatalf("the log is not halted: %v %v", problems, err)
			}
		})
	}
}

func mustDo(t *testing.T, c *client.Client, method, path string, in, out any) {
	t.Helper()
	if err := c.Do(context.Background(), method, path, in, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

func mustExec(t *testing.T, e *testenv.Env, sql string, args ...any) {
	t.Helper()
	if _, err := e.Owner.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// proposeSSHKey proposes a fresh SSH key for who, with its proof, and returns its ID.
func proposeSSHKey(t *testing.T, e *testenv.Env, who string) string {
	t.Helper()
	k := newSSHKey(t)
	at := time.Now().UTC().Truncate(time.Second)
	mustDo(t, e.Users[who], "POST", "/api/v1/keys", map[string]any{"kind": "ssh", "public_key": k.line,
		"proof": k.signature(audit.Statement{Person: e.IDs[who], Op: audit.OpRegisterKey, Digest: k.id, Time: at})}, nil)
	return k.id
}

// TestSignedEmergencyAndOrder: under a policy requiring them signed, a commander's emergency
// declaration and an order to an administrator are refused unsigned and recorded signed, and
// the exported log verifies both signatures (the order's statement names it by hash).
func TestSignedEmergencyAndOrder(t *testing.T) {
	t.Parallel() // a server of its own; it polls with seconds to spare: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	k := newSSHKey(t)
	keyID, sign := k.id, k.signature
	at := time.Now().UTC().Truncate(time.Second)
	mustDo(t, u["commander"], "POST", "/api/v1/keys", map[string]any{"kind": "ssh", "public_key": k.line,
		"proof": sign(audit.Statement{Person: e.IDs["commander"], Op: audit.OpRegisterKey, Digest: keyID, Time: at})}, nil)
	mustDo(t, u["admin"], "POST", "/api/v1/keys/"+keyID+"/approve", nil, nil)
	rules := append(authz.DefaultPolicy(), authz.Rule{Role: authz.Commander, Op: "declare_emergency", Effect: "sign"},
		authz.Rule{Role: authz.AnyRole, Op: "issue_order", Effect: "sign"})
	var v struct{ Version string }
	mustDo(t, u["admin"], "POST", "/api/v1/admin/policy", map[string]any{"rules": rules, "reason": "emergencies and orders signed"}, &v)
	mustDo(t, u["admin2"], "POST", "/api/v1/admin/policy/"+v.Version+"/approve", nil, nil)
	for i := 0; ; i++ {
		var p struct{ Version string }
		if err := u["officer"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &p); err == nil && p.Version == v.Version {
			break
		} else if i > 200 {
			t.Fatal("the policy never came in force")
		}
		time.Sleep(25 * time.Millisecond)
	}

	a := newDraft(t, e, "self_execute", domestic)
	emergency := map[string]any{"reason": "the C2 pushes ransomware to hospitals now"}
	_, err := u["commander"].Act(ctx, a.ID, "declare_emergency", emergency)
	refusedWith(t, err, 403, "signature")
	at = time.Now().UTC().Truncate(time.Second)
	emergency["signature"] = sign(audit.DecisionStatement(e.IDs["commander"], a.ID, a.Version, "", "declare_emergency", audit.Decided{Reason: emergency["reason"].(string)}, at))
	mustAct(t, u["commander"], a.ID, "declare_emergency", emergency, "EMERGENCY_EXECUTING")

	b := newDraft(t, e, "order_administrator", domestic)
	mustAct(t, u["officer"], b.ID, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], b.ID, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], b.ID, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], b.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], b.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	m := mustAct(t, u["member2"], b.ID, "vote", vote("approve"), "APPROVED")
	order := measure.Order{Addressee: "Provider X", Content: "remove the C2 panel", Deadline: time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)}
	_, err = u["commander"].Act(ctx, b.ID, "issue_order", map[string]any{"order": order})
	refusedWith(t, err, 403, "signature")
	digest, _ := audit.ContentDigest(&order)
	at = time.Now().UTC().Truncate(time.Second)
	// Signed for another order: refused.
	other, _ := audit.ContentDigest(&measure.Order{Addressee: "Provider X", Content: "nothing", Deadline: order.Deadline})
	_, err = u["commander"].Act(ctx, b.ID, "issue_order", map[string]any{"order": order,
		"signature": sign(audit.DecisionStatement(e.IDs["commander"], b.ID, m.Version, "", "issue_order", audit.Decided{Body: other}, at))})
	refusedWith(t, err, 403, "signature")
	mustAct(t, u["commander"], b.ID, "issue_order", map[string]any{"order": order,
		"signature": sign(audit.DecisionStatement(e.IDs["commander"], b.ID, m.Version, "", "issue_order", audit.Decided{Body: digest}, at.Add(time.Second)))}, "ORDER_ISSUED")

	if rep := verifyLog(t, e); !rep.OK() || rep.Signed != 2 {
		t.Fatalf("the exported log: %d signed, failures %v", rep.Signed, rep.Failures)
	}
}
