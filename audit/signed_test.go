package audit_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

// passkey is a test authenticator: a P-256 key bound to one relying party and origin.
type passkey struct {
	key     audit.Key
	priv    *ecdsa.PrivateKey
	counter uint32
}

func newPasskey(t *testing.T, user string) *passkey {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pub, err := audit.ParsePasskey(base64.RawURLEncoding.EncodeToString(der))
	if err != nil {
		t.Fatal(err)
	}
	return &passkey{priv: priv, key: audit.Key{ID: audit.KeyID(audit.KeyPasskey, pub), User: user, Kind: audit.KeyPasskey, PublicKey: pub,
		CredentialID: "Y3JlZA", RPID: "takedown.example", Origin: "https://takedown.example"}}
}

// sign asserts st as a browser would: client data naming the challenge and origin, and
// authenticator data with the relying party's hash, the flags and the counter.
func (p *passkey) sign(st audit.Statement, flags byte) *audit.Signature {
	p.counter++
	cd, _ := json.Marshal(map[string]string{"type": "webauthn.get", "challenge": st.Challenge(), "origin": p.key.Origin})
	rp := sha256.Sum256([]byte(p.key.RPID))
	ad := binary.BigEndian.AppendUint32(append(rp[:], flags), p.counter)
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, _ := ecdsa.SignASN1(rand.Reader, p.priv, digest[:])
	b := base64.RawURLEncoding.EncodeToString
	return &audit.Signature{Kind: audit.KeyPasskey, Key: p.key.ID, Time: st.Time.UTC().Format(time.RFC3339),
		AuthenticatorData: b(ad), ClientDataJSON: b(cd), Assertion: b(sig)}
}

// sshKey is a test SSH key; it signs as ssh-agent would.
type sshKey struct {
	key    audit.Key
	signer ssh.Signer
}

