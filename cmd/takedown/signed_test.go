package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestSignedDecisionsFromTheCLI registers SSH keys from the CLI (approved by an
// administrator), puts in force a policy requiring signed legal reviews and votes, takes a
// measure to approval with decisions signed through ssh-agent and through ssh-keygen, and
// verifies the exported log offline: every signature checks against the key the log
// registered.
func TestSignedDecisionsFromTheCLI(t *testing.T) {
	if _, err := os.Stat("/usr/bin/ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen")
	}
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	dir := t.TempDir()

	// An ssh-agent holding the keys of legal, chair and member1; member2's key is only a file.
	keyring := agent.NewKeyring()
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	t.Setenv("TAKEDOWN_SERVER", e.D.URL)
	keyFile := map[string]string{}
	for _, who := range []string{"legal", "chair", "member1", "member2", "executor", "admin", "admin2"} {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		block, err := ssh.MarshalPrivateKey(priv, who)
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := ssh.NewSignerFromKey(priv)
		path := filepath.Join(dir, who)
		_ = os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
		_ = os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644)
		keyFile[who] = path + ".pub"
		if who != "member2" {
			if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cli := func(who string, args ...string) (string, error) {
		t.Helper()
		t.Setenv("TAKEDOWN_TOKEN", u[who].Token)
		var out bytes.Buffer
		err := run(ctx, args, &out)
		return out.String(), err
	}
	mustCLI := func(who string, args ...string) string {
		t.Helper()
		out, err := cli(who, args...)
		if err != nil {
			t.Fatalf("%s: takedown %s: %v", who, strings.Join(args, " "), err)
		}
		return out
	}
	refused := func(want int, rule string, who string, args ...string) {
		t.Helper()
		_, err := cli(who, args...)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != want || (rule != "" && ce.Rule != rule) {
			t.Fatalf("%s: takedown %s: %v, want %d %s", who, strings.Join(args, " "), err, want, rule)
		}
	}

	// Each proposes their key; an administrator approves. Nobody approves their own, and
	// someone who is not an administrator approves none.
	ids := map[string]string{}
	for who, path := range keyFile {
		out := mustCLI(who, "key", "add", "-ssh", path, "-label", who+"'s laptop")
		ids[who] = strings.Fields(out)[0]
	}
	refused(403, "role", "member1", "key", "approve", ids["chair"])
	for _, who := range []string{"legal", "chair", "member1", "member2", "executor", "admin2"} {
		mustCLI("admin", "key", "approve", ids[who])
	}
	mustCLI("admin2", "key", "approve", ids["admin"])
	refused(409, "", "admin2", "key", "approve", ids["chair"])
	// No statement is offered for approving a key in force already, nor one's own.
	for who, id := range map[string]string{"admin2": ids["chair"], "admin": ids["admin"]} {
		err := u[who].Do(ctx, "POST", "/api/v1/keys/"+id+"/statement", nil, nil)
		if ce := (*client.Error)(nil); !errors.As(err, &ce) || (ce.Status != 409 && ce.Status != 403) {
			t.Fatalf("%s asks the statement approving key %s: %v", who, id, err)
		}
	}
	if out := mustCLI("chair", "key", "list"); !strings.Contains(out, ids["chair"]) || !strings.Contains(out, "active") {
		t.Fatalf("chair's keys: %s", out)
	}

	// The policy requires the legal review, every vote and the administrators' approvals to be
	// signed.
	rules := authz.DefaultPolicy()
	rules = append(rules, authz.Rule{Role: authz.AnyRole, Op: "vote", Effect: "sign"}, authz.Rule{Role: authz.Legal, Op: "legal_review", Effect: "sign"},
		authz.Rule{Role: authz.Executor, Op: "log_steps", Effect: "sign"}, authz.Rule{Role: authz.Admin, Op: "approve_key", Effect: "sign"}, authz.Rule{Role: authz.Admin, Op: "approve_policy", Effect: "sign"},
		authz.Rule{Role: authz.Admin, Op: "approve_role_change", Effect: "sign"})
	var v struct{ Version string }
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/policy", map[string]any{"rules": rules, "reason": "decisions signed personally"}, &v); err != nil {
		t.Fatal(err)
	}
	if err := u["admin2"].Do(ctx, "POST", "/api/v1/admin/policy/"+v.Version+"/approve", nil, nil); err != nil {
		t.Fatal(err)
	}
	waitPolicy(t, u["officer"], v.Version)

	off := u["officer"]
	caseID, err := off.CreateCase(ctx, "PlugX botnet", "PlugX variant controlling SOHO routers")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, map[string]any{"title": "Neutralise PlugX C2", "legal_basis": "police_duties_act_6_2",
		"kind": "self_execute", "technique": "disable_malware", "operations": []string{"send the self-delete command"},
		"executors":    []string{e.IDs["executor"]},
		"alternatives": []map[string]string{{"means": "ask the hosting provider", "outcome": "tried", "reason": "no answer within 48 h"}},
		"necessity":    "the C2 commands 4,000 routers", "proportionality": "only the implant is touched", "collateral": "none expected",
		"rollback_plan": "none needed", "notification_plan": "notify the provider after execution"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": "203.0.113.10", "location": "domestic", "role": "c2", "ownership": "attacker_controlled"}}); err != nil {
		t.Fatal(err)
	}
	m, err = off.Act(ctx, m.ID, "submit", nil)
	if err != nil {
		t.Fatal(err)
	}
	act := func(who string, sign bool, args ...string) []string {
		a := append([]string{"act", "-measure", m.ID, "-digest", m.Digest}, args...)
		if sign {
			a = append(a, "-sign", keyFile[who])
		}
		return a
	}
	// Unsigned, the legal review is refused and nothing is recorded; signed, it is.
	refused(403, "signature", "legal", act("legal", false, "-op", "legal_review", "-decision", "approve", "-confirm", "all", "-reason", "lawful")...)
	// Signed with another's key: refused.
	refused(403, "signature", "legal", append(act("legal", false, "-op", "legal_review", "-decision", "approve", "-confirm", "all"), "-sign", keyFile["chair"])...)
	mustCLI("legal", act("legal", true, "-op", "legal_review", "-decision", "approve", "-confirm", "all", "-reason", "lawful: art. 6-2 met")...)
	mustCLI("commander", act("commander", false, "-op", "command_review", "-decision", "approve")...)
	refused(403, "signature", "chair", act("chair", false, "-op", "vote", "-decision", "approve")...)
	mustCLI("chair", act("chair", true, "-op", "vote", "-decision", "approve", "-condition", "report within 24 h")...)
	mustCLI("member1", act("member1", true, "-op", "vote", "-decision", "approve")...)
	// member2's key is not in the agent: ssh-keygen signs with the file.
	mustCLI("member2", act("member2", true, "-op", "vote", "-decision", "approve", "-reason", "necessary and proportionate")...)
	if got, _ := off.Measure(ctx, m.ID); got.Stage != "APPROVED" {
		t.Fatalf("after the signed votes the measure is %s", got.Stage)
	}

	// The executor signs each batch of steps: the statement names the list by its hash.
	mustCLI("executor", "act", "-measure", m.ID, "-op", "start_execution")
	batch := filepath.Join(dir, "steps.json")
	at := time.Now().UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00") // as a typist writes it, not as Go would
	_ = os.WriteFile(batch, []byte(`{"steps": [{"target": "203.0.113.10", "technique": "disable_malware", "action": "sent the self-delete command\nand checked",
		"result": "success", "witness": "`+e.IDs["executor2"]+`", "at": "`+at+`"}]}`), 0o644)
	refused(403, "signature", "executor", "act", "-measure", m.ID, "-op", "log_steps", "-json", batch)
	mustCLI("executor", "act", "-measure", m.ID, "-op", "log_steps", "-json", batch, "-sign", keyFile["executor"])
	// A batch too large for its record moves to companion data; its signature still holds.
	var large strings.Builder
	large.WriteString(`{"steps": [`)
	for i := range 1000 {
		if i > 0 {
			large.WriteString(",")
		}
		fmt.Fprintf(&large, `{"target": "203.0.113.10", "technique": "disable_malware", "action": "attempt %d", "result": "failure", "witness": %q, "at": %q}`,
			i, e.IDs["executor2"], at)
	}
	large.WriteString("]}")
	_ = os.WriteFile(batch, []byte(large.String()), 0o644)
	mustCLI("executor", "act", "-measure", m.ID, "-op", "log_steps", "-json", batch, "-sign", keyFile["executor"])
	mustCLI("executor", "act", "-measure", m.ID, "-op", "finish_execution")

	// A revoked key signs nothing more.
	mustCLI("member1", "key", "revoke", "-reason", "laptop lost", ids["member1"])
	if _, err := cli("member1", "key", "revoke", "-reason", "again", ids["member1"]); err == nil {
		t.Fatal("a key was revoked twice")
	}
	// A revoked key is not registered again, and says so.
	if _, err := cli("member1", "key", "add", "-ssh", keyFile["member1"]); err == nil || !strings.Contains(err.Error(), "was revoked") {
		t.Fatalf("a revoked key proposed again: %v", err)
	}
	// Administrators' approvals are signed now: an account change, a key, a policy version.
	var change struct{ ID string }
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "create_org", "reason": "a partner CERT joins",
		"account": map[string]any{"org_id": "partner-cert", "org_name": "Partner CERT", "org_kind": "agency"}}, &change); err != nil {
		t.Fatal(err)
	}
	refused(403, "signature", "admin2", "admin", "approve", change.ID)
	// Signed with another administrator's key: refused.
	refused(403, "signature", "admin2", "admin", "approve", "-sign", keyFile["admin"], change.ID)
	if out := mustCLI("admin2", "admin", "approve", "-sign", keyFile["admin2"], change.ID); !strings.Contains(out, "approved") {
		t.Fatalf("signed approval: %s", out)
	}
	newKey := filepath.Join(dir, "member1-new")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", newKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", "") // the new key is a file: ssh-keygen signs
	id := strings.Fields(mustCLI("member1", "key", "add", "-ssh", newKey+".pub"))[0]
	t.Setenv("SSH_AUTH_SOCK", sock)
	refused(403, "signature", "admin", "key", "approve", id)
	// A careless typist puts the flag after the ID, or gives it no file.
	if _, err := cli("admin", "key", "approve", id, "-sign", ""); err == nil || !strings.Contains(err.Error(), "-sign needs") {
		t.Fatalf("-sign with no file: %v", err)
	}
	mustCLI("admin", "key", "approve", id, "-sign", keyFile["admin"])
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/policy", map[string]any{"rules": rules[:len(rules)-1], "reason": "account changes unsigned again"}, &v); err != nil {
		t.Fatal(err)
	}
	refused(403, "signature", "admin2", "policy", "approve", v.Version)
	if out := mustCLI("admin2", "policy", "approve", "-sign", keyFile["admin2"], v.Version); !strings.Contains(out, "in force") {
		t.Fatalf("signed policy approval: %s", out)
	}
	waitPolicy(t, u["officer"], v.Version)

	// Passkeys are registered on the web page only; the API says so before reading the key.
	err = u["member1"].Do(ctx, "POST", "/api/v1/keys", map[string]any{"kind": "webauthn", "public_key": "garbage", "proof": map[string]string{}}, nil)
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Message, "web pages") {
		t.Fatalf("a passkey through the API: %v", err)
	}

	// The last administrator's key in force is not revoked while key approvals must be signed:
	// no key could be approved again.
	mustCLI("admin", "key", "revoke", "-reason", "leaving", ids["admin"])
	if _, err := cli("admin2", "key", "revoke", "-reason", "leaving too", ids["admin2"]); err == nil || !strings.Contains(err.Error(), "last administrator's key") {
		t.Fatalf("the last administrator's key revoked under a policy requiring signed key approvals: %v", err)
	}

	rep := e.Exported(t)
	if !rep.OK() || rep.Signed != 9 {
		t.Fatalf("the exported log: %d signed decisions, failures %v", rep.Signed, rep.Failures)
	}
	// The keys as the table holds them are what the log says (in force, revoked).
	if diffs, err := reconcile.Run(ctx, e.D.DB); err != nil || len(diffs) != 0 {
		t.Fatalf("reconcile: %v %v", diffs, err)
	}
}

