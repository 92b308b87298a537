package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// RoleChange is a proposed change to the accounts: an organisation or a user created, a user
// retired, a role granted or revoked, an executor designated or a designation revoked. It
// applies only once a second administrator approves it.
type RoleChange struct {
	ID            string     `json:"id"`
	Kind          string     `json:"kind"` // see Kinds
	User          string     `json:"user,omitempty"`
	Account       *Account   `json:"account,omitempty"` // create_org, create_user
	Role          authz.Role `json:"role,omitempty"`
	Scope         string     `json:"scope,omitempty"` // designate: npa | prefectural
	ValidFrom     *time.Time `json:"valid_from,omitempty"`
	ValidUntil    *time.Time `json:"valid_until,omitempty"`
	DesignationID string     `json:"designation,omitempty"` // revoke_designation
	Reason        string     `json:"reason"`
	ProposedBy    string     `json:"proposed_by"`
	ApprovedBy    string     `json:"approved_by,omitempty"`
	// EnrolmentCode is the one-time code with which a created local user sets a password,
	// given once, to the approving administrator, to pass on out of band.
	EnrolmentCode string `json:"enrolment_code,omitempty"`
}

// Kinds of account change.
var Kinds = []string{"create_org", "create_user", "retire_user", "grant_role", "revoke_role", "designate", "revoke_designation"}

// requireAdmin refuses, and audits, a non-administrator.
func (s *Service) requireAdmin(ctx context.Context, a authz.Actor, action string) error {
	if a.Has(authz.Admin) {
		return nil
	}
	return s.refuse(ctx, a, On{}, action, &authz.Denied{Rule: "role", Reason: "only administrators manage accounts, roles, designations and the policy"})
}

// check checks a proposal's form.
func (c RoleChange) check() error {
	if !slices.Contains(Kinds, c.Kind) {
		return &measure.FieldError{Field: "kind", Message: fmt.Sprintf("must be one of %v", Kinds)}
	}
	if err := checkReason(c.Reason); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{{"user", c.User}, {"role", string(c.Role)}, {"designation", c.DesignationID}} {
		if fe := measure.CheckLine(f.name, f.value, measure.MaxID); fe != nil {
			return fe
		}
	}
	if c.Kind == "create_org" || c.Kind == "create_user" {
		if c.Account == nil {
			return &measure.FieldError{Field: "account", Message: "is required for " + c.Kind}
		}
		return measure.Within("account", c.Account.check(c.Kind))
	}
	if c.Account != nil {
		return &measure.FieldError{Field: "account", Message: "is only for create_org and create_user"}
	}
	if c.User == "" {
		return &measure.FieldError{Field: "user", Message: "is required for " + c.Kind}
	}
	if c.Kind == "designate" {
		if c.Scope != "npa" && c.Scope != "prefectural" {
			return &measure.FieldError{Field: "scope", Message: "must be npa or prefectural"}
		}
		if c.ValidFrom == nil || c.ValidUntil == nil || !c.ValidUntil.After(*c.ValidFrom) {
			return &measure.FieldError{Field: "valid_until", Message: "valid_from and a later valid_until are required"}
		}
	}
	return nil
}

func checkReason(reason string) error {
	if fe := measure.CheckText("reason", reason, measure.MaxText); fe != nil {
		return fe
	}
	if strings.TrimSpace(reason) == "" {
		return &measure.FieldError{Field: "reason", Message: "is required"}
	}
	return nil
}

// ProposeRoleChange records a change for a second administrator to approve.
func (s *Service) ProposeRoleChange(ctx context.Context, a authz.Actor, c RoleChange) (RoleChange, error) {
	const action = "role_change.propose"
	if err := s.requireAdmin(ctx, a, action); err != nil {
		return c, err
	}
	if err := c.check(); err != nil {
		return c, s.refuse(ctx, a, On{}, action, err)
	}
	if err := s.checkRoleChange(ctx, c); err != nil {
		return c, s.refuse(ctx, a, On{}, action, err)
	}
	c.ID, c.ProposedBy, c.ApprovedBy = NewID("rc-"), a.ID, ""
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var designation *string
		if c.DesignationID != "" {
			designation = &c.DesignationID
		}
		if _, err := tx.Exec(ctx, `INSERT INTO role_changes (id, kind, user_id, role, scope, valid_from, valid_until, designation_id, reason, proposed_by, account)
			VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8, $9, $10, $11)`,
			c.ID, c.Kind, c.User, string(c.Role), c.Scope, c.ValidFrom, c.ValidUntil, designation, c.Reason, c.ProposedBy, c.Account); err != nil {
			return err
		}
		return s.append(ctx, tx, a, "role_change/"+c.ID, &audit.Record{Action: "role_change.proposed", Reason: c.Reason, Details: c.proposal()})
	})
	if err != nil {
		return c, fmt.Errorf("propose role change: %w", err)
	}
	return c, nil
}