func newSSHKey(t *testing.T, user string) *sshKey {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := ssh.NewSignerFromKey(priv)
	pub, err := audit.ParseSSHKey(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
	if err != nil {
		t.Fatal(err)
	}
	return &sshKey{signer: s, key: audit.Key{ID: audit.KeyID(audit.KeySSH, pub), User: user, Kind: audit.KeySSH, PublicKey: pub}}
}

func (k *sshKey) sign(st audit.Statement) *audit.Signature {
	s, _ := k.signer.Sign(rand.Reader, audit.SSHSignedData(st.Bytes()))
	return &audit.Signature{Kind: audit.KeySSH, Key: k.key.ID, Time: st.Time.UTC().Format(time.RFC3339), SSHSig: audit.ArmorSSHSig(k.signer.PublicKey(), s)}
}

func sigDetails(s *audit.Signature) map[string]any {
	var m map[string]any
	b, _ := json.Marshal(s)
	_ = json.Unmarshal(b, &m)
	return m
}

func keyDetails(k audit.Key) map[string]any {
	var m map[string]any
	b, _ := json.Marshal(k)
	_ = json.Unmarshal(b, &m)
	return m
}

// registration is a key's proposal by its holder, with the proof, and its confirmation by
// the administrator adm.
func registration(k audit.Key, proof func(audit.Statement) *audit.Signature, adm audit.Actor, at time.Time) []audit.Record {
	p := keyDetails(k)
	p["signature"] = sigDetails(proof(audit.Statement{Person: k.User, Op: audit.OpRegisterKey, Digest: k.ID, Time: at.Truncate(time.Second)}))
	return []audit.Record{
		{Actor: actor(k.User), Action: audit.KeyProposed, TS: at, Details: p},
		{Actor: adm, Action: audit.KeyRegistered, TS: at.Add(time.Minute), Details: keyDetails(k)},
	}
}

// TestSignedDecisions replays a history whose policy requires the legal review and the
// votes to be personally signed, then the forgeries an insider holding the database, the
// append key and the log key (but no person's key) could write.
func TestSignedDecisions(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var v2 []string
	for _, r := range authz.DefaultPolicy() {
		v2 = append(v2, r.Effect+" "+string(r.Role)+" "+r.Op)
	}
	v2 = append(v2, "sign * vote", "sign legal legal_review")
	adm1, adm2 := actor("adm1", "admin"), actor("adm2", "admin")
	leg, chair, m1 := newSSHKey(t, "leg"), newPasskey(t, "chair"), newPasskey(t, "m1")
	m2 := newSSHKey(t, "m2")
	signer := map[string]func(audit.Statement) *audit.Signature{
		"leg": leg.sign, "m2": m2.sign,
		"chair": func(st audit.Statement) *audit.Signature { return chair.sign(st, 0x05) },
		"m1":    func(st audit.Statement) *audit.Signature { return m1.sign(st, 0x05) },
	}
	build := func(edit func(keys, m []audit.Record) []audit.Record) []audit.Record {
		chair.counter, m1.counter = 0, 0
		pre := []audit.Record{
			{Actor: adm1, Action: "policy.proposed", TS: t0.Add(-2 * time.Hour), Details: map[string]any{"version": "v2", "rule_set": v2}},
			{Actor: adm2, Action: "policy.approved", TS: t0.Add(-2 * time.Hour), Details: map[string]any{"version": "v2"}},
		}
		var keys []audit.Record
		at := t0.Add(-time.Hour)
		keys = append(keys, registration(leg.key, signer["leg"], adm1, at)...)
		keys = append(keys, registration(chair.key, signer["chair"], adm2, at)...)
		keys = append(keys, registration(m1.key, signer["m1"], adm1, at)...)
		keys = append(keys, registration(m2.key, signer["m2"], adm2, at)...)
		m := story(t0)
		for i := range m {
			r := &m[i]
			r.Measure, r.PolicyVersion = "m-forged", "v2"
			if sign := signer[r.Actor.ID]; sign != nil && (r.Action == "vote" || r.Action == "legal_review") {
				if r.Action == "legal_review" {
					r.Details["decision"] = "approve"
				}
				r.Reason = "as the evidence shows"
				d := audit.Decided{Decision: "approve", Reason: r.Reason}
				st := audit.DecisionStatement(r.Actor.ID, r.Measure, r.Version, "sha256:v1", r.Action, d, r.TS.Add(-20*time.Second).Truncate(time.Second))
				r.Details["signature"] = sigDetails(sign(st))
			}
		}
		if edit != nil {
			return append(pre, edit(keys, m)...)
		}
		return append(append(pre, keys...), m...)
	}
	rep := forged(t, build(nil))
	if !rep.OK() || rep.Signed != 4 {
		t.Fatalf("the honest signed history: %d signed, failures %v", rep.Signed, rep.Failures)
	}
	const vote = 6 // m1's vote in story, after the keys and the policy
	for _, tt := range []struct {
		name, rule, says string
		edit             func(keys, m []audit.Record) []audit.Record
	}{
		{"a rule-abiding vote without the member's signature", "signature", "carries no personal signature", func(keys, m []audit.Record) []audit.Record {
			delete(m[vote].Details, "signature")
			return append(keys, m...)
		}},
		{"a vote signed with the insider's own key", "signature", "which the log never registered", func(keys, m []audit.Record) []audit.Record {
			ins := newPasskey(t, "m1")
			st := audit.DecisionStatement("m1", "m-forged", 1, "sha256:v1", "vote", audit.Decided{Decision: "approve", Reason: m[vote].Reason}, m[vote].TS.Truncate(time.Second))
			m[vote].Details["signature"] = sigDetails(ins.sign(st, 0x05))
			return append(keys, m...)
		}},
		{"a signature over another digest", "signature", "not this statement's", func(keys, m []audit.Record) []audit.Record {
			st := audit.DecisionStatement("m1", "m-forged", 1, "sha256:v0", "vote", audit.Decided{Decision: "approve", Reason: m[vote].Reason}, m[vote].TS.Truncate(time.Second))
			m[vote].Details["signature"] = sigDetails(m1.sign(st, 0x05))
			return append(keys, m...)
		}},
		{"an approval signed, the vote recorded as a rejection", "signature", "not this statement's", func(keys, m []audit.Record) []audit.Record {
			m[vote].Details["vote"] = "reject"
			return append(keys, m...)
		}},
		{"an SSH signature over another reason", "signature", "does not verify", func(keys, m []audit.Record) []audit.Record {
			m[2].Reason = "another reason"
			return append(keys, m...)
		}},
		{"a replayed assertion", "signature", "replays the signature", func(keys, m []audit.Record) []audit.Record {
			again := m[vote]
			again.Details = map[string]any{"vote": "approve", "digest": "sha256:v1", "signature": m[vote].Details["signature"]}
			return append(keys, append(m[:vote+1:vote+1], append([]audit.Record{again}, m[vote+1:]...)...)...)
		}},
		{"an assertion without user verification", "signature", "lacks user presence and verification", func(keys, m []audit.Record) []audit.Record {
			st := audit.DecisionStatement("m1", "m-forged", 1, "sha256:v1", "vote", audit.Decided{Decision: "approve", Reason: m[vote].Reason}, m[vote].TS.Truncate(time.Second))
			m[vote].Details["signature"] = sigDetails(m1.sign(st, 0x01))
			return append(keys, m...)
		}},
		{"a signature by a revoked key", "signature", "revoked earlier", func(keys, m []audit.Record) []audit.Record {
			rev := audit.Record{Actor: actor("m1", "commissioner"), Action: audit.KeyRevoked, TS: t0, Details: keyDetails(m1.key)}
			return append(append(keys, rev), m...)
		}},
		{"a key registered by its holder", "two-person", "by its own holder", func(keys, m []audit.Record) []audit.Record {
			keys[5].Actor = actor("m1", "admin")
			return append(keys, m...)
		}},
		{"a key registered by someone who is not an administrator", "two-person", "not an administrator", func(keys, m []audit.Record) []audit.Record {
			keys[5].Actor = actor("chair", "commission_chair")
			return append(keys, m...)
		}},
		{"a key registered without its holder's proposal", "two-person", "without its holder's proposal", func(keys, m []audit.Record) []audit.Record {
			return append(append(keys[:4:4], keys[5:]...), m...)
		}},
		{"another's key revoked by one administrator", "two-person", "revoked by adm1 alone", func(keys, m []audit.Record) []audit.Record {
			rev := audit.Record{Actor: adm1, Action: audit.KeyRevoked, TS: t0, Details: keyDetails(m1.key)}
			return append(append(keys, rev), m...)
		}},
		{"a signature made a week before its record", "signature", "too far from its record's time", func(keys, m []audit.Record) []audit.Record {
			st := audit.DecisionStatement("m1", "m-forged", 1, "sha256:v1", "vote", audit.Decided{Decision: "approve", Reason: m[vote].Reason}, m[vote].TS.Add(-7*24*time.Hour).Truncate(time.Second))
			m[vote].Details["signature"] = sigDetails(m1.sign(st, 0x05))
			return append(keys, m...)
		}},
		{"a passkey counter that goes back (a cloned key)", "signature", "counter", func(keys, m []audit.Record) []audit.Record {
			m1.counter = 0
			st := audit.DecisionStatement("m1", "m-forged", 1, "sha256:v1", "vote", audit.Decided{Decision: "approve", Reason: m[vote].Reason}, m[vote].TS.Truncate(time.Second))
			m[vote].Details["signature"] = sigDetails(m1.sign(st, 0x05))
			return append(keys, m...)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := forged(t, build(tt.edit))
			if !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool { return f.Rule == tt.rule && strings.Contains(f.Msg, tt.says) }) {
				t.Fatalf("want %s saying %q, got %v", tt.rule, tt.says, rep.Failures)
			}
			t.Logf("caught: %v", rep.Failures)
		})
	}
}

