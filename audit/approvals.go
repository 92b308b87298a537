package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Administrators' approvals that a policy may require to be personally signed: each puts a
// change another administrator proposed in force, and the keyring's trust rests on the first.
const (
	OpApproveKey        = "approve_key"         // a person's signing key: digest the key ID, body its holder
	OpApprovePolicy     = "approve_policy"      // a policy version: digest its rule set's, body the version
	OpApproveRoleChange = "approve_role_change" // an account change: digest the change ID, body what it does
)

// ApprovalStatement is the statement an administrator's approval makes.
func ApprovalStatement(person, op, digest, body string, t time.Time) Statement {
	return Statement{Person: person, Op: op, Digest: digest, Decision: "approve", Body: body, Time: t}
}

// RuleSetDigest is the hex SHA-256 of a policy's rule lines ("effect role op" each, as the
// policy.proposed record lists them), sorted, each once, one per line: a rule set is a set, so
// whoever lists it in another order (the table, the CLI) names it alike.
func RuleSetDigest(lines []string) string {
	lines = slices.Compact(slices.Sorted(slices.Values(lines)))
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Change is an account change as its approval's statement names it.
type Change struct {
	Kind        string // grant_role, revoke_role, designate, revoke_designation, create_org, create_user, retire_user
	User        string // the account changed (not yet known for create_user)
	Role        string
	Scope       string // of a designation
	Designation string // revoked
	Username    string // of create_user
	Org         string // of create_org and create_user
	OrgKind     string // of create_org: agency | commission
	// ValidFrom and ValidUntil bound a designation, RFC 3339 in UTC.
	ValidFrom, ValidUntil string
}

// Body says the change in one line, from what both its approval and its record hold.
func (c Change) Body() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	switch c.Kind {
	case "grant_role", "revoke_role":
		add("role", c.Role)
		add("user", c.User)
	case "designate":
		add("scope", c.Scope)
		add("user", c.User)
		add("from", c.ValidFrom)
		add("until", c.ValidUntil)
	case "revoke_designation":
		add("designation", c.Designation)
		add("user", c.User)
	case "retire_user":
		add("user", c.User)
	case "create_user":
		add("username", c.Username)
		add("org", c.Org)
		add("role", c.Role)
	case "create_org":
		add("org", c.Org)
		add("kind", c.OrgKind)
	}
	return strings.Join(append([]string{c.Kind}, parts...), " ")
}

// changeKinds names the account change each approval record applies.
var changeKinds = map[string]string{
	"role.granted": "grant_role", "role.revoked": "revoke_role", "designation.issued": "designate",
	"designation.revoked": "revoke_designation", "organisation.created": "create_org", "user.created": "create_user",
	"user.retired": "retire_user",
}

// approval reads an administrator's approval from its record: the operation a policy may
// require to be signed and the statement it makes. Records of other actions, and grants made
// by the system (seeding, single sign-on), are none.
func (p *replayer) approval(r *entry) (op string, statement func(time.Time) Statement, ok bool) {
	f := &r.facts
	switch r.Action {
	case KeyRegistered:
		return OpApproveKey, func(t time.Time) Statement {
			return ApprovalStatement(r.Actor.ID, OpApproveKey, f.Key.ID, f.Key.User, t)
		}, true
	case "policy.approved":
		digest := p.ps.proposed[f.PolicyName].digest
		return OpApprovePolicy, func(t time.Time) Statement {
			return ApprovalStatement(r.Actor.ID, OpApprovePolicy, digest, f.PolicyName, t)
		}, true
	}
	kind, isChange := changeKinds[r.Action]
	if !isChange || r.Actor.ID == "system" || !hasAny(r.Actor.Roles, []string{"admin"}) {
		return "", nil, false
	}
	return OpApproveRoleChange, func(t time.Time) Statement {
		c := Change{Kind: kind, User: f.User, Role: f.Role, Scope: f.Scope, Designation: f.Designation, Username: f.Username, Org: f.Org,
			OrgKind: f.Key.Kind, ValidFrom: inUTC(f.ValidFrom), ValidUntil: inUTC(f.ValidUntil)}
		return ApprovalStatement(r.Actor.ID, OpApproveRoleChange, f.Change, c.Body(), t)
	}, true
}

// inUTC spells an RFC 3339 time in UTC, as a statement names it; other text stays as it is.
func inUTC(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339Nano)
}
