package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// Personal keys and signed decisions, as the replay follows them through the log.

// Key records' actions.
const (
	KeyProposed   = "key.proposed"   // the person proposes a key of theirs, with a proof of holding it
	KeyRegistered = "key.registered" // an administrator other than the person confirms it
	KeyRevoked    = "key.revoked"    // the person, or a second administrator, ends it
)

// Bounds on a signed statement's time against its record's: the record is written moments
// after the person signed; a statement from long before is not this decision's.
const (
	StatementMaxAge  = 24 * time.Hour
	StatementMaxSkew = 5 * time.Minute
)

// DecisionStatement is the statement a decision on a measure makes, from what the log
// records of it (or the service receives): the same words either way, or the signature fails.
func DecisionStatement(person, measureID string, version int, digest, op string, d Decided, t time.Time) Statement {
	st := Statement{Person: person, Measure: measureID, Version: version, Digest: digest, Op: op, Reason: d.Reason, Time: t}
	switch op {
	case "declare_conflict":
		st.Decision = "no_conflict"
		if d.Conflicted {
			st.Decision = "conflicted"
		}
	case "record_gate":
		st.Decision, st.Body = d.Gate, d.Reference
	case "vote":
		st.Decision, st.Conditions = d.Decision, d.Conditions
	case "legal_review":
		st.Decision, st.Checklist = d.Decision, d.Checklist
	case "command_review":
		st.Decision = d.Decision
	case "post_hoc_decision":
		st.Decision, st.Body = d.Decision, d.Body
	case "request_info":
		st.Body = d.Body
	case "log_steps", "issue_order":
		// The steps' or the order's ContentDigest; the measure and version name what was
		// approved.
		st.Digest, st.Body = "", d.Body
	case "declare_emergency":
		st.Digest = "" // before any approval: the reason is the decision
	}
	return st
}