// TestSSHKeygenSignatures checks the format against OpenSSH's own: a statement signed by
// ssh-keygen -Y sign verifies, and ours verifies with ssh-keygen -Y verify.
func TestSSHKeygenSignatures(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "m1@example", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	line, _ := os.ReadFile(keyFile + ".pub")
	pub, err := audit.ParseSSHKey(string(line))
	if err != nil {
		t.Fatal(err)
	}
	k := &audit.Key{ID: audit.KeyID(audit.KeySSH, pub), User: "m1", Kind: audit.KeySSH, PublicKey: pub}
	st := audit.DecisionStatement("m1", "m-1", 2, "sha256:ab", "vote", audit.Decided{Decision: "approve", Reason: "ok"}, time.Now().UTC().Truncate(time.Second))
	msg := filepath.Join(dir, "statement")
	_ = os.WriteFile(msg, st.Bytes(), 0o600)
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-q", "-f", keyFile, "-n", audit.SSHNamespace, msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v %s", err, out)
	}
	armored, _ := os.ReadFile(msg + ".sig")
	sig := &audit.Signature{Kind: audit.KeySSH, Key: k.ID, Time: st.Time.Format(time.RFC3339), SSHSig: string(armored)}
	if _, err := audit.Verify(k, st, sig); err != nil {
		t.Fatalf("ssh-keygen's signature: %v", err)
	}
	other := st
	other.Decision = "reject"
	if _, err := audit.Verify(k, other, sig); err == nil {
		t.Fatal("a signature verified over another statement")
	}
	// Ours, checked by OpenSSH.
	priv, _ := os.ReadFile(keyFile)
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := signer.Sign(rand.Reader, audit.SSHSignedData(st.Bytes()))
	_ = os.WriteFile(msg+".sig", []byte(audit.ArmorSSHSig(signer.PublicKey(), s)), 0o600)
	allowed := filepath.Join(dir, "allowed")
	_ = os.WriteFile(allowed, []byte("m1 "+pub+"\n"), 0o600)
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "m1", "-n", audit.SSHNamespace, "-s", msg+".sig")
	in, _ := os.Open(msg)
	defer in.Close()
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y verify refuses our signature: %v %s", err, out)
	}
}