// proposal is what a change's proposal record holds: all of it that its approval applies.
func (c RoleChange) proposal() map[string]any {
	d := map[string]any{"change": c.ID, "kind": c.Kind, "user": c.User, "role": string(c.Role), "scope": c.Scope, "designation": c.DesignationID}
	if c.Account != nil {
		d["account"] = c.Account.details()
	}
	for k, t := range map[string]*time.Time{"valid_from": c.ValidFrom, "valid_until": c.ValidUntil} {
		if t != nil {
			d[k] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	return d
}

// loggedChange refuses a pending change that the table holds otherwise than its proposal's
// record: a proposer, user, role, scope, validity or account edited in SQL would otherwise be
// applied on a second administrator's approval of what it was. Like a role edited in SQL, it
// halts the log and raises an alert.
func (s *Service) loggedChange(ctx context.Context, c RoleChange) error {
	r, err := s.trustedRecord(ctx, "role_change/"+c.ID)
	if err != nil {
		return err
	}
	differs := r == nil || r.Action != "role_change.proposed" || r.Actor.ID != c.ProposedBy || r.Reason != c.Reason
	if !differs {
		var want map[string]any
		b, _ := json.Marshal(c.proposal())
		_ = json.Unmarshal(b, &want)
		for k, v := range want {
			got, logged := r.Details[k]
			switch {
			case !logged && (k == "valid_from" || k == "valid_until"):
				// Proposed before proposals recorded the validity.
			case k == "valid_from" || k == "valid_until":
				x, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(v))
				y, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(got))
				differs = differs || err1 != nil || err2 != nil || !sameMicro(x, y)
			default:
				differs = differs || !reflect.DeepEqual(got, v)
			}
		}
		for _, k := range []string{"valid_from", "valid_until"} {
			_, wanted := want[k]
			_, logged := r.Details[k]
			differs = differs || (logged && !wanted)
		}
	}
	if differs {
		return s.tampered(ctx, &tamperedGrant{what: "role change " + c.ID, table: "pending", logged: "proposed otherwise, or not by " + c.ProposedBy}, -1)
	}
	return nil
}

// checkRoleChange refuses a change that would break separation of duties, or that no longer
// applies.
func (s *Service) checkRoleChange(ctx context.Context, c RoleChange) error {
	switch c.Kind {
	case "create_org", "create_user":
		return s.checkAccount(ctx, c)
	}
	target, err := loadActor(ctx, s.DB, c.User)
	if errors.Is(err, pgx.ErrNoRows) {
		return &measure.FieldError{Field: "user", Message: "no such user"}
	}
	if err != nil {
		return err
	}
	var retired bool
	if err := s.DB.QueryRow(ctx, `SELECT retired_at IS NOT NULL FROM users WHERE id = $1`, c.User).Scan(&retired); err != nil {
		return fmt.Errorf("read user %s: %w", c.User, err)
	}
	if retired {
		return &measure.FieldError{Field: "user", Message: target.Username + " is retired"}
	}
	switch c.Kind {
	case "retire_user":
		return nil
	case "grant_role":
		if target.Has(c.Role) {
			return &measure.FieldError{Field: "role", Message: fmt.Sprintf("%s already holds %s", target.Username, c.Role)}
		}
		return authz.CheckGrant(target.Roles, c.Role)
	case "revoke_role":
		if !target.Has(c.Role) {
			return &measure.FieldError{Field: "role", Message: fmt.Sprintf("%s does not hold %s", target.Username, c.Role)}
		}
	case "designate":
		if !target.Has(authz.Executor) {
			return &authz.Denied{Rule: "SoD-4", Reason: "only an executor can be designated"}
		}
	case "revoke_designation":
		var owner string
		if err := s.DB.QueryRow(ctx, `SELECT user_id FROM executor_designations WHERE id = $1 AND revoked_at IS NULL`, c.DesignationID).Scan(&owner); err != nil || owner != c.User {
			return &measure.FieldError{Field: "designation", Message: "no such active designation of this user"}
		}
	}
	return nil
}

