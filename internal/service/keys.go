package service

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// Personal keys sign decisions for the person who takes them (audit.Statement). A key is
// proposed by its holder with a proof that they hold it, and is in force once an
// administrator other than the holder approves it; the holder revokes it at once, another's
// key is revoked by two administrators. Each step enters the audit log with the key.

// KeyProposal is a person's proposal of a key of their own.
type KeyProposal struct {
	Kind string `json:"kind"` // webauthn | ssh
	// PublicKey is a passkey's SubjectPublicKeyInfo in base64url (the browser's
	// getPublicKey()), or an SSH authorized_keys line.
	PublicKey    string `json:"public_key"`
	CredentialID string `json:"credential_id,omitempty"` // a passkey's, base64url
	Label        string `json:"label,omitempty"`
	// Proof is the key's signature over the statement {person, op: register_key, digest:
	// the key's ID, time}: the proposer holds it.
	Proof audit.Signature `json:"proof"`
}

// PersonalKey is a registered or proposed key.
type PersonalKey struct {
	ID           string     `json:"id"`
	User         string     `json:"user"`
	Username     string     `json:"username,omitempty"`
	Kind         string     `json:"kind"`
	PublicKey    string     `json:"public_key"`
	CredentialID string     `json:"credential_id,omitempty"`
	Label        string     `json:"label,omitempty"`
	State        string     `json:"state"` // pending | active | revoke_pending | revoked
	ProposedAt   time.Time  `json:"proposed_at"`
	ApprovedBy   string     `json:"approved_by,omitempty"`
	ApprovedAt   *time.Time `json:"approved_at,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
}

// SignatureWindow bounds how far a signed statement's time may be from the server's clock.
const SignatureWindow = 5 * time.Minute

// ProposeKey records a key of a's for an administrator to approve. origin is where the
// request came from (the server's public origin): a passkey must have been asserted there.
func (s *Service) ProposeKey(ctx context.Context, a authz.Actor, p KeyProposal, origin string) (PersonalKey, error) {
	const action = "key.propose"
	k, err := s.checkProposal(a, &p, origin)
	if err != nil {
		return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
	}
	proof, _ := json.Marshal(p.Proof)
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO personal_keys (id, user_id, kind, public_key, credential_id, rp_id, origin, label, proof)
			VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''), $8, $9) ON CONFLICT DO NOTHING`,
			k.ID, a.ID, k.Kind, k.PublicKey, k.CredentialID, k.RPID, k.Origin, p.Label, proof)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var revoked bool
			_ = tx.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM personal_keys WHERE id = $1`, k.ID).Scan(&revoked)
			if revoked {
				return refusal.New(refusal.Conflict, "key %s was revoked: a revoked key is never registered again; make a new key", k.ID)
			}
			return refusal.New(refusal.Conflict, "key %s is registered or proposed already", k.ID)
		}
		d := keyDetails(k)
		d["signature"] = sigDetails(&p.Proof)
		if p.Label != "" {
			d["label"] = p.Label
		}
		return s.append(ctx, tx, a, "key/"+k.ID+"/proposed", &audit.Record{Action: audit.KeyProposed, Details: d})
	})
	if err != nil {
		if refusal.Is(err) {
			return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
		}
		return PersonalKey{}, fmt.Errorf("propose key: %w", err)
	}
	return s.key(ctx, k.ID)
}

// checkProposal checks a proposal's form and proof and returns the key it proposes.
func (s *Service) checkProposal(a authz.Actor, p *KeyProposal, origin string) (*audit.Key, error) {
	if fe := measure.CheckLine("label", p.Label, 64); fe != nil {
		return nil, fe
	}
	k := &audit.Key{User: a.ID, Kind: p.Kind}
	var err error
	switch p.Kind {
	case audit.KeySSH:
		if p.CredentialID != "" {
			return nil, &measure.FieldError{Field: "credential_id", Message: "belongs to a passkey"}
		}
		k.PublicKey, err = audit.ParseSSHKey(p.PublicKey)
	case audit.KeyPasskey:
		if origin == "" {
			return nil, refusal.New(refusal.Invalid, "passkeys are registered through the web pages")
		}
		k.PublicKey, err = audit.ParsePasskey(p.PublicKey)
		if err == nil {
			id, derr := base64.RawURLEncoding.DecodeString(strings.TrimRight(p.CredentialID, "="))
			if derr != nil || len(id) < 16 || len(id) > 1023 {
				return nil, &measure.FieldError{Field: "credential_id", Message: "must be the passkey's credential ID in base64url (16 to 1023 bytes)"}
			}
			k.CredentialID = base64.RawURLEncoding.EncodeToString(id)
			u, uerr := url.Parse(origin)
			if uerr != nil || u.Hostname() == "" {
				return nil, refusal.New(refusal.Invalid, "passkeys are registered through the web pages")
			}
			k.Origin, k.RPID = u.Scheme+"://"+u.Host, u.Hostname()
		}
	default:
		return nil, &measure.FieldError{Field: "kind", Message: "must be webauthn (a passkey) or ssh"}
	}
	if err != nil {
		return nil, &measure.FieldError{Field: "public_key", Message: err.Error()}
	}
	k.ID = audit.KeyID(k.Kind, k.PublicKey)
	p.Proof.Key, p.Proof.Kind = k.ID, k.Kind
	t, err := s.checkTime(&p.Proof, "proof.time")
	if err != nil {
		return nil, err
	}
	if _, err := audit.Verify(k, audit.Statement{Person: a.ID, Op: audit.OpRegisterKey, Digest: k.ID, Time: t}, &p.Proof); err != nil {
		return nil, &measure.FieldError{Field: "proof", Message: "does not prove you hold this key: " + err.Error()}
	}
	return k, nil
}

// checkTime reads a signature's time and refuses one far from the server's clock.
func (s *Service) checkTime(sig *audit.Signature, field string) (time.Time, error) {
	t, err := sig.StatementTime()
	if err != nil {
		return t, &measure.FieldError{Field: field, Message: err.Error()}
	}
	if d := s.now().Sub(t); d > SignatureWindow || d < -SignatureWindow {
		return t, &measure.FieldError{Field: field, Message: fmt.Sprintf("is %s, more than %s from the server's clock (%s): sign again now",
			sig.Time, SignatureWindow, s.now().UTC().Format(time.RFC3339))}
	}
	return t, nil
}

func keyDetails(k *audit.Key) map[string]any {
	d := map[string]any{"key": k.ID, "user": k.User, "kind": k.Kind, "public_key": k.PublicKey}
	if k.Kind == audit.KeyPasskey {
		d["credential_id"], d["rp_id"], d["origin"] = k.CredentialID, k.RPID, k.Origin
	}
	return d
}

func sigDetails(sig *audit.Signature) map[string]any {
	var d map[string]any
	b, _ := json.Marshal(sig)
	_ = json.Unmarshal(b, &d)
	return d
}

// ApproveKey puts a proposed key in force; a is an administrator other than its holder, who
// signs the approval when the policy says so.
func (s *Service) ApproveKey(ctx context.Context, a authz.Actor, id string, sig *audit.Signature) (PersonalKey, error) {
	const action = "key.approve"
	if err := s.requireAdmin(ctx, a, action); err != nil {
		return PersonalKey{}, err
	}
	k, user, err := s.storedKey(ctx, id)
	if err != nil {
		return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
	}
	if user == a.ID {
		return PersonalKey{}, s.refuse(ctx, a, On{}, action, &authz.Denied{Rule: "two-person", Reason: "an administrator other than the key's holder approves it"})
	}
	if err := s.proposedKey(ctx, k); err != nil {
		return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
	}
	signed, err := s.checkSigned(ctx, a, authz.OpApproveKey, sig, false, func(t time.Time) audit.Statement {
		return audit.ApprovalStatement(a.ID, audit.OpApproveKey, k.ID, k.User, t)
	})
	if err != nil {
		return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
	}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE personal_keys SET approved_by = $2, approved_at = now()
			WHERE id = $1 AND approved_by IS NULL AND revoked_at IS NULL`, id, a.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refusal.New(refusal.Conflict, "key %s is not waiting for approval (approved or revoked already)", id)
		}
		details := keyDetails(k)
		if signed != nil {
			details["signature"] = signed
		}
		return s.append(ctx, tx, a, "key/"+id+"/registered", &audit.Record{Action: audit.KeyRegistered, Details: details})
	})
	if err != nil {
		if refusal.Is(err) {
			return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
		}
		return PersonalKey{}, fmt.Errorf("approve key: %w", err)
	}
	return s.key(ctx, id)
}