// TestVerifyRefusesMalformedSignatures: each way a signature can be wrong, from a careless
// client or a forger, is refused with what is wrong.
func TestVerifyRefusesMalformedSignatures(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	st := audit.DecisionStatement("m1", "m-1", 2, "sha256:ab", "vote", audit.Decided{Decision: "approve", Reason: "ok"}, at)
	pk := newPasskey(t, "m1")
	sk := newSSHKey(t, "m1")
	good := pk.sign(st, 0x05)
	if n, err := audit.Verify(&pk.key, st, good); err != nil || n != 1 {
		t.Fatalf("a good assertion: counter %d, %v", n, err)
	}
	if _, err := audit.Verify(&sk.key, st, sk.sign(st)); err != nil {
		t.Fatalf("a good SSH signature: %v", err)
	}
	b := base64.RawURLEncoding.EncodeToString
	clientData := func(typ, challenge, origin string) string {
		raw, _ := json.Marshal(map[string]string{"type": typ, "challenge": challenge, "origin": origin})
		return b(raw)
	}
	// resign re-signs an edited assertion with the passkey, so only the edit is wrong.
	resign := func(s *audit.Signature) *audit.Signature {
		ad, _ := base64.RawURLEncoding.DecodeString(s.AuthenticatorData)
		cd, _ := base64.RawURLEncoding.DecodeString(s.ClientDataJSON)
		cdh := sha256.Sum256(cd)
		digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
		sig, _ := ecdsa.SignASN1(rand.Reader, pk.priv, digest[:])
		s.Assertion = b(sig)
		return s
	}
	edit := func(f func(s *audit.Signature)) *audit.Signature {
		s := *good
		f(&s)
		return &s
	}
	otherRP := sha256.Sum256([]byte("evil.example"))
	ad, _ := base64.RawURLEncoding.DecodeString(good.AuthenticatorData)
	for _, tt := range []struct {
		name, says string
		key        *audit.Key
		sig        *audit.Signature
	}{
		{"another key's ID", "not webauthn key", &pk.key, edit(func(s *audit.Signature) { s.Key = "key-00" })},
		{"another kind", "signed with ssh", &pk.key, edit(func(s *audit.Signature) { s.Kind = audit.KeySSH })},
		{"client data not base64", "not base64url", &pk.key, edit(func(s *audit.Signature) { s.ClientDataJSON = "%%%" })},
		{"client data not JSON", "not JSON", &pk.key, resign(edit(func(s *audit.Signature) { s.ClientDataJSON = b([]byte("{")) }))},
		{"a registration's client data", "not webauthn.get", &pk.key, resign(edit(func(s *audit.Signature) {
			s.ClientDataJSON = clientData("webauthn.create", st.Challenge(), pk.key.Origin)
		}))},
		{"another challenge", "not this statement's", &pk.key, resign(edit(func(s *audit.Signature) {
			s.ClientDataJSON = clientData("webauthn.get", b(make([]byte, 32)), pk.key.Origin)
		}))},
		{"another origin", "not the key's origin", &pk.key, resign(edit(func(s *audit.Signature) {
			s.ClientDataJSON = clientData("webauthn.get", st.Challenge(), "https://evil.example")
		}))},
		{"short authenticator data", "shorter than 37", &pk.key, resign(edit(func(s *audit.Signature) { s.AuthenticatorData = b(ad[:36]) }))},
		{"another relying party", "another relying party", &pk.key, resign(edit(func(s *audit.Signature) {
			s.AuthenticatorData = b(append(otherRP[:], ad[32:]...))
		}))},
		{"user present, not verified", "lacks user presence", &pk.key, resign(edit(func(s *audit.Signature) {
			x := slices.Clone(ad)
			x[32] = 0x01
			s.AuthenticatorData = b(x)
		}))},
		{"user verified, not present", "lacks user presence", &pk.key, resign(edit(func(s *audit.Signature) {
			x := slices.Clone(ad)
			x[32] = 0x04
			s.AuthenticatorData = b(x)
		}))},
		{"a flipped signature", "does not verify", &pk.key, edit(func(s *audit.Signature) {
			raw, _ := base64.RawURLEncoding.DecodeString(s.Assertion)
			raw[len(raw)-1] ^= 1
			s.Assertion = b(raw)
		})},
		{"an SSH signature not armored", "not armored", &sk.key, edit(func(s *audit.Signature) {
			*s = *sk.sign(st)
			s.SSHSig = strings.ReplaceAll(s.SSHSig, "SSH SIGNATURE", "PGP SIGNATURE")
		})},
		{"an SSH signature by another key", "another key", &sk.key, edit(func(s *audit.Signature) {
			other := newSSHKey(t, "m1")
			*s = *sk.sign(st)
			s.SSHSig = other.sign(st).SSHSig
		})},
		{"an SSH signature over another statement", "does not verify", &sk.key, edit(func(s *audit.Signature) {
			o := st
			o.Decision = "reject"
			*s = *sk.sign(o)
		})},
		{"an SSH signature in another namespace", "namespace", &sk.key, edit(func(s *audit.Signature) {
			*s = *sk.sign(st)
			blob := ssh.Marshal(struct {
				Magic     [6]byte
				Version   uint32
				PublicKey []byte
				Namespace string
				Reserved  string
				HashAlg   string
				Signature []byte
			}{[6]byte{'S', 'S', 'H', 'S', 'I', 'G'}, 1, sk.signer.PublicKey().Marshal(), "git", "", "sha512", nil})
			s.SSHSig = string(pem.EncodeToMemory(&pem.Block{Type: "SSH SIGNATURE", Bytes: blob}))
		})},
		{"an SSH signature of version 2", "not an SSHSIG version 1", &sk.key, edit(func(s *audit.Signature) {
			*s = *sk.sign(st)
			blk, _ := pem.Decode([]byte(s.SSHSig))
			blk.Bytes[9] = 2
			s.SSHSig = string(pem.EncodeToMemory(blk))
		})},
		{"a huge SSH signature", "too long", &sk.key, edit(func(s *audit.Signature) {
			*s = *sk.sign(st)
			s.SSHSig = strings.Repeat("A", 70<<10)
		})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.Verify(tt.key, st, tt.sig)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want an error saying %q", err, tt.says)
			}
		})
	}
	// Times: RFC 3339 in UTC to the second only.
	for _, bad := range []string{"", "2026-12-07 09:00:00", "2026-12-07T09:00:00.5Z", "2026-12-07T18:00:00+09:00", "yesterday"} {
		if _, err := (&audit.Signature{Time: bad}).StatementTime(); err == nil {
			t.Errorf("time %q accepted", bad)
		}
	}
	// Keys: what may be registered.
	for _, tt := range []struct{ line, says string }{
		{"", "not an SSH public key"},
		{"ssh-ed25519 AAAA", "not an SSH public key"},
		{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk.signer.PublicKey()))) + "\n" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk.signer.PublicKey()))), "more than one key"},
		{strings.Repeat("x", 17<<10), "longer than any"},
	} {
		if _, err := audit.ParseSSHKey(tt.line); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("SSH key %.40q: %v, want %q", tt.line, err, tt.says)
		}
	}
	if got, err := audit.ParseSSHKey(string(ssh.MarshalAuthorizedKey(sk.signer.PublicKey())) + " comment"); err == nil && strings.Contains(got, "comment") {
		t.Errorf("a key's comment is kept: %q", got)
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakSSH, _ := ssh.NewPublicKey(&weak.PublicKey)
	if _, err := audit.ParseSSHKey(string(ssh.MarshalAuthorizedKey(weakSSH))); err == nil || !strings.Contains(err.Error(), "shorter than 2048") {
		t.Errorf("a 1024-bit RSA SSH key: %v", err)
	}
	weakDER, _ := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	for _, tt := range []struct{ spki, says string }{
		{"%%%", "not a public key in base64"},
		{b([]byte("not DER")), "not a public key"},
		{b(weakDER), "shorter than 2048"},
		{b(make([]byte, 5000)), "not a public key in base64"},
	} {
		if _, err := audit.ParsePasskey(tt.spki); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("passkey %.20q: %v, want %q", tt.spki, err, tt.says)
		}
	}
	// Ed25519 and RSA passkeys verify too.
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKIXPublicKey(edPriv.Public())
	edPub, err := audit.ParsePasskey(b(edDER))
	if err != nil {
		t.Fatal(err)
	}
	edKey := &audit.Key{ID: audit.KeyID(audit.KeyPasskey, edPub), Kind: audit.KeyPasskey, PublicKey: edPub, RPID: pk.key.RPID, Origin: pk.key.Origin}
	edSig := edit(func(s *audit.Signature) {
		s.Key = edKey.ID
		adRaw, _ := base64.RawURLEncoding.DecodeString(s.AuthenticatorData)
		cd, _ := base64.RawURLEncoding.DecodeString(s.ClientDataJSON)
		cdh := sha256.Sum256(cd)
		s.Assertion = b(ed25519.Sign(edPriv, append(append([]byte{}, adRaw...), cdh[:]...)))
	})
	if _, err := audit.Verify(edKey, st, edSig); err != nil {
		t.Errorf("an Ed25519 passkey: %v", err)
	}
}

