package daemon_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"pgregory.net/rapid"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/testenv"
)

// The model's signing rule (README, "Signed decisions"): under the policy the run puts in
// force, every vote and every legal review is signed by its taker with their own registered
// key; a decision unsigned, or signed with another person's key, is refused 403.
var modelMustSign = map[string]bool{"vote": true, "legal_review": true}

// sshKey is a fresh Ed25519 SSH key as a person holds it: its authorized_keys line, its ID.
type sshKey struct {
	signer ssh.Signer
	line   string
	id     string
}

func newSSHKey(t testing.TB) sshKey {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	line, err := audit.ParseSSHKey(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{signer: signer, line: line, id: audit.KeyID(audit.KeySSH, line)}
}

// sign returns an armored SSHSIG over message, as ssh-keygen -Y sign makes one.
func (k sshKey) sign(message []byte) string {
	sig, err := k.signer.Sign(rand.Reader, audit.SSHSignedData(message))
	if err != nil {
		panic(err)
	}
	return audit.ArmorSSHSig(k.signer.PublicKey(), sig)
}

// signature is st signed with k, as a decision or proposal carries it.
func (k sshKey) signature(st audit.Statement) map[string]string {
	return map[string]string{"kind": audit.KeySSH, "key": k.id, "time": st.Time.Format(time.RFC3339), "sshsig": k.sign(st.Bytes())}
}

// registerModelKeys gives the deciders a key each (approved by an administrator) and puts in
// force the policy requiring the votes and legal reviews to be signed.
func registerModelKeys(t *testing.T, e *testenv.Env) map[string]sshKey {
	ctx := context.Background()
	keys := map[string]sshKey{}
	for who, role := range modelRoles {
		if !has(modelMay["vote"], role) && !has(modelMay["legal_review"], role) {
			continue
		}
		k := newSSHKey(t)
		at := time.Now().UTC().Truncate(time.Second)
		body := map[string]any{"kind": audit.KeySSH, "public_key": k.line,
			"proof": k.signature(audit.Statement{Person: e.IDs[who], Op: audit.OpRegisterKey, Digest: k.id, Time: at})}
		if err := e.Users[who].Do(ctx, "POST", "/api/v1/keys", body, nil); err != nil {
			t.Fatalf("%s proposes a key: %v", who, err)
		}
		if err := e.Users["admin"].Do(ctx, "POST", "/api/v1/keys/"+k.id+"/approve", nil, nil); err != nil {
			t.Fatalf("approve %s's key: %v", who, err)
		}
		keys[who] = k
	}
	rules := authz.DefaultPolicy()
	for op := range modelMustSign {
		rules = append(rules, authz.Rule{Role: authz.AnyRole, Op: op, Effect: "sign"})
	}
	var v struct{ Version string }
	if err := e.Users["admin"].Do(ctx, "POST", "/api/v1/admin/policy", map[string]any{"rules": rules, "reason": "votes and legal reviews signed"}, &v); err != nil {
		t.Fatal(err)
	}
	if err := e.Users["admin2"].Do(ctx, "POST", "/api/v1/admin/policy/"+v.Version+"/approve", nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		var p struct{ Version string }
		if err := e.Users["officer"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &p); err == nil && p.Version == v.Version {
			return keys
		}
		if i > 400 {
			t.Fatal("the signing policy never came in force")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// sign draws how r is signed, when its taker holds a key and the operation is a signed one:
// mostly as the rules want, sometimes not at all or with another person's key. It reads the
// version the person sees (the digest is r's), and adds the signature to the body.
func (mr *modelRun) sign(t *rapid.T, m *mmeasure, r *req) {
	k, ok := mr.keys[r.who]
	if !ok || !modelMustSign[r.op] || r.hostile {
		r.signed = !modelMustSign[r.op]
		return
	}
	mode := rapid.SampledFrom([]string{"own", "own", "own", "own", "none", "another's"}).Draw(t, "signature")
	if mode == "none" {
		return
	}
	if mode == "another's" {
		var others []string
		for _, who := range modelUsers {
			if _, ok := mr.keys[who]; ok && who != r.who {
				others = append(others, who)
			}
		}
		k = mr.keys[rapid.SampledFrom(others).Draw(t, "key of")]
	}
	digest, _ := r.body["digest"].(string)
	if digest == "" {
		digest = r.seen
	}
	var version int
	if err := mr.e.Owner.QueryRow(context.Background(), `SELECT version FROM measures WHERE id = $1`, m.id).Scan(&version); err != nil {
		t.Fatal(err)
	}
	var in struct {
		Decision   string   `json:"decision"`
		Reason     string   `json:"reason"`
		Conditions []string `json:"conditions"`
		Checklist  []string `json:"checklist"`
	}
	raw, _ := json.Marshal(r.body)
	_ = json.Unmarshal(raw, &in) // a body the door refuses anyway is signed as far as it reads
	// A person signs each decision anew: a statement signed before (the same decision in the
	// same second) is made a second later, as its signature would otherwise be one the server
	// has seen (an Ed25519 signature is the same for the same statement).
	at := time.Now().UTC().Truncate(time.Second)
	d := audit.Decided{Decision: in.Decision, Reason: in.Reason, Conditions: in.Conditions, Checklist: in.Checklist}
	st := audit.DecisionStatement(mr.e.IDs[r.who], m.id, version, digest, r.op, d, at)
	for mr.statements[string(st.Bytes())+k.id] {
		at = at.Add(time.Second)
		st = audit.DecisionStatement(mr.e.IDs[r.who], m.id, version, digest, r.op, d, at)
	}
	mr.statements[string(st.Bytes())+k.id] = true
	r.body["signature"] = k.signature(st)
	r.signed = mode == "own"
}