// RevokeKey ends a key. Its holder revokes it at once; an administrator proposes revoking
// another's key (a lost key), and a second administrator's revocation applies it.
func (s *Service) RevokeKey(ctx context.Context, a authz.Actor, id, reason string) (PersonalKey, error) {
	const action = "key.revoke"
	if err := checkReason(reason); err != nil {
		return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
	}
	k, user, err := s.storedKey(ctx, id)
	if err != nil {
		return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
	}
	if user != a.ID {
		if err := s.requireAdmin(ctx, a, action); err != nil {
			return PersonalKey{}, err
		}
	}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var proposer *string
		var revoked, approved bool
		if err := tx.QueryRow(ctx, `SELECT revoke_proposed_by, revoked_at IS NOT NULL, approved_at IS NOT NULL FROM personal_keys WHERE id = $1 FOR UPDATE`,
			id).Scan(&proposer, &revoked, &approved); err != nil {
			return err
		}
		switch {
		case revoked:
			return refusal.New(refusal.Conflict, "key %s is revoked already", id)
		case user != a.ID && (proposer == nil || *proposer == user):
			// The first administrator's half of revoking another's key.
			if _, err := tx.Exec(ctx, `UPDATE personal_keys SET revoke_proposed_by = $2, revoke_reason = $3 WHERE id = $1`, id, a.ID, reason); err != nil {
				return err
			}
			return s.append(ctx, tx, a, "key/"+id+"/revoke_proposed", &audit.Record{Action: "key.revoke_proposed", Reason: reason,
				Details: map[string]any{"id": id, "holder": user}})
		case user != a.ID && *proposer == a.ID:
			return &authz.Denied{Rule: "two-person", Reason: "another administrator than the one who proposed it revokes another's key"}
		}
		if approved && authz.MustSign(s.Authz.Rules(), authz.OpApproveKey, []authz.Role{authz.Admin}) {
			// Under a policy requiring signed key approvals, the last administrator's key in
			// force is the only way any key is approved again: it goes after another's comes.
			var others int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM personal_keys k JOIN role_grants g ON g.user_id = k.user_id AND g.role = 'admin'
				WHERE k.id <> $1 AND k.approved_at IS NOT NULL AND k.revoked_at IS NULL`, id).Scan(&others); err != nil {
				return err
			}
			var admin bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM role_grants WHERE user_id = $1 AND role = 'admin')`, user).Scan(&admin); err != nil {
				return err
			}
			if admin && others == 0 {
				return refusal.New(refusal.Conflict, "key %s is the last administrator's key in force, and policy %s requires key approvals to be signed: revoked, no key could ever be approved again; have another administrator's key approved first", id, s.Authz.Version())
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE personal_keys SET revoked_at = now(), revoked_by = $2 WHERE id = $1`, id, a.ID); err != nil {
			return err
		}
		if !approved {
			// Never in force, never in the log as registered: the proposal is withdrawn.
			return s.append(ctx, tx, a, "key/"+id+"/withdrawn", &audit.Record{Action: "key.withdrawn", Reason: reason,
				Details: map[string]any{"id": id, "holder": user}})
		}
		d := keyDetails(k)
		if proposer != nil && user != a.ID {
			d["proposed_by"] = *proposer
		}
		return s.append(ctx, tx, a, "key/"+id+"/revoked", &audit.Record{Action: audit.KeyRevoked, Reason: reason, Details: d})
	})
	if err != nil {
		if refusal.Is(err) {
			return PersonalKey{}, s.refuse(ctx, a, On{}, action, err)
		}
		return PersonalKey{}, fmt.Errorf("revoke key: %w", err)
	}
	return s.key(ctx, id)
}

// Keys lists a person's keys: a's own, or, for an administrator, anyone's (user "" lists the
// keys waiting for an administrator).
func (s *Service) Keys(ctx context.Context, a authz.Actor, user string) ([]PersonalKey, error) {
	if user != a.ID {
		if err := s.requireAdmin(ctx, a, "read.keys"); err != nil {
			return nil, err
		}
	}
	rows, err := s.DB.Query(ctx, keyColumns+` WHERE ($1 = '' AND ((k.approved_at IS NULL OR k.revoke_proposed_by IS NOT NULL) AND k.revoked_at IS NULL)) OR k.user_id = $1
		ORDER BY k.proposed_at, k.id LIMIT $2`, user, MaxPage)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PersonalKey, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	if out == nil {
		out = []PersonalKey{}
	}
	return out, nil
}

// keyColumns selects what scanKey reads, from personal_keys k.
const keyColumns = `SELECT k.id, k.user_id, u.username, k.kind, k.public_key, COALESCE(k.credential_id, ''), k.label,
		k.proposed_at, k.approved_by, k.approved_at, k.revoked_at, k.revoke_proposed_by
	FROM personal_keys k JOIN users u ON u.id = k.user_id`

// scanKey reads one key's row, as keyColumns selects it, and names its state.
func scanKey(row pgx.Row) (PersonalKey, error) {
	var k PersonalKey
	var approvedBy, revokeProposed *string
	if err := row.Scan(&k.ID, &k.User, &k.Username, &k.Kind, &k.PublicKey, &k.CredentialID, &k.Label, &k.ProposedAt, &approvedBy,
		&k.ApprovedAt, &k.RevokedAt, &revokeProposed); err != nil {
		return k, err
	}
	if approvedBy != nil {
		k.ApprovedBy = *approvedBy
	}
	switch {
	case k.RevokedAt != nil:
		k.State = "revoked"
	case k.ApprovedAt == nil:
		k.State = "pending"
	case revokeProposed != nil:
		k.State = "revoke_pending"
	default:
		k.State = "active"
	}
	return k, nil
}

func (s *Service) key(ctx context.Context, id string) (PersonalKey, error) {
	k, err := scanKey(s.DB.QueryRow(ctx, keyColumns+` WHERE k.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, refusal.New(refusal.NotFound, "no key %s", measure.Clip(id, 64))
	}
	if err != nil {
		return k, fmt.Errorf("read key: %w", err)
	}
	return k, nil
}