// TestStatementIsCanonical holds the statement's bytes to the format signers outside this
// code (an SSH key through ssh-keygen, a script) reproduce: RFC 8785 order, empty members left
// out, the time in UTC to the second.
func TestStatementIsCanonical(t *testing.T) {
	at := time.Date(2026, 12, 7, 18, 30, 5, 0, time.FixedZone("JST", 9*3600))
	for _, tt := range []struct {
		st   audit.Statement
		want string
	}{
		{audit.DecisionStatement("u-m1", "m-1", 2, "sha256:ab", "vote", audit.Decided{Decision: "approve", Conditions: []string{"by night"}, Reason: "ok"}, at),
			`{"conditions":["by night"],"decision":"approve","digest":"sha256:ab","format":"takedown-decision/1","measure":"m-1","op":"vote","person":"u-m1","reason":"ok","time":"2026-12-07T09:30:05Z","version":2}`},
		{audit.DecisionStatement("u-l", "m-1", 1, "sha256:ab", "legal_review", audit.Decided{Decision: "approve", Checklist: []string{"urgency"}}, at),
			`{"checklist":["urgency"],"decision":"approve","digest":"sha256:ab","format":"takedown-decision/1","measure":"m-1","op":"legal_review","person":"u-l","time":"2026-12-07T09:30:05Z","version":1}`},
		{audit.DecisionStatement("u-m3", "m-1", 1, "sha256:ab", "declare_conflict", audit.Decided{Conflicted: true, Conditions: []string{"ignored"}}, at),
			`{"decision":"conflicted","digest":"sha256:ab","format":"takedown-decision/1","measure":"m-1","op":"declare_conflict","person":"u-m3","time":"2026-12-07T09:30:05Z","version":1}`},
		{audit.DecisionStatement("u-c", "m-1", 1, "sha256:ab", "record_gate", audit.Decided{Gate: "foreign_ministry", Reference: "MOFA 117"}, at),
			`{"body":"MOFA 117","decision":"foreign_ministry","digest":"sha256:ab","format":"takedown-decision/1","measure":"m-1","op":"record_gate","person":"u-c","time":"2026-12-07T09:30:05Z","version":1}`},
		{audit.DecisionStatement("u-m1", "m-1", 1, "sha256:ab", "verify_report", audit.Decided{Decision: "x", Body: "y"}, at),
			`{"digest":"sha256:ab","format":"takedown-decision/1","measure":"m-1","op":"verify_report","person":"u-m1","time":"2026-12-07T09:30:05Z","version":1}`},
		{audit.Statement{Person: "u-m1", Op: audit.OpRegisterKey, Digest: "key-01", Time: at},
			`{"digest":"key-01","format":"takedown-decision/1","op":"register_key","person":"u-m1","time":"2026-12-07T09:30:05Z"}`},
	} {
		if got := string(tt.st.Bytes()); got != tt.want {
			t.Errorf("statement\n got  %s\n want %s", got, tt.want)
		}
	}
}

