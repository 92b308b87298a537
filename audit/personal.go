package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// A decision is personally signed when the person who took it signs a statement of it with a
// key of their own: a passkey (WebAuthn) in the browser, an SSH key in the CLI. The log
// records the signature beside the decision, and the key's registration earlier; an auditor
// checks both offline, without trusting whoever runs the server.

// StatementFormat names the statement's format; it is the statement's first member.
const StatementFormat = "takedown-decision/1"

// SSHNamespace is the SSHSIG namespace a decision is signed in (ssh-keygen -Y sign -n).
const SSHNamespace = "takedown-decision"

// Key kinds.
const (
	KeyPasskey = "webauthn"
	KeySSH     = "ssh"
)

// OpRegisterKey is the operation a key's proof of possession states, with the key's ID as
// the digest.
const OpRegisterKey = "register_key"

// Statement is what a person signs: one decision, on one version, at one time. Its canonical
// JSON (RFC 8785) is the message an SSH key signs; its SHA-256 is a passkey's challenge.
type Statement struct {
	Person     string
	Measure    string
	Version    int
	Digest     string
	Op         string
	Decision   string
	Conditions []string
	Checklist  []string
	Body       string
	Reason     string
	Time       time.Time
}

// Bytes is the statement in canonical JSON.
func (s Statement) Bytes() []byte {
	m := map[string]any{"format": StatementFormat, "person": s.Person, "op": s.Op, "time": s.Time.UTC().Format(time.RFC3339)}
	add := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	add("measure", s.Measure)
	add("digest", s.Digest)
	add("decision", s.Decision)
	add("body", s.Body)
	add("reason", s.Reason)
	if s.Version != 0 {
		m["version"] = s.Version
	}
	if len(s.Conditions) > 0 {
		m["conditions"] = s.Conditions
	}
	if len(s.Checklist) > 0 {
		m["checklist"] = s.Checklist
	}
	b, err := appendValue(nil, m)
	if err != nil {
		panic(err) // strings, ints and lists of strings always encode
	}
	return b
}

// Words says the statement in a sentence, for a person to read before they sign.
func (s Statement) Words() string {
	at := s.Time.UTC().Format(time.RFC3339)
	switch s.Op {
	case OpRegisterKey:
		return fmt.Sprintf("I, %s, hold key %s and register it to sign my decisions (%s).", s.Person, s.Digest, at)
	case OpApproveKey:
		return fmt.Sprintf("I, %s, approve key %s of %s for signing their decisions, at %s.", s.Person, s.Digest, s.Body, at)
	case OpApprovePolicy:
		return fmt.Sprintf("I, %s, approve policy %s (rule set SHA-256 %s), at %s.", s.Person, s.Body, s.Digest, at)
	case OpApproveRoleChange:
		return fmt.Sprintf("I, %s, approve account change %s: %s, at %s.", s.Person, s.Digest, s.Body, at)
	case "log_steps":
		return fmt.Sprintf("I, %s, record that I took the execution steps listed (SHA-256 of the list %s) on measure %s version %d, at %s.",
			s.Person, s.Body, s.Measure, s.Version, at)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "I, %s, take the decision %s", s.Person, s.Op)
	if s.Decision != "" {
		fmt.Fprintf(&b, ": %s", s.Decision)
	}
	if s.Digest != "" {
		fmt.Fprintf(&b, ", on measure %s version %d (digest %s), at %s.", s.Measure, s.Version, s.Digest, s.Time.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(&b, ", on measure %s version %d, at %s.", s.Measure, s.Version, s.Time.UTC().Format(time.RFC3339))
	}
	if len(s.Conditions) > 0 {
		fmt.Fprintf(&b, " Conditions: %s.", strings.Join(s.Conditions, "; "))
	}
	if len(s.Checklist) > 0 {
		fmt.Fprintf(&b, " Requirements confirmed: %s.", strings.Join(s.Checklist, ", "))
	}
	if s.Body != "" {
		fmt.Fprintf(&b, " Text: %s", s.Body)
	}
	if s.Reason != "" {
		fmt.Fprintf(&b, " Reason: %s", s.Reason)
	}
	return b.String()
}

// Hash is the SHA-256 of the statement's canonical JSON.
func (s Statement) Hash() []byte {
	h := sha256.Sum256(s.Bytes())
	return h[:]
}

// Challenge is the hash as a WebAuthn client data challenge spells it (base64url).
func (s Statement) Challenge() string { return base64.RawURLEncoding.EncodeToString(s.Hash()) }

// Signature is a personal signature over a statement, as a decision carries it.
type Signature struct {
	Kind string `json:"kind"` // webauthn | ssh
	Key  string `json:"key"`  // the registered key's ID
	Time string `json:"time"` // the statement's time, RFC 3339 in UTC to the second
	// A passkey's assertion, each part base64url as the browser returns it.
	AuthenticatorData string `json:"authenticator_data,omitempty"`
	ClientDataJSON    string `json:"client_data_json,omitempty"`
	Assertion         string `json:"signature,omitempty"`
	// An SSH key's signature in the armored SSHSIG format.
	SSHSig string `json:"sshsig,omitempty"`
}

// Use identifies the signature's one use: a log that holds it twice replays it, and the
// service refuses it the second time.
func (sig *Signature) Use() [32]byte {
	return sha256.Sum256([]byte(sig.Assertion + "\n" + sig.AuthenticatorData + "\n" + sig.SSHSig))
}

// StatementTime reads the signature's time.
func (sig *Signature) StatementTime() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, sig.Time)
	if err != nil || t.Location() != time.UTC || t.Nanosecond() != 0 {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339 in UTC to the second (like 2026-12-07T09:30:00Z)", clip(sig.Time))
	}
	return t, nil
}