// waitPolicy waits until the server enforces version v.
func waitPolicy(t *testing.T, c *client.Client, v string) {
	t.Helper()
	for range 200 {
		var p struct{ Version string }
		if err := c.Do(context.Background(), "GET", "/api/v1/admin/policy", nil, &p); err == nil && p.Version == v {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("policy %s never came in force", v)
}

// TestSigningPolicyFromTheCLI: the administrators propose and approve the signing policy with
// one command each; from then on every decision, batch and approval needs its taker's
// signature, and the administration page stops asking for it.
func TestSigningPolicyFromTheCLI(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	t.Setenv("TAKEDOWN_SERVER", e.D.URL)
	cli := func(who string, args ...string) (string, error) {
		t.Helper()
		t.Setenv("TAKEDOWN_TOKEN", u[who].Token)
		var out bytes.Buffer
		err := run(ctx, args, &out)
		return out.String(), err
	}
	if _, err := cli("admin", "policy", "propose", "-reason", "signed"); err == nil || !strings.Contains(err.Error(), "-signing or -csv") {
		t.Fatalf("policy propose with neither: %v", err)
	}
	// An unquoted reason is not cut to its first word.
	if _, err := cli("admin", "policy", "propose", "-signing", "-reason", "every", "decision", "signed"); err == nil || !strings.Contains(err.Error(), `takes no argument "decision"`) {
		t.Fatalf("an unquoted reason: %v", err)
	}
	out, err := cli("admin", "policy", "propose", "-signing", "-reason", "every decision signed personally")
	if err != nil {
		t.Fatal(err)
	}
	version := strings.Fields(out)[1]
	if _, err := cli("admin", "policy", "approve", version); err == nil {
		t.Fatal("the proposer approved their own policy")
	}
	// Nor is the proposer given a statement to sign for it.
	var ce *client.Error
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/policy/"+version+"/statement", nil, nil); !errors.As(err, &ce) || ce.Status != 403 {
		t.Fatalf("the statement of approving one's own policy: %v", err)
	}
	if out, err := cli("admin2", "policy", "approve", strings.TrimPrefix(version, "v")); err != nil || !strings.Contains(out, version+" is in force") {
		t.Fatalf("policy approve %s: %q %v", version, out, err)
	}
	waitPolicy(t, u["officer"], version)
	var p struct{ Rules []authz.Rule }
	if err := u["officer"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &p); err != nil {
		t.Fatal(err)
	}
	for _, op := range authz.SignableOps {
		if !authz.MustSign(p.Rules, op, []authz.Role{authz.Commissioner, authz.Legal, authz.Commander, authz.Executor, authz.Admin}) {
			t.Errorf("the signing policy does not require %s to be signed", op)
		}
	}
	// An approval without a signature is refused now, and says how to sign.
	var change struct{ ID string }
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "revoke_role", "user": e.IDs["member4"], "role": "commissioner",
		"reason": "term ended"}, &change); err != nil {
		t.Fatal(err)
	}
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes/"+change.ID+"/statement", nil, nil); !errors.As(err, &ce) || ce.Status != 403 {
		t.Fatalf("the statement of approving one's own change: %v", err)
	}
	_, err = cli("admin2", "admin", "approve", change.ID)
	if !errors.As(err, &ce) || ce.Status != 403 || ce.Rule != "signature" || !strings.Contains(ce.Message, "-sign") {
		t.Fatalf("an unsigned approval under the signing policy: %v", err)
	}
}