// TestSignedApprovals replays a history whose policy requires administrators to sign their
// approvals of keys, account changes and policy versions, then the forgeries of an insider
// who holds the database, the append key and the log key but no administrator's key.
func TestSignedApprovals(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	rules := func(extra ...string) []string {
		var out []string
		for _, r := range authz.DefaultPolicy() {
			out = append(out, r.Effect+" "+string(r.Role)+" "+r.Op)
		}
		return append(out, extra...)
	}
	v2 := rules("sign admin approve_key", "sign admin approve_role_change", "sign admin approve_policy")
	v3 := rules("sign admin approve_key", "sign admin approve_policy")
	adm1, adm2 := actor("adm1", "admin"), actor("adm2", "admin")
	k1, k2, m1 := newSSHKey(t, "adm1"), newSSHKey(t, "adm2"), newSSHKey(t, "m1")
	grant := audit.Change{Kind: "grant_role", User: "u-x", Role: "commissioner"}
	build := func(edit func(h []audit.Record) []audit.Record) []audit.Record {
		var h []audit.Record
		h = append(h, registration(k1.key, k1.sign, adm2, t0.Add(-4*time.Hour))...)
		h = append(h, registration(k2.key, k2.sign, adm1, t0.Add(-4*time.Hour))...)
		h = append(h,
			audit.Record{Actor: adm1, Action: "policy.proposed", TS: t0.Add(-3 * time.Hour), Details: map[string]any{"version": "v2", "rule_set": v2}},
			audit.Record{Actor: adm2, Action: "policy.approved", TS: t0.Add(-3 * time.Hour), Details: map[string]any{"version": "v2"}})
		// Under v2 every approval is signed.
		at := t0.Add(-time.Hour)
		reg := registration(m1.key, m1.sign, adm1, at)
		reg[1].Details["signature"] = sigDetails(k1.sign(audit.ApprovalStatement("adm1", audit.OpApproveKey, m1.key.ID, "m1", reg[1].TS.Truncate(time.Second))))
		h = append(h, reg...)
		h = append(h, audit.Record{Actor: adm1, Action: "role_change.proposed", TS: t0, Details: map[string]any{"change": "rc-1", "kind": "grant_role",
			"user": "u-x", "role": "commissioner"}})
		h = append(h, audit.Record{Actor: adm2, Action: "role.granted", TS: t0, Details: map[string]any{"change": "rc-1", "user": "u-x", "role": "commissioner",
			"proposed_by": "adm1", "signature": sigDetails(k2.sign(audit.ApprovalStatement("adm2", audit.OpApproveRoleChange, "rc-1", grant.Body(), t0)))}})
		h = append(h,
			audit.Record{Actor: adm1, Action: "policy.proposed", TS: t0.Add(time.Minute), Details: map[string]any{"version": "v3", "rule_set": v3}},
			audit.Record{Actor: adm2, Action: "policy.approved", TS: t0.Add(2 * time.Minute), Details: map[string]any{"version": "v3",
				"signature": sigDetails(k2.sign(audit.ApprovalStatement("adm2", audit.OpApprovePolicy, audit.RuleSetDigest(v3), "v3", t0.Add(2*time.Minute))))}})
		for i := 6; i < len(h); i++ {
			h[i].PolicyVersion = "v2"
		}
		if edit != nil {
			h = edit(h)
		}
		return h
	}
	rep := forged(t, build(nil))
	if !rep.OK() || rep.Signed != 3 {
		t.Fatalf("the honest history: %d signed, failures %v", rep.Signed, rep.Failures)
	}
	// The administrators' own keys, approved before any approval was signed, are the roots
	// the auditor confirms out of band; m1's key, approved with a signature, is not.
	var roots []string
	for _, k := range rep.Roots {
		roots = append(roots, k.User)
	}
	if !slices.Equal(roots, []string{"adm1", "adm2"}) {
		t.Fatalf("roots %v, want adm1's and adm2's keys", rep.Roots)
	}
	const keyApproval, grantAt, policyApproval = 7, 9, 11
	for _, tt := range []struct {
		name, says string
		edit       func(h []audit.Record) []audit.Record
	}{
		{"a key registered without the administrator's signature", "carries no personal signature", func(h []audit.Record) []audit.Record {
			delete(h[keyApproval].Details, "signature")
			return h
		}},
		{"a key approval signed with the key it registers", "which the log never registered", func(h []audit.Record) []audit.Record {
			h[keyApproval].Details["signature"] = sigDetails(m1.sign(audit.ApprovalStatement("adm1", audit.OpApproveKey, m1.key.ID, "m1", h[keyApproval].TS.Truncate(time.Second))))
			return h
		}},
		{"a role grant signed, the record granting another role", "does not verify", func(h []audit.Record) []audit.Record {
			h[grantAt].Details["role"] = "commission_chair"
			return h
		}},
		{"a role grant signed, recorded for another user", "does not verify", func(h []audit.Record) []audit.Record {
			h[grantAt].Details["user"] = "u-insider"
			return h
		}},
		{"a role grant approved by its proposer", "", func(h []audit.Record) []audit.Record {
			h[grantAt-1].Actor = adm2
			return h
		}},
		{"a role grant applying another role than its proposal", "", func(h []audit.Record) []audit.Record {
			h[grantAt-1].Details["role"] = "commission_secretariat"
			return h
		}},
		{"a role grant with no proposal in the log", "", func(h []audit.Record) []audit.Record {
			return append(h[:grantAt-1:grantAt-1], h[grantAt:]...)
		}},
		{"a role grant with no signature at all", "carries no personal signature", func(h []audit.Record) []audit.Record {
			delete(h[grantAt].Details, "signature")
			return h
		}},
		{"the same signed grant written twice", "replays the signature", func(h []audit.Record) []audit.Record {
			again := h[grantAt]
			again.TS = again.TS.Add(time.Second)
			return append(h[:grantAt+1:grantAt+1], append([]audit.Record{again}, h[grantAt+1:]...)...)
		}},
		{"a policy approval signed over the rules of another version", "does not verify", func(h []audit.Record) []audit.Record {
			h[policyApproval].Details["signature"] = sigDetails(k2.sign(audit.ApprovalStatement("adm2", audit.OpApprovePolicy, audit.RuleSetDigest(v2), "v3", t0.Add(2*time.Minute))))
			return h
		}},
		{"a policy approval signed by the proposer's key", "signed with key", func(h []audit.Record) []audit.Record {
			h[policyApproval].Details["signature"] = sigDetails(k1.sign(audit.ApprovalStatement("adm2", audit.OpApprovePolicy, audit.RuleSetDigest(v3), "v3", t0.Add(2*time.Minute))))
			return h
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := forged(t, build(tt.edit))
			rule := "signature"
			if tt.says == "" {
				rule, tt.says = "two-person", "account change rc-1"
			}
			if !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool { return f.Rule == rule && strings.Contains(f.Msg, tt.says) }) {
				t.Fatalf("want a %s failure saying %q, got %v", rule, tt.says, rep.Failures)
			}
		})
	}
}

