package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// RoleChange is a proposed change to who holds a role or an executor designation. It applies
// only once a second administrator approves it.
type RoleChange struct {
	ID            string     `json:"id"`
	Kind          string     `json:"kind"` // grant_role | revoke_role | designate | revoke_designation
	User          string     `json:"user"`
	Role          authz.Role `json:"role,omitempty"`
	Scope         string     `json:"scope,omitempty"` // designate: npa | prefectural
	ValidFrom     *time.Time `json:"valid_from,omitempty"`
	ValidUntil    *time.Time `json:"valid_until,omitempty"`
	DesignationID string     `json:"designation,omitempty"` // revoke_designation
	Reason        string     `json:"reason"`
	ProposedBy    string     `json:"proposed_by"`
	ApprovedBy    string     `json:"approved_by,omitempty"`
}

func (s *Server) registerAdmin(mux Mux) {
	mux.HandleFunc("POST /api/v1/admin/role-changes", s.auth(s.proposeRoleChange))
	mux.HandleFunc("POST /api/v1/admin/role-changes/{id}/approve", s.auth(s.approveRoleChange))
	s.registerPolicyAdmin(mux)
}

// requireAdmin refuses, and audits, a non-administrator.
func (s *Server) requireAdmin(r *http.Request, action string) error {
	a := actorOf(r)
	if a.Has(authz.Admin) {
		return nil
	}
	err := &authz.Denied{Rule: "role", Reason: "only administrators manage roles and designations"}
	s.refused(r.Context(), a, "", "", action, "", err)
	return err
}

func (s *Server) proposeRoleChange(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := actorOf(r)
	if err := s.requireAdmin(r, "role_change.propose"); err != nil {
		s.fail(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	var c RoleChange
	if err := decode(r, &c); err != nil {
		s.fail(w, r, err)
		return
	}
	if !slices.Contains([]string{"grant_role", "revoke_role", "designate", "revoke_designation"}, c.Kind) {
		s.fail(w, r, &measure.FieldError{Field: "kind", Message: "must be grant_role, revoke_role, designate or revoke_designation"})
		return
	}
	if strings.TrimSpace(c.Reason) == "" {
		s.fail(w, r, &measure.FieldError{Field: "reason", Message: "is required"})
		return
	}
	if c.Kind == "designate" {
		if c.Scope != "npa" && c.Scope != "prefectural" {
			s.fail(w, r, &measure.FieldError{Field: "scope", Message: "must be npa or prefectural"})
			return
		}
		if c.ValidFrom == nil || c.ValidUntil == nil || !c.ValidUntil.After(*c.ValidFrom) {
			s.fail(w, r, &measure.FieldError{Field: "valid_until", Message: "valid_from and a later valid_until are required"})
			return
		}
	}
	if err := s.checkRoleChange(ctx, c); err != nil {
		s.refused(ctx, a, "", "", "role_change.propose", "", err)
		s.fail(w, r, err)
		return
	}
	c.ID, c.ProposedBy = newID("rc-"), a.ID
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var designation *string
		if c.DesignationID != "" {
			designation = &c.DesignationID
		}
		if _, err := tx.Exec(ctx, `INSERT INTO role_changes (id, kind, user_id, role, scope, valid_from, valid_until, designation_id, reason, proposed_by)
			VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8, $9, $10)`,
			c.ID, c.Kind, c.User, string(c.Role), c.Scope, c.ValidFrom, c.ValidUntil, designation, c.Reason, c.ProposedBy); err != nil {
			return err
		}
		return audit.Append(ctx, tx, "role_change/"+c.ID, &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "role_change.proposed", Reason: c.Reason,
			Details: map[string]any{"change": c.ID, "kind": c.Kind, "user": c.User, "role": string(c.Role), "scope": c.Scope, "designation": c.DesignationID}})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// checkRoleChange refuses a change that would break separation of duties.
func (s *Server) checkRoleChange(ctx context.Context, c RoleChange) error {
	target, err := loadActor(ctx, s.DB, c.User)
	if errors.Is(err, pgx.ErrNoRows) {
		return &measure.FieldError{Field: "user", Message: "no such user"}
	}
	if err != nil {
		return err
	}
	switch c.Kind {
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

// approveRoleChange applies a proposal approved by a second administrator.
func (s *Server) approveRoleChange(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := actorOf(r)
	if err := s.requireAdmin(r, "role_change.approve"); err != nil {
		s.fail(w, r, err)
		return
	}
	var c RoleChange
	var role, scope, designation, approvedBy *string
	err := s.DB.QueryRow(ctx, `SELECT id, kind, user_id, role, scope, valid_from, valid_until, designation_id, reason, proposed_by, approved_by
		FROM role_changes WHERE id = $1`, r.PathValue("id")).
		Scan(&c.ID, &c.Kind, &c.User, &role, &scope, &c.ValidFrom, &c.ValidUntil, &designation, &c.Reason, &c.ProposedBy, &approvedBy)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if approvedBy != nil {
		s.fail(w, r, &Error{Status: 409, Code: "conflict", Message: "role change " + c.ID + " is already approved"})
		return
	}
	if role != nil {
		c.Role = authz.Role(*role)
	}
	if scope != nil {
		c.Scope = *scope
	}
	if designation != nil {
		c.DesignationID = *designation
	}
	var refusal error
	switch {
	case c.ProposedBy == a.ID:
		refusal = &authz.Denied{Rule: "two-person", Reason: "a role change must be approved by an administrator other than its proposer"}
	case c.User == a.ID:
		refusal = &authz.Denied{Rule: "two-person", Reason: "administrators do not approve changes to their own roles"}
	default:
		refusal = s.checkRoleChange(ctx, c) // still valid now?
		var approved bool
		if refusal != nil && s.DB.QueryRow(ctx, `SELECT approved_by IS NOT NULL FROM role_changes WHERE id = $1`, c.ID).Scan(&approved) == nil && approved {
			// Another approval of this change landed meanwhile: that, not the change, is the news.
			s.fail(w, r, &Error{Status: 409, Code: "conflict", Message: "role change " + c.ID + " is already approved"})
			return
		}
	}
	if refusal != nil {
		s.refused(ctx, a, "", "", "role_change.approve", "", refusal)
		s.fail(w, r, refusal)
		return
	}
	c.ApprovedBy = a.ID
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE role_changes SET approved_by = $2, approved_at = now() WHERE id = $1 AND approved_by IS NULL`, c.ID, a.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &Error{Status: 409, Code: "conflict", Message: "role change " + c.ID + " was approved by another request at the same time"}
		}
		var action string
		details := map[string]any{"change": c.ID, "user": c.User, "proposed_by": c.ProposedBy}
		switch c.Kind {
		case "grant_role":
			action, details["role"] = "role.granted", string(c.Role)
			_, err = tx.Exec(ctx, `INSERT INTO role_grants (user_id, role) VALUES ($1, $2)`, c.User, c.Role)
		case "revoke_role":
			action, details["role"] = "role.revoked", string(c.Role)
			_, err = tx.Exec(ctx, `DELETE FROM role_grants WHERE user_id = $1 AND role = $2`, c.User, c.Role)
		case "designate":
			id := newID("d-")
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
		return audit.Append(ctx, tx, "role_change/"+c.ID+"/approved", &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: action, Reason: c.Reason, Details: details})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) registerPolicyAdmin(mux Mux) {
	mux.HandleFunc("GET /api/v1/admin/policy", s.auth(s.getPolicy))
	mux.HandleFunc("POST /api/v1/admin/policy", s.auth(s.proposePolicy))
	mux.HandleFunc("POST /api/v1/admin/policy/{version}/approve", s.auth(s.approvePolicy))
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.Authz.Version(), "rules": s.Authz.Rules()})
}

// proposePolicy stores a complete new rule set as the next, not yet approved, version.
func (s *Server) proposePolicy(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := actorOf(r)
	if err := s.requireAdmin(r, "policy.propose"); err != nil {
		s.fail(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	var in struct {
		Rules  []authz.Rule `json:"rules"`
		Reason string       `json:"reason"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if strings.TrimSpace(in.Reason) == "" {
		s.fail(w, r, &measure.FieldError{Field: "reason", Message: "is required"})
		return
	}
	if err := authz.CheckPolicy(in.Rules); err != nil {
		s.refused(ctx, a, "", "", "policy.propose", "", err)
		s.fail(w, r, err)
		return
	}
	var version int
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO authz_policy_versions (version, proposed_by, reason)
			SELECT COALESCE(max(version), 0) + 1, $1, $2 FROM authz_policy_versions RETURNING version`, a.ID, in.Reason).Scan(&version); err != nil {
			return err
		}
		for _, rule := range in.Rules {
			if _, err := tx.Exec(ctx, `INSERT INTO authz_rules (version, role, op, effect) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
				version, rule.Role, rule.Op, rule.Effect); err != nil {
				return err
			}
		}
		return audit.Append(ctx, tx, fmt.Sprintf("policy/v%d/proposed", version), &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "policy.proposed", Reason: in.Reason,
			Details: map[string]any{"version": fmt.Sprintf("v%d", version), "rules": len(in.Rules)}})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"version": fmt.Sprintf("v%d", version)})
}