// TestCLISignsOnlyWhatItShows: between the CLI and the server, something rewrites the statement
// an approval makes (a compromised server, or a proxy on plain HTTP) to the approval of
// another change. The CLI words the statement itself from the proposal it lists, so it signs
// nothing and says so; straight to the server, the same approval is signed and applied.
func TestCLISignsOnlyWhatItShows(t *testing.T) {
	if _, err := os.Stat("/usr/bin/ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen")
	}
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	dir := t.TempDir()
	t.Setenv("SSH_AUTH_SOCK", "")
	cli := func(server, who string, args ...string) (string, error) {
		t.Helper()
		t.Setenv("TAKEDOWN_SERVER", server)
		t.Setenv("TAKEDOWN_TOKEN", u[who].Token)
		var out bytes.Buffer
		err := run(ctx, args, &out)
		return out.String(), err
	}
	key := filepath.Join(dir, "admin2")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	out, err := cli(e.D.URL, "admin2", "key", "add", "-ssh", key+".pub")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli(e.D.URL, "admin", "key", "approve", strings.Fields(out)[0]); err != nil {
		t.Fatal(err)
	}
	if out, err := cli(e.D.URL, "admin2", "key", "list"); err != nil || strings.Contains(out, "%!") || !strings.Contains(out, "active") {
		t.Fatalf("key list of a key without a label: %q %v", out, err)
	}
	var change struct{ ID string }
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes", map[string]any{"kind": "revoke_role", "user": e.IDs["member4"], "role": "commissioner",
		"reason": "term ended"}, &change); err != nil {
		t.Fatal(err)
	}
	var shift atomic.Bool
	target, _ := url.Parse(e.D.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if !strings.HasSuffix(r.Request.URL.Path, "/statement") {
			return nil
		}
		var view map[string]any
		if err := json.NewDecoder(r.Body).Decode(&view); err != nil {
			return err
		}
		st, _ := view["statement"].(string)
		if shift.Load() {
			// Dated ahead, to be held and sent later in the administrator's name.
			at, _ := view["time"].(string)
			later, _ := time.Parse(time.RFC3339, at)
			view["time"] = later.Add(8 * time.Minute).Format(time.RFC3339)
			view["statement"] = strings.Replace(st, at, view["time"].(string), 1)
		} else {
			view["statement"] = strings.Replace(st, "revoke_role role=commissioner", "grant_role role=admin", 1)
		}
		b, _ := json.Marshal(view)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		r.Header.Del("Content-Length")
		return nil
	}
	mitm := httptest.NewServer(proxy)
	defer mitm.Close()
	if _, err := cli(mitm.URL, "admin2", "admin", "approve", "-sign", key+".pub", change.ID); err == nil || !strings.Contains(err.Error(), "nothing was signed") {
		t.Fatalf("the CLI signed a statement rewritten on the way: %v", err)
	}
	shift.Store(true)
	if _, err := cli(mitm.URL, "admin2", "admin", "approve", "-sign", key+".pub", change.ID); err == nil || !strings.Contains(err.Error(), "from this machine's clock") {
		t.Fatalf("the CLI signed a statement dated 8 minutes ahead: %v", err)
	}
	var pending struct{ Changes []struct{ ID string } }
	if err := u["admin"].Do(ctx, "GET", "/api/v1/admin/role-changes", nil, &pending); err != nil || len(pending.Changes) != 1 {
		t.Fatalf("the change after the refused signing: %v %v", pending, err)
	}
	if out, err := cli(e.D.URL, "admin2", "admin", "approve", "-sign", key+".pub", change.ID); err != nil || !strings.Contains(out, "approved") {
		t.Fatalf("the same approval straight to the server: %q %v", out, err)
	}
	if rep := e.Exported(t); !rep.OK() || rep.Signed != 1 {
		t.Fatalf("the exported log: %d signed, failures %v", rep.Signed, rep.Failures)
	}
}