// Key is a person's registered signing key, as the log records its registration.
type Key struct {
	ID   string `json:"key"`
	User string `json:"user"`
	Kind string `json:"kind"`
	// PublicKey is, for a passkey, its SubjectPublicKeyInfo (DER, base64); for an SSH key,
	// its authorized_keys line (type and base64, no comment).
	PublicKey string `json:"public_key"`
	// Of a passkey: its credential ID (base64url), the relying party it is bound to and the
	// origin its assertions come from.
	CredentialID string `json:"credential_id,omitempty"`
	RPID         string `json:"rp_id,omitempty"`
	Origin       string `json:"origin,omitempty"`
}

// KeyID names a public key: the hash of its kind and bytes, so one key has one ID.
func KeyID(kind, publicKey string) string {
	h := sha256.Sum256([]byte(kind + "\n" + publicKey))
	return "key-" + hex.EncodeToString(h[:10])
}

// ParseSSHKey reads an authorized_keys line and returns it as a Key's PublicKey spells it.
func ParseSSHKey(line string) (string, error) {
	if len(line) > 16<<10 {
		return "", errors.New("is longer than any SSH public key")
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", fmt.Errorf("is not an SSH public key (%v)", err)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "", errors.New("holds more than one key")
	}
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
	default:
		return "", fmt.Errorf("has type %s; use ed25519, ecdsa, rsa or a security key (sk-)", pub.Type())
	}
	if pub.Type() == ssh.KeyAlgoRSA {
		if ck, ok := pub.(ssh.CryptoPublicKey); ok {
			if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
				return "", errors.New("is an RSA key shorter than 2048 bits")
			}
		}
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), nil
}

// ParsePasskey reads a passkey's SubjectPublicKeyInfo (base64 or base64url DER) and returns
// it as a Key's PublicKey spells it.
func ParsePasskey(spki string) (string, error) {
	der, err := decode64(spki)
	if err != nil || len(der) > 4096 {
		return "", errors.New("is not a public key in base64")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return "", fmt.Errorf("is not a public key (%v)", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", errors.New("is an RSA key shorter than 2048 bits")
		}
	default:
		return "", fmt.Errorf("is a %T; passkeys use ES256, EdDSA or RS256", pub)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// Verify checks sig over st with k and returns a passkey's signature counter (0 for SSH).
// A passkey's assertion must come from k's origin for k's relying party, with the person
// present and verified; an SSH signature must be k's, in the decision namespace.
func Verify(k *Key, st Statement, sig *Signature) (counter uint32, err error) {
	if sig.Key != k.ID || sig.Kind != k.Kind {
		return 0, fmt.Errorf("signed with %s key %s, not %s key %s", clip(sig.Kind), clip(sig.Key), k.Kind, k.ID)
	}
	switch k.Kind {
	case KeyPasskey:
		return verifyPasskey(k, st, sig)
	case KeySSH:
		return 0, verifySSH(k, st, sig)
	}
	return 0, fmt.Errorf("key %s has unknown kind %q", k.ID, clip(k.Kind))
}

// clientData is what a passkey's client data says.
type clientData struct {
	Type      string `json:"type"`
	Challenge string `json:"challenge"`
	Origin    string `json:"origin"`
}

// WebAuthn authenticator data flags (WebAuthn Level 2, 6.1).
const (
	flagUserPresent  = 0x01
	flagUserVerified = 0x04
)

func verifyPasskey(k *Key, st Statement, sig *Signature) (uint32, error) {
	authData, err1 := decode64(sig.AuthenticatorData)
	cdj, err2 := decode64(sig.ClientDataJSON)
	raw, err3 := decode64(sig.Assertion)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, fmt.Errorf("passkey assertion is not base64url: %w", err)
	}
	var cd clientData
	if err := json.Unmarshal(cdj, &cd); err != nil {
		return 0, fmt.Errorf("passkey client data is not JSON: %w", err)
	}
	switch {
	case cd.Type != "webauthn.get":
		return 0, fmt.Errorf("passkey client data has type %q, not webauthn.get", clip(cd.Type))
	case cd.Challenge != st.Challenge():
		return 0, fmt.Errorf("passkey signed challenge %s, not this statement's %s", clip(cd.Challenge), st.Challenge())
	case cd.Origin != k.Origin:
		return 0, fmt.Errorf("passkey assertion comes from %q, not the key's origin %q", clip(cd.Origin), k.Origin)
	}
	if len(authData) < 37 {
		return 0, errors.New("passkey authenticator data is shorter than 37 bytes")
	}
	rp := sha256.Sum256([]byte(k.RPID))
	if !bytes.Equal(authData[:32], rp[:]) {
		return 0, fmt.Errorf("passkey assertion is for another relying party than %q", k.RPID)
	}
	if authData[32]&flagUserPresent == 0 || authData[32]&flagUserVerified == 0 {
		return 0, errors.New("passkey assertion lacks user presence and verification (a PIN or biometric)")
	}
	der, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return 0, fmt.Errorf("key %s: %w", k.ID, err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return 0, fmt.Errorf("key %s: %w", k.ID, err)
	}
	cdHash := sha256.Sum256(cdj)
	signed := append(append([]byte{}, authData...), cdHash[:]...)
	digest := sha256.Sum256(signed)
	ok := false
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(p, digest[:], raw)
	case ed25519.PublicKey:
		ok = ed25519.Verify(p, signed, raw)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(p, crypto.SHA256, digest[:], raw) == nil
	}
	if !ok {
		return 0, fmt.Errorf("passkey signature does not verify with key %s", k.ID)
	}
	return binary.BigEndian.Uint32(authData[33:37]), nil
}