// ApproveRoleChange applies a proposal approved by a second administrator, who signs the
// approval when the policy says so.
func (s *Service) ApproveRoleChange(ctx context.Context, a authz.Actor, id string, sig *audit.Signature) (RoleChange, error) {
	const action = "role_change.approve"
	var c RoleChange
	if err := s.requireAdmin(ctx, a, action); err != nil {
		return c, err
	}
	c, approved, err := s.roleChange(ctx, id)
	if err != nil {
		if refusal.Is(err) {
			return c, s.refuse(ctx, a, On{}, action, err)
		}
		return c, err
	}
	already := refusal.New(refusal.Conflict, "role change %s is already approved", c.ID)
	if approved {
		return c, already
	}
	if err := s.loggedChange(ctx, c); err != nil {
		return c, s.refuse(ctx, a, On{}, action, err)
	}
	var refused error
	switch {
	case c.ProposedBy == a.ID:
		refused = &authz.Denied{Rule: "two-person", Reason: "a role change must be approved by an administrator other than its proposer"}
	case c.User == a.ID:
		refused = &authz.Denied{Rule: "two-person", Reason: "administrators do not approve changes to their own roles"}
	default:
		refused = s.checkRoleChange(ctx, c) // still valid now?
		var approved bool
		if refused != nil && s.DB.QueryRow(ctx, `SELECT approved_by IS NOT NULL FROM role_changes WHERE id = $1`, c.ID).Scan(&approved) == nil && approved {
			// Another approval of this change landed meanwhile: that, not the change, is the news.
			return c, already
		}
	}
	if refused != nil {
		return c, s.refuse(ctx, a, On{}, action, refused)
	}
	signed, err := s.checkSigned(ctx, a, authz.OpApproveRoleChange, sig, false, func(t time.Time) audit.Statement {
		return audit.ApprovalStatement(a.ID, audit.OpApproveRoleChange, c.ID, c.change().Body(), t)
	})
	if err != nil {
		return c, s.refuse(ctx, a, On{}, action, err)
	}
	c.ApprovedBy = a.ID
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE role_changes SET approved_by = $2, approved_at = now() WHERE id = $1 AND approved_by IS NULL`, c.ID, a.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refusal.New(refusal.Conflict, "role change %s was approved by another request at the same time", c.ID)
		}
		var action string
		details := map[string]any{"change": c.ID, "user": c.User, "proposed_by": c.ProposedBy}
		if signed != nil {
			details["signature"] = signed
		}
		switch c.Kind {
		case "create_org", "create_user", "retire_user":
			action, err = s.applyAccount(ctx, tx, &c, details)
		case "grant_role":
			action, details["role"] = "role.granted", string(c.Role)
			_, err = tx.Exec(ctx, `INSERT INTO role_grants (user_id, role) VALUES ($1, $2)`, c.User, c.Role)
		case "revoke_role":
			action, details["role"] = "role.revoked", string(c.Role)
			_, err = tx.Exec(ctx, `DELETE FROM role_grants WHERE user_id = $1 AND role = $2`, c.User, c.Role)
		case "designate":
			id := NewID("d-")
			action, details["designation"], details["scope"] = "designation.issued", id, c.Scope
			details["valid_from"], details["valid_until"] = c.ValidFrom, c.ValidUntil
			_, err = tx.Exec(ctx, `INSERT INTO executor_designations (id, user_id, scope, valid_from, valid_until) VALUES ($1, $2, $3, $4, $5)`,
				id, c.User, c.Scope, c.ValidFrom, c.ValidUntil)
		case "revoke_designation":
			action, details["designation"] = "designation.revoked", c.DesignationID
			_, err = tx.Exec(ctx, `UPDATE executor_designations SET revoked_at = now() WHERE id = $1`, c.DesignationID)
		}
		if err != nil {
			return err
		}
		return s.append(ctx, tx, a, "role_change/"+c.ID+"/approved", &audit.Record{Action: action, Reason: c.Reason, Details: details})
	})
	if err != nil && !refusal.Is(err) {
		err = fmt.Errorf("apply role change: %w", err)
	}
	return c, err
}

// Policy is the authorization policy in force.
type Policy struct {
	Version string       `json:"version"`
	Rules   []authz.Rule `json:"rules"`
}

// Policy returns the policy in force; anyone signed in may read it.
func (s *Service) Policy() Policy {
	return Policy{Version: s.Authz.Version(), Rules: s.Authz.Rules()}
}

// ProposePolicy stores a complete new rule set as the next, not yet approved, version.
func (s *Service) ProposePolicy(ctx context.Context, a authz.Actor, rules []authz.Rule, reason string) (string, error) {
	const action = "policy.propose"
	if err := s.requireAdmin(ctx, a, action); err != nil {
		return "", err
	}
	if err := checkReason(reason); err != nil {
		return "", s.refuse(ctx, a, On{}, action, err)
	}
	if err := authz.CheckPolicy(rules); err != nil {
		return "", s.refuse(ctx, a, On{}, action, err)
	}
	var version int
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO authz_policy_versions (version, proposed_by, reason)
			SELECT COALESCE(max(version), 0) + 1, $1, $2 FROM authz_policy_versions RETURNING version`, a.ID, reason).Scan(&version); err != nil {
			return err
		}
		for _, rule := range rules {
			if _, err := tx.Exec(ctx, `INSERT INTO authz_rules (version, role, op, effect) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
				version, rule.Role, rule.Op, rule.Effect); err != nil {
				return err
			}
		}
		return s.append(ctx, tx, a, fmt.Sprintf("policy/v%d/proposed", version), &audit.Record{Action: "policy.proposed", Reason: reason,
			Details: map[string]any{"version": fmt.Sprintf("v%d", version), "rules": len(rules), "rule_set": ruleSet(rules)}})
	})
	if err != nil {
		return "", fmt.Errorf("propose policy: %w", err)
	}
	return fmt.Sprintf("v%d", version), nil
}

// ruleSet writes a policy's rules as the log records them, "effect role op" each, so that the
// auditor's replay judges every record under the rules in force at its time.
func ruleSet(rules []authz.Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.Effect + " " + string(r.Role) + " " + r.Op
	}
	return out
}

// ApprovePolicy puts a proposed version in force; replicas reload it on the notification. The
// approving administrator signs it when the policy in force says so.
func (s *Service) ApprovePolicy(ctx context.Context, a authz.Actor, name string, sig *audit.Signature) (string, error) {
	const action = "policy.approve"
	if err := s.requireAdmin(ctx, a, action); err != nil {
		return "", err
	}
	var version int
	if _, err := fmt.Sscanf(strings.TrimPrefix(name, "v"), "%d", &version); err != nil {
		return "", s.refuse(ctx, a, On{}, action, &measure.FieldError{Field: "version", Message: "must look like v2"})
	}
	var proposer string
	err := s.DB.QueryRow(ctx, `SELECT proposed_by FROM authz_policy_versions WHERE version = $1 AND approved_by IS NULL`, version).Scan(&proposer)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", s.refuse(ctx, a, On{}, action, refusal.New(refusal.NotFound, "no policy v%d waiting for approval", version))
	}
	if err != nil {
		return "", fmt.Errorf("read policy v%d: %w", version, err)
	}
	// The proposer as the log recorded it: one edited in SQL would let its proposer approve it.
	logged, err := s.trustedRecord(ctx, fmt.Sprintf("policy/v%d/proposed", version))
	if err != nil {
		return "", err
	}
	if logged == nil || logged.Actor.ID != proposer {
		return "", s.refuse(ctx, a, On{}, action, s.tampered(ctx, &tamperedGrant{what: fmt.Sprintf("policy v%d", version), table: "proposed by " + proposer,
			logged: "proposed otherwise, or by another"}, -1))
	}
	if proposer == a.ID {
		return "", s.refuse(ctx, a, On{}, action, &authz.Denied{Rule: "two-person", Reason: "a policy must be approved by an administrator other than its proposer"})
	}
	digest, err := s.proposedRuleSet(ctx, version)
	if err != nil {
		return "", err
	}
	signed, err := s.checkSigned(ctx, a, authz.OpApprovePolicy, sig, false, func(t time.Time) audit.Statement {
		return audit.ApprovalStatement(a.ID, audit.OpApprovePolicy, digest, fmt.Sprintf("v%d", version), t)
	})
	if err != nil {
		return "", s.refuse(ctx, a, On{}, action, err)
	}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE authz_policy_versions SET approved_by = $2, approved_at = now() WHERE version = $1 AND approved_by IS NULL`, version, a.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refusal.New(refusal.Conflict, "policy v%d was approved by another request at the same time", version)
		}
		details := map[string]any{"version": fmt.Sprintf("v%d", version), "proposed_by": proposer}
		if signed != nil {
			details["signature"] = signed
		}
		return s.append(ctx, tx, a, fmt.Sprintf("policy/v%d/approved", version), &audit.Record{Action: "policy.approved", Details: details})
	})
	if err != nil && !refusal.Is(err) {
		err = fmt.Errorf("approve policy: %w", err)
	}
	return fmt.Sprintf("v%d", version), err
}