// storedKey reads a key as the log would record it, and its holder.
func (s *Service) storedKey(ctx context.Context, id string) (*audit.Key, string, error) {
	k := &audit.Key{}
	var cred, rp, origin *string
	err := s.DB.QueryRow(ctx, `SELECT id, user_id, kind, public_key, credential_id, rp_id, origin FROM personal_keys WHERE id = $1`, id).
		Scan(&k.ID, &k.User, &k.Kind, &k.PublicKey, &cred, &rp, &origin)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", refusal.New(refusal.NotFound, "no key %s", measure.Clip(id, 64))
	}
	if err != nil {
		return nil, "", fmt.Errorf("read key: %w", err)
	}
	for _, x := range []struct {
		dst *string
		src *string
	}{{&k.CredentialID, cred}, {&k.RPID, rp}, {&k.Origin, origin}} {
		if x.src != nil {
			*x.dst = *x.src
		}
	}
	return k, k.User, nil
}

// checkSignature checks a decision's personal signature: required when the policy in force
// says so for the actor's roles, and, when given, made by a key of the actor's in force, over
// the statement of this decision on this version, recently. It returns the signature as the
// decision's record carries it.
func (s *Service) checkSignature(ctx context.Context, a authz.Actor, m Measure, op authz.Op, in ActionInput, retry bool) (map[string]string, error) {
	if in.Signature != nil && !Signable(op) {
		return nil, &measure.FieldError{Field: "signature", Message: fmt.Sprintf("belongs to a decision on a version, an emergency, an order or a batch of steps; %s is none", op)}
	}
	d, err := in.decided(op)
	if err != nil {
		return nil, err
	}
	return s.checkSigned(ctx, a, op, in.Signature, retry, func(t time.Time) audit.Statement {
		return audit.DecisionStatement(a.ID, m.ID, m.Version, in.Digest, string(op), d, t)
	})
}