// sshsig is the SSHSIG blob (openssh PROTOCOL.sshsig).
type sshsig struct {
	Magic     [6]byte
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  string
	HashAlg   string
	Signature []byte
}

// sshsigSigned is what an SSHSIG signature covers.
type sshsigSigned struct {
	Magic     [6]byte
	Namespace string
	Reserved  string
	HashAlg   string
	Hash      []byte
}

var sshsigMagic = [6]byte{'S', 'S', 'H', 'S', 'I', 'G'}

// SSHSignedData is what an SSH key signs for message in the decision namespace, with the
// SHA-512 hash: an agent signs it to make an SSHSIG.
func SSHSignedData(message []byte) []byte {
	h := sha512.Sum512(message)
	return ssh.Marshal(sshsigSigned{Magic: sshsigMagic, Namespace: SSHNamespace, HashAlg: "sha512", Hash: h[:]})
}

// ArmorSSHSig writes an SSHSIG for pub and its signature over SSHSignedData, as ssh-keygen -Y
// sign writes it.
func ArmorSSHSig(pub ssh.PublicKey, s *ssh.Signature) string {
	blob := ssh.Marshal(sshsig{Magic: sshsigMagic, Version: 1, PublicKey: pub.Marshal(), Namespace: SSHNamespace, HashAlg: "sha512",
		Signature: ssh.Marshal(s)})
	return string(pem.EncodeToMemory(&pem.Block{Type: "SSH SIGNATURE", Bytes: blob}))
}

func verifySSH(k *Key, st Statement, sig *Signature) error {
	if len(sig.SSHSig) > 64<<10 {
		return errors.New("SSH signature is too long")
	}
	block, _ := pem.Decode([]byte(strings.TrimSpace(sig.SSHSig)))
	if block == nil || block.Type != "SSH SIGNATURE" {
		return errors.New("SSH signature is not armored as -----BEGIN SSH SIGNATURE-----")
	}
	var s sshsig
	if err := ssh.Unmarshal(block.Bytes, &s); err != nil || s.Magic != sshsigMagic || s.Version != 1 {
		return errors.New("SSH signature is not an SSHSIG version 1")
	}
	if s.Namespace != SSHNamespace {
		return fmt.Errorf("SSH signature is in namespace %q, not %q", clip(s.Namespace), SSHNamespace)
	}
	registered, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.PublicKey))
	if err != nil {
		return fmt.Errorf("key %s: %w", k.ID, err)
	}
	if !bytes.Equal(s.PublicKey, registered.Marshal()) {
		return fmt.Errorf("SSH signature is by another key than %s", k.ID)
	}
	var h []byte
	switch s.HashAlg {
	case "sha512":
		x := sha512.Sum512(st.Bytes())
		h = x[:]
	case "sha256":
		x := sha256.Sum256(st.Bytes())
		h = x[:]
	default:
		return fmt.Errorf("SSH signature uses hash %q", clip(s.HashAlg))
	}
	var inner ssh.Signature
	if err := ssh.Unmarshal(s.Signature, &inner); err != nil {
		return errors.New("SSH signature's inner signature is malformed")
	}
	if registered.Type() == ssh.KeyAlgoRSA && inner.Format == ssh.KeyAlgoRSA {
		return errors.New("SSH signature uses RSA with SHA-1")
	}
	signed := ssh.Marshal(sshsigSigned{Magic: sshsigMagic, Namespace: s.Namespace, Reserved: s.Reserved, HashAlg: s.HashAlg, Hash: h})
	if err := registered.Verify(signed, &inner); err != nil {
		return fmt.Errorf("SSH signature does not verify with key %s", k.ID)
	}
	return nil
}

func decode64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