// PolicyProposal is a policy version waiting for a second administrator.
type PolicyProposal struct {
	Version    string       `json:"version"`
	ProposedBy string       `json:"proposed_by"`
	Reason     string       `json:"reason"`
	ProposedAt time.Time    `json:"proposed_at"`
	Rules      []authz.Rule `json:"rules"`
}

// PendingPolicies lists the proposed policy versions not yet approved, oldest first.
func (s *Service) PendingPolicies(ctx context.Context, a authz.Actor) ([]PolicyProposal, error) {
	if err := s.requireAdmin(ctx, a, "read.policy_proposals"); err != nil {
		return nil, err
	}
	rows, err := s.DB.Query(ctx, `SELECT 'v' || p.version, p.proposed_by, p.reason, p.proposed_at,
			COALESCE(jsonb_agg(jsonb_build_object('role', r.role, 'op', r.op, 'effect', r.effect) ORDER BY r.role, r.op)
				FILTER (WHERE r.role IS NOT NULL), '[]')
		FROM authz_policy_versions p LEFT JOIN authz_rules r ON r.version = p.version
		WHERE p.approved_by IS NULL GROUP BY p.version ORDER BY p.version LIMIT $1`, MaxPage)
	if err != nil {
		return nil, fmt.Errorf("list policy proposals: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PolicyProposal, error) {
		var p PolicyProposal
		err := row.Scan(&p.Version, &p.ProposedBy, &p.Reason, &p.ProposedAt, &p.Rules)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list policy proposals: %w", err)
	}
	if out == nil {
		out = []PolicyProposal{}
	}
	return out, nil
}

// roleChange reads a proposed change, and whether it is approved already.
func (s *Service) roleChange(ctx context.Context, id string) (c RoleChange, approved bool, err error) {
	var user, role, scope, designation, approvedBy *string
	err = s.DB.QueryRow(ctx, `SELECT id, kind, user_id, role, scope, valid_from, valid_until, designation_id, reason, proposed_by, approved_by, account
		FROM role_changes WHERE id = $1`, id).
		Scan(&c.ID, &c.Kind, &user, &role, &scope, &c.ValidFrom, &c.ValidUntil, &designation, &c.Reason, &c.ProposedBy, &approvedBy, &c.Account)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, refusal.New(refusal.NotFound, "no role change %s", measure.Clip(id, 64))
	}
	if err != nil {
		return c, false, fmt.Errorf("read role change: %w", err)
	}
	for _, x := range []struct {
		dst *string
		src *string
	}{{&c.User, user}, {(*string)(&c.Role), role}, {&c.Scope, scope}, {&c.DesignationID, designation}} {
		if x.src != nil {
			*x.dst = *x.src
		}
	}
	return c, approvedBy != nil, nil
}

// change is what an approval of c states, as its record will say it.
func (c RoleChange) change() audit.Change {
	ch := audit.Change{Kind: c.Kind, User: c.User, Role: string(c.Role), Scope: c.Scope, Designation: c.DesignationID}
	if c.Account != nil {
		ch.Username, ch.Org, ch.OrgKind = c.Account.Username, c.Account.OrgID, c.Account.OrgKind
	}
	if c.ValidFrom != nil && c.ValidUntil != nil {
		ch.ValidFrom, ch.ValidUntil = c.ValidFrom.UTC().Format(time.RFC3339Nano), c.ValidUntil.UTC().Format(time.RFC3339Nano)
	}
	return ch
}