// approvePolicy puts a proposed version in force; replicas reload it on the notification.
func (s *Server) approvePolicy(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := actorOf(r)
	if err := s.requireAdmin(r, "policy.approve"); err != nil {
		s.fail(w, r, err)
		return
	}
	var version int
	if _, err := fmt.Sscanf(strings.TrimPrefix(r.PathValue("version"), "v"), "%d", &version); err != nil {
		s.fail(w, r, &measure.FieldError{Field: "version", Message: "must look like v2"})
		return
	}
	var proposer string
	if err := s.DB.QueryRow(ctx, `SELECT proposed_by FROM authz_policy_versions WHERE version = $1 AND approved_by IS NULL`, version).Scan(&proposer); err != nil {
		s.fail(w, r, err)
		return
	}
	if proposer == a.ID {
		err := &authz.Denied{Rule: "two-person", Reason: "a policy must be approved by an administrator other than its proposer"}
		s.refused(ctx, a, "", "", "policy.approve", "", err)
		s.fail(w, r, err)
		return
	}
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE authz_policy_versions SET approved_by = $2, approved_at = now() WHERE version = $1 AND approved_by IS NULL`, version, a.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &Error{Status: 409, Code: "conflict", Message: fmt.Sprintf("policy v%d was approved by another request at the same time", version)}
		}
		return audit.Append(ctx, tx, fmt.Sprintf("policy/v%d/approved", version), &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "policy.approved",
			Details: map[string]any{"version": fmt.Sprintf("v%d", version), "proposed_by": proposer}})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": fmt.Sprintf("v%d", version)})
}