// ContentDigest names what a signature covers by the SHA-256 of its canonical JSON
// ("sha256:<hex>"): a batch of execution steps (log_steps), an order (issue_order). A list too
// large for its record moves to companion data under the same name.
func ContentDigest(steps any) (string, error) {
	b, err := appendValue(nil, steps)
	if err != nil {
		return "", fmt.Errorf("encode the steps: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Decided is what a person decided, as far as a statement says it.
type Decided struct {
	Decision   string
	Conflicted bool
	Gate       string
	Reference  string
	Conditions []string
	Checklist  []string
	Body       string // an information request's question, a post-hoc review's remediation
	Reason     string
}

// decidedOf reads a decision record's Decided.
func decidedOf(r *entry) Decided {
	f := &r.facts
	d := Decided{Decision: f.Decision, Conflicted: f.Conflicted, Gate: f.Gate, Reference: f.Reference, Conditions: f.Conditions,
		Checklist: f.Checklist, Body: f.Body, Reason: r.Reason}
	switch r.Action {
	case "vote":
		d.Decision = f.Vote
	case "post_hoc_decision":
		d.Body = f.Remediation
	case "issue_order":
		d.Body = f.OrderDigest
	case "log_steps":
		d.Body = f.ContentDigest
		if ref := f.Companions["step_list"]; ref != "" {
			d.Body = ref // resolve checked that the companion hashes to it
		}
	}
	return d
}

// heldKey is a personal key as the log has recorded it so far.
type heldKey struct {
	Key
	revoked bool
	counter uint32
}

// keyring follows personal keys through the log and judges signed decisions.
type keyring struct {
	proposed map[string]*heldKey // by key ID, waiting for an administrator
	keys     map[string]*heldKey
	used     map[[32]byte]int64 // signatures seen, and where
}

func newKeyring() *keyring {
	return &keyring{proposed: map[string]*heldKey{}, keys: map[string]*heldKey{}, used: map[[32]byte]int64{}}
}

// add replays a key's record; it reports whether r was one.
func (kr *keyring) add(r *entry, rep *Report) bool {
	f := &r.facts
	k := f.Key
	switch r.Action {
	case KeyProposed:
		switch {
		case k.User != r.Actor.ID:
			rep.fail(r.Index, "key", "%s proposed key %s for %s: a person proposes only their own keys", r.Actor.ID, k.ID, k.User)
		case k.ID != KeyID(k.Kind, k.PublicKey):
			rep.fail(r.Index, "key", "key %s is named otherwise than its public key's hash %s", k.ID, KeyID(k.Kind, k.PublicKey))
		case f.Signed == nil:
			rep.fail(r.Index, "key", "key %s was proposed without a proof that %s holds it", k.ID, k.User)
		default:
			counter, err := kr.proof(&k, f.Signed)
			if err != "" {
				rep.fail(r.Index, "key", "key %s's proof of possession: %s", k.ID, err)
				return true
			}
			kr.proposed[k.ID] = &heldKey{Key: k, counter: counter}
		}
	case KeyRegistered:
		p := kr.proposed[k.ID]
		switch {
		case p == nil:
			rep.fail(r.Index, "two-person", "key %s of %s registered without its holder's proposal in the log", k.ID, k.User)
		case p.Key != k:
			rep.fail(r.Index, "key", "key %s registered otherwise than %s proposed it", k.ID, p.User)
		case !slices.Contains(r.Actor.Roles, "admin"):
			rep.fail(r.Index, "two-person", "key %s of %s registered by %s, who is not an administrator", k.ID, k.User, r.Actor.ID)
		case r.Actor.ID == k.User:
			rep.fail(r.Index, "two-person", "key %s registered by its own holder %s: another administrator confirms it", k.ID, k.User)
		default:
			delete(kr.proposed, k.ID)
			if kr.keys[k.ID] != nil {
				rep.fail(r.Index, "key", "key %s registered twice", k.ID)
				return true
			}
			kr.keys[k.ID] = p
		}
	case KeyRevoked:
		h := kr.keys[k.ID]
		switch {
		case h == nil:
			rep.fail(r.Index, "key", "key %s revoked but never registered in the log", k.ID)
		case r.Actor.ID == h.User:
			h.revoked = true
		case !slices.Contains(r.Actor.Roles, "admin") || f.ProposedBy == "" || f.ProposedBy == r.Actor.ID:
			rep.fail(r.Index, "two-person", "key %s of %s revoked by %s alone: another's key is revoked by two administrators", k.ID, h.User, r.Actor.ID)
		default:
			h.revoked = true
		}
	default:
		return false
	}
	return true
}

// proof checks a key proposal's proof that its holder signed with it.
func (kr *keyring) proof(k *Key, sig *Signature) (uint32, string) {
	t, err := sig.StatementTime()
	if err != nil {
		return 0, err.Error()
	}
	counter, err := Verify(k, Statement{Person: k.User, Op: OpRegisterKey, Digest: k.ID, Time: t}, sig)
	if err != nil {
		return 0, err.Error()
	}
	return counter, ""
}

// check judges a decision record's personal signature: required when the policy in force
// says so, and, when present, valid for the person's key as registered and not revoked at
// this point of the log, made for this decision and never used before.
func (kr *keyring) check(r *entry, required bool, statement func(time.Time) Statement, rep *Report) bool {
	sig := r.facts.Signed
	if sig == nil {
		if required {
			rep.fail(r.Index, "signature", "%s by %s carries no personal signature, which policy %s requires", r.Action, r.Actor.ID, policyName(r.Policy))
		}
		return false
	}
	k := kr.keys[sig.Key]
	switch {
	case k == nil:
		rep.fail(r.Index, "signature", "%s by %s is signed with key %s, which the log never registered", r.Action, r.Actor.ID, clip(sig.Key))
		return false
	case k.User != r.Actor.ID:
		rep.fail(r.Index, "signature", "%s by %s is signed with key %s of %s", r.Action, r.Actor.ID, k.ID, k.User)
		return false
	case k.revoked:
		rep.fail(r.Index, "signature", "%s by %s is signed with key %s, revoked earlier in the log", r.Action, r.Actor.ID, k.ID)
		return false
	}
	t, err := sig.StatementTime()
	if err != nil {
		rep.fail(r.Index, "signature", "%s by %s: %v", r.Action, r.Actor.ID, err)
		return false
	}
	if t.After(r.TS.Add(StatementMaxSkew)) || t.Before(r.TS.Add(-StatementMaxAge)) {
		rep.fail(r.Index, "signature", "%s by %s was signed at %s, too far from its record's time %s", r.Action, r.Actor.ID,
			sig.Time, r.TS.UTC().Format(time.RFC3339))
		return false
	}
	counter, err := Verify(&k.Key, statement(t), sig)
	if err != nil {
		rep.fail(r.Index, "signature", "%s by %s: %v", r.Action, r.Actor.ID, err)
		return false
	}
	seen := sig.Use()
	if at, ok := kr.used[seen]; ok {
		rep.fail(r.Index, "signature", "%s by %s replays the signature of entry %d", r.Action, r.Actor.ID, at)
		return false
	}
	kr.used[seen] = r.Index
	if (counter != 0 || k.counter != 0) && counter <= k.counter {
		rep.fail(r.Index, "signature", "%s by %s: passkey counter %d does not exceed %d, seen before (a cloned key or a replay)", r.Action, r.Actor.ID, counter, k.counter)
		return false
	}
	k.counter = counter
	rep.Signed++
	return true
}