// Signable says whether a person may sign op on a measure: a decision on a version, or an
// executor's batch of steps.
func Signable(op authz.Op) bool {
	return measure.Judges(op) || op == authz.OpLogSteps || op == authz.OpDeclareEmergency || op == authz.OpIssueOrder
}

// checkSigned checks a personal signature over the statement op makes at the signature's
// time: required when the policy in force says so for the actor's roles; when given, made by
// a key of the actor's in force as the log registered it, recently, and used once (a retry
// under the same idempotency key is the same use). It returns the signature as the record
// carries it.
func (s *Service) checkSigned(ctx context.Context, a authz.Actor, op authz.Op, sig *audit.Signature, retry bool, statement func(time.Time) audit.Statement) (map[string]string, error) {
	if sig == nil {
		if authz.MustSign(s.Authz.Rules(), op, a.Roles) {
			return nil, &authz.Denied{Rule: "signature", Reason: fmt.Sprintf(
				"policy %s requires %s to be signed with your own key (a passkey on the web page, an SSH key with the CLI's -sign)", s.Authz.Version(), op)}
		}
		return nil, nil
	}
	t, err := s.checkTime(sig, "signature.time")
	if err != nil {
		return nil, err
	}
	k, user, err := s.storedKey(ctx, sig.Key)
	if err != nil {
		return nil, &authz.Denied{Rule: "signature", Reason: fmt.Sprintf("key %q is not registered", measure.Clip(sig.Key, 64))}
	}
	var active bool
	var count int64
	if err := s.DB.QueryRow(ctx, `SELECT approved_at IS NOT NULL AND revoked_at IS NULL, sign_count FROM personal_keys WHERE id = $1`, k.ID).Scan(&active, &count); err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	switch {
	case user != a.ID:
		return nil, &authz.Denied{Rule: "signature", Reason: fmt.Sprintf("key %s is not yours", k.ID)}
	case !active:
		return nil, &authz.Denied{Rule: "signature", Reason: fmt.Sprintf("key %s is not in force (waiting for an administrator's approval, or revoked)", k.ID)}
	}
	if err := s.loggedKey(ctx, k); err != nil {
		return nil, err
	}
	counter, err := audit.Verify(k, statement(t), sig)
	if err != nil {
		return nil, &authz.Denied{Rule: "signature", Reason: err.Error()}
	}
	if counter != 0 || count != 0 {
		// A retry under the same idempotency key carries the same assertion.
		tag, err := s.DB.Exec(ctx, `UPDATE personal_keys SET sign_count = $2 WHERE id = $1 AND (sign_count < $2 OR ($3 AND sign_count = $2))`,
			k.ID, int64(counter), retry)
		if err != nil {
			return nil, fmt.Errorf("record the passkey's counter: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil, &authz.Denied{Rule: "signature", Reason: fmt.Sprintf("passkey %s's counter %d does not exceed %d, seen before: a replayed assertion or a cloned key", k.ID, counter, count)}
		}
	}
	// A signature is used once (the verifier fails a log holding one twice); a retry under the
	// same idempotency key is the same use.
	used := sig.Use()
	tag, err := s.DB.Exec(ctx, `INSERT INTO used_signatures (hash, key_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, used[:], k.ID)
	if err != nil {
		return nil, fmt.Errorf("record the signature's use: %w", err)
	}
	if tag.RowsAffected() == 0 && !retry {
		return nil, &authz.Denied{Rule: "signature", Reason: "this signature was used already: a decision sent again is signed again"}
	}
	var out map[string]string
	b, _ := json.Marshal(sig)
	_ = json.Unmarshal(b, &out)
	return out, nil
}

// decided is what a statement of in, taking op, says: a batch of steps is named by its
// ContentDigest.
func (in ActionInput) decided(op authz.Op) (audit.Decided, error) {
	d := audit.Decided{Decision: in.Decision, Gate: in.Gate, Reference: in.Reference, Conditions: in.Conditions, Checklist: in.Checklist,
		Body: in.Body, Reason: in.Reason}
	if in.Conflicted != nil {
		d.Conflicted = *in.Conflicted
	}
	var err error
	switch op {
	case authz.OpLogSteps:
		if d.Body, err = audit.ContentDigest(in.Steps); err != nil {
			return d, &measure.FieldError{Field: "steps", Message: err.Error()}
		}
	case authz.OpIssueOrder:
		if d.Body, err = audit.ContentDigest(in.Order); err != nil {
			return d, &measure.FieldError{Field: "order", Message: err.Error()}
		}
	}
	return d, nil
}

// Statement returns the statement a decision makes, for a person to sign: the page shows it
// and the key signs its hash.
func (s *Service) Statement(ctx context.Context, a authz.Actor, id string, op authz.Op, in ActionInput) (audit.Statement, error) {
	m, err := s.find(ctx, nil, a, id, "read.statement")
	if err != nil {
		return audit.Statement{}, err
	}
	if !Signable(op) {
		return audit.Statement{}, &measure.FieldError{Field: "op", Message: fmt.Sprintf("%s is no decision on a version; signed decisions are %v", measure.Clip(string(op), 64), authz.SignableOps)}
	}
	if in.Digest == "" {
		in.Digest = m.Digest
	}
	// The statement of a decision the action would refuse is not worth a touch of the key.
	action := measure.Action{Op: op, Actor: a, Decision: in.Decision, Reason: in.Reason, Conditions: in.Conditions, Checklist: in.Checklist,
		Conflicted: in.Conflicted != nil && *in.Conflicted, Digest: in.Digest, Gate: in.Gate, Reference: in.Reference, Body: in.Body, Steps: in.Steps,
		Order: in.Order}
	if err := action.CheckInput(); err != nil {
		return audit.Statement{}, s.refuse(ctx, a, m.on(), "read.statement", err)
	}
	d, err := in.decided(op)
	if err != nil {
		return audit.Statement{}, s.refuse(ctx, a, m.on(), "read.statement", err)
	}
	return audit.DecisionStatement(a.ID, m.ID, m.Version, in.Digest, string(op), d, s.now().UTC().Truncate(time.Second)), nil
}

// sameKey says whether a key's record names k as it is: its ID the hash of the public key the
// record holds, for the same person, kind and (a passkey) origin.
func sameKey(d map[string]any, k *audit.Key) bool {
	return d["key"] == k.ID && audit.KeyID(k.Kind, k.PublicKey) == k.ID && d["public_key"] == k.PublicKey && d["user"] == k.User &&
		d["kind"] == k.Kind && (k.Kind != audit.KeyPasskey || (d["origin"] == k.Origin && d["rp_id"] == k.RPID && d["credential_id"] == k.CredentialID))
}

// proposedKey refuses approving a pending key that the table holds otherwise than its
// holder's proposal recorded (a public key or holder edited in SQL): the approval would put in
// force a key nobody proposed. It halts the log and raises an alert.
func (s *Service) proposedKey(ctx context.Context, k *audit.Key) error {
	r, err := s.trustedRecord(ctx, "key/"+k.ID+"/proposed")
	if err != nil {
		return err
	}
	if r != nil && r.Action == audit.KeyProposed && r.Actor.ID == k.User && sameKey(r.Details, k) {
		return nil
	}
	return s.tampered(ctx, &tamperedGrant{what: "signing key " + k.ID + " of " + k.User, table: "pending", logged: "proposed otherwise, or not by its holder"}, -1)
}

// loggedKey refuses a key the table holds in force but the audit log does not: never
// registered there (a row inserted in SQL), registered with another public key, or revoked
// since. Like a role edited in SQL, it halts the log and raises an alert.
func (s *Service) loggedKey(ctx context.Context, k *audit.Key) error {
	reg, rev := "key/"+k.ID+"/registered", "key/"+k.ID+"/revoked"
	got, err := s.trustedRecords(ctx, s.DB, []string{reg, rev})
	if err != nil {
		return err
	}
	r, ok := got[reg]
	_, revoked := got[rev]
	if ok && !revoked && sameKey(r.Details, k) {
		return nil
	}
	return s.tampered(ctx, &tamperedGrant{what: "signing key " + k.ID + " of " + k.User, table: "in force", logged: "never registered with this public key, or revoked"}, -1)
}

// ApprovalStatement returns the statement an administrator's approval of a proposal makes,
// for them to sign: op is approve_key (subject a key ID), approve_policy (a version such as
// v2) or approve_role_change (a change ID).
func (s *Service) ApprovalStatement(ctx context.Context, a authz.Actor, op authz.Op, subject string) (audit.Statement, error) {
	const action = "read.statement"
	if err := s.requireAdmin(ctx, a, action); err != nil {
		return audit.Statement{}, err
	}
	t := s.now().UTC().Truncate(time.Second)
	switch op {
	case authz.OpApproveKey:
		k, _, err := s.storedKey(ctx, subject)
		if err != nil {
			return audit.Statement{}, s.refuse(ctx, a, On{}, action, err)
		}
		var pending bool
		if err := s.DB.QueryRow(ctx, `SELECT approved_at IS NULL AND revoked_at IS NULL FROM personal_keys WHERE id = $1`, k.ID).Scan(&pending); err != nil {
			return audit.Statement{}, fmt.Errorf("read key: %w", err)
		}
		switch {
		case k.User == a.ID:
			return audit.Statement{}, s.refuse(ctx, a, On{}, action, &authz.Denied{Rule: "two-person", Reason: "an administrator other than the key's holder approves it"})
		case !pending:
			return audit.Statement{}, s.refuse(ctx, a, On{}, action, refusal.New(refusal.Conflict, "key %s is not waiting for approval (approved or revoked already)", k.ID))
		}
		return audit.ApprovalStatement(a.ID, audit.OpApproveKey, k.ID, k.User, t), nil
	case authz.OpApprovePolicy:
		var version int
		if _, err := fmt.Sscanf(strings.TrimPrefix(subject, "v"), "%d", &version); err != nil || version < 2 {
			return audit.Statement{}, s.refuse(ctx, a, On{}, action, &measure.FieldError{Field: "version", Message: "must look like v2"})
		}
		var proposer string
		err := s.DB.QueryRow(ctx, `SELECT proposed_by FROM authz_policy_versions WHERE version = $1 AND approved_by IS NULL`, version).Scan(&proposer)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return audit.Statement{}, s.refuse(ctx, a, On{}, action, refusal.New(refusal.NotFound, "no policy v%d waiting for approval", version))
		case err != nil:
			return audit.Statement{}, fmt.Errorf("read policy v%d: %w", version, err)
		case proposer == a.ID:
			return audit.Statement{}, s.refuse(ctx, a, On{}, action, &authz.Denied{Rule: "two-person", Reason: "a policy must be approved by an administrator other than its proposer"})
		}
		digest, err := s.proposedRuleSet(ctx, version)
		if err != nil {
			return audit.Statement{}, err
		}
		return audit.ApprovalStatement(a.ID, audit.OpApprovePolicy, digest, fmt.Sprintf("v%d", version), t), nil
	case authz.OpApproveRoleChange:
		c, approved, err := s.roleChange(ctx, subject)
		if err != nil {
			if refusal.Is(err) {
				return audit.Statement{}, s.refuse(ctx, a, On{}, action, err)
			}
			return audit.Statement{}, err
		}
		switch {
		case approved:
			return audit.Statement{}, s.refuse(ctx, a, On{}, action, refusal.New(refusal.Conflict, "role change %s is already approved", c.ID))
		case c.ProposedBy == a.ID:
			return audit.Statement{}, s.refuse(ctx, a, On{}, action, &authz.Denied{Rule: "two-person", Reason: "a role change must be approved by an administrator other than its proposer"})
		}
		return audit.ApprovalStatement(a.ID, audit.OpApproveRoleChange, c.ID, c.change().Body(), t), nil
	}
	return audit.Statement{}, &measure.FieldError{Field: "op", Message: fmt.Sprintf("%s is no approval; approvals are %s, %s and %s",
		measure.Clip(string(op), 64), authz.OpApproveKey, authz.OpApprovePolicy, authz.OpApproveRoleChange)}
}