// TestSignedStepBatches: under a policy requiring executors to sign their batches of steps,
// the batch as signed verifies; a step changed after signing, a batch left unsigned, or a
// signature moved onto another batch does not.
func TestSignedStepBatches(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var v2 []string
	for _, r := range authz.DefaultPolicy() {
		v2 = append(v2, r.Effect+" "+string(r.Role)+" "+r.Op)
	}
	v2 = append(v2, "sign executor log_steps")
	ex := newSSHKey(t, "ex")
	build := func(edit func(m []audit.Record)) []audit.Record {
		h := []audit.Record{
			{Actor: actor("adm1", "admin"), Action: "policy.proposed", TS: t0.Add(-2 * time.Hour), Details: map[string]any{"version": "v2", "rule_set": v2}},
			{Actor: actor("adm2", "admin"), Action: "policy.approved", TS: t0.Add(-2 * time.Hour), Details: map[string]any{"version": "v2"}},
		}
		h = append(h, registration(ex.key, ex.sign, actor("adm1", "admin"), t0.Add(-time.Hour))...)
		m := story(t0)
		for i := range m {
			r := &m[i]
			r.Measure, r.PolicyVersion = "m-forged", "v2"
			if r.Action == "log_steps" {
				digest, err := audit.ContentDigest(r.Details["step_list"])
				if err != nil {
					t.Fatal(err)
				}
				st := audit.DecisionStatement("ex", r.Measure, r.Version, "", "log_steps", audit.Decided{Body: digest}, r.TS.Truncate(time.Second))
				r.Details["signature"] = sigDetails(ex.sign(st))
			}
		}
		if edit != nil {
			edit(m)
		}
		return append(h, m...)
	}
	rep := forged(t, build(nil))
	if !rep.OK() || rep.Signed != 1 {
		t.Fatalf("the honest history: %d signed, failures %v", rep.Signed, rep.Failures)
	}
	batch := slices.IndexFunc(story(t0), func(r audit.Record) bool { return r.Action == "log_steps" })
	for _, tt := range []struct {
		name, says string
		edit       func(m []audit.Record)
	}{
		{"a step's witness changed after signing", "does not verify", func(m []audit.Record) {
			m[batch].Details["step_list"].([]map[string]any)[0]["witness"] = "ex3"
		}},
		{"a step's time changed after signing", "does not verify", func(m []audit.Record) {
			m[batch].Details["step_list"].([]map[string]any)[0]["at"] = m[batch].TS.Add(time.Second).Format(time.RFC3339Nano)
		}},
		{"the batch left unsigned", "carries no personal signature", func(m []audit.Record) {
			delete(m[batch].Details, "signature")
		}},
		{"the signature over another measure's batch", "does not verify", func(m []audit.Record) {
			st := audit.DecisionStatement("ex", "m-other", 1, "", "log_steps", audit.Decided{Body: "sha256:00"}, m[batch].TS.Truncate(time.Second))
			m[batch].Details["signature"] = sigDetails(ex.sign(st))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := forged(t, build(tt.edit))
			if !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool { return f.Rule == "signature" && strings.Contains(f.Msg, tt.says) }) {
				t.Fatalf("want a signature failure saying %q, got %v", tt.says, rep.Failures)
			}
		})
	}
}
