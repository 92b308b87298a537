package service

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// Account is what create_org and create_user create.
type Account struct {
	OrgID       string `json:"org_id"`                 // create_org: the new organisation's ID; create_user: the user's
	OrgName     string `json:"org_name,omitempty"`     // create_org
	OrgKind     string `json:"org_kind,omitempty"`     // create_org: agency | commission
	Username    string `json:"username,omitempty"`     // create_user
	DisplayName string `json:"display_name,omitempty"` // create_user
}

var (
	orgID    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,31}$`)
	username = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)
)

// EnrolmentTTL is how long a new user's enrolment code stays good.
const EnrolmentTTL = 72 * time.Hour

func (a *Account) check(kind string) error {
	if !orgID.MatchString(a.OrgID) {
		return &measure.FieldError{Field: "org_id", Message: "must be 2 to 32 lower-case letters, digits or hyphens"}
	}
	switch kind {
	case "create_org":
		if fe := measure.CheckLine("org_name", a.OrgName, measure.MaxLine); fe != nil || a.OrgName == "" {
			return &measure.FieldError{Field: "org_name", Message: "is required: one line"}
		}
		if a.OrgKind != "agency" && a.OrgKind != "commission" {
			return &measure.FieldError{Field: "org_kind", Message: "must be agency or commission"}
		}
		if a.Username != "" || a.DisplayName != "" {
			return &measure.FieldError{Field: "username", Message: "is for create_user"}
		}
	case "create_user":
		if !username.MatchString(a.Username) {
			return &measure.FieldError{Field: "username", Message: "must be 2 to 64 lower-case letters, digits, dots, underscores or hyphens"}
		}
		if fe := measure.CheckLine("display_name", a.DisplayName, measure.MaxLine); fe != nil || a.DisplayName == "" {
			return &measure.FieldError{Field: "display_name", Message: "is required: one line"}
		}
		if a.OrgName != "" || a.OrgKind != "" {
			return &measure.FieldError{Field: "org_name", Message: "is for create_org"}
		}
	}
	return nil
}

func (a *Account) details() map[string]any {
	d := map[string]any{"org_id": a.OrgID}
	for k, v := range map[string]string{"org_name": a.OrgName, "org_kind": a.OrgKind, "username": a.Username, "display_name": a.DisplayName} {
		if v != "" {
			d[k] = v
		}
	}
	return d
}

// checkAccount refuses creating what exists, a user in an organisation that does not, or a
// first role the organisation's kind forbids (SoD-2).
func (s *Service) checkAccount(ctx context.Context, c RoleChange) error {
	a := c.Account
	var orgExists bool
	var kind string
	err := s.DB.QueryRow(ctx, `SELECT true, kind FROM organisations WHERE id = $1`, a.OrgID).Scan(&orgExists, &kind)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read organisation: %w", err)
	}
	if c.Kind == "create_org" {
		if orgExists {
			return &measure.FieldError{Field: "account.org_id", Message: "an organisation " + a.OrgID + " exists"}
		}
		return nil
	}
	if !orgExists {
		return &measure.FieldError{Field: "account.org_id", Message: "no organisation " + a.OrgID}
	}
	var taken bool
	if err := s.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)`, a.Username).Scan(&taken); err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	if taken {
		return &measure.FieldError{Field: "account.username", Message: a.Username + " is taken"}
	}
	if c.Role != "" {
		if err := authz.CheckGrant(nil, c.Role); err != nil {
			return err
		}
		if (kind == "agency" && authz.CommissionRole(c.Role)) || (kind == "commission" && authz.AgencyRole(c.Role)) {
			return &authz.Denied{Rule: "SoD-2", Reason: fmt.Sprintf("the %s role is not held in a %s organisation", c.Role, kind)}
		}
	}
	return nil
}

// applyAccount applies an approved create_org, create_user or retire_user in tx and returns
// the audit action.
func (s *Service) applyAccount(ctx context.Context, tx pgx.Tx, c *RoleChange, details map[string]any) (string, error) {
	switch c.Kind {
	case "create_org":
		a := c.Account
		details["org"], details["name"], details["kind"] = a.OrgID, a.OrgName, a.OrgKind
		_, err := tx.Exec(ctx, `INSERT INTO organisations (id, name, kind) VALUES ($1, $2, $3)`, a.OrgID, a.OrgName, a.OrgKind)
		return "organisation.created", err
	case "create_user":
		a := c.Account
		c.User = NewID("u-")
		code, hash := newEnrolmentCode()
		details["user"], details["username"], details["org"] = c.User, a.Username, a.OrgID
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, username, display_name, org_id, password_hash, enrolment_hash, enrolment_expires_at)
			VALUES ($1, $2, $3, $4, '', $5, now() + $6::interval)`, c.User, a.Username, a.DisplayName, a.OrgID, hash, EnrolmentTTL.String()); err != nil {
			return "", err
		}
		if c.Role != "" {
			details["role"] = string(c.Role)
			if _, err := tx.Exec(ctx, `INSERT INTO role_grants (user_id, role) VALUES ($1, $2)`, c.User, c.Role); err != nil {
				return "", err
			}
		}
		c.EnrolmentCode = code
		return "user.created", nil
	default: // retire_user
		if _, err := tx.Exec(ctx, `UPDATE users SET retired_at = now(), enrolment_hash = NULL WHERE id = $1`, c.User); err != nil {
			return "", err
		}
		_, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, c.User)
		return "user.retired", err
	}
}

// newEnrolmentCode returns a one-time code and the hash stored for it.
func newEnrolmentCode() (code string, hash []byte) {
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	code = "enrol_" + hex.EncodeToString(raw)
	return code, tokenHash(code)
}

// MinPassword and MaxPassword bound a local password (bcrypt reads at most 72 bytes).
const (
	MinPassword = 12
	MaxPassword = 72
)

// Enrol sets a new local user's password with the one-time code their administrator passed
// on. Wrong codes count as failed logins.
func (s *Service) Enrol(ctx context.Context, username, code, password, addr string) error {
	if len(password) < MinPassword || len(password) > MaxPassword {
		return &measure.FieldError{Field: "password", Message: fmt.Sprintf("must be %d to %d bytes", MinPassword, MaxPassword)}
	}
	var id string
	var stored []byte
	var expires *time.Time
	err := s.DB.QueryRow(ctx, `SELECT id, enrolment_hash, enrolment_expires_at FROM users WHERE username = $1 AND retired_at IS NULL`,
		username).Scan(&id, &stored, &expires)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read user: %w", err)
	}
	if stored == nil || expires == nil || time.Now().After(*expires) || subtle.ConstantTimeCompare(stored, tokenHash(code)) != 1 {
		s.loginFailed(ctx, username, addr, "wrong, used or expired enrolment code")
		return refusal.New(refusal.Unauthenticated, "wrong, used or expired enrolment code: ask an administrator for a new account")
	}
	hash, err := HashPassword(password, s.PasswordCost)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, enrolment_hash = NULL, enrolment_expires_at = NULL
			WHERE id = $1 AND enrolment_hash = $3`, id, hash, stored)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refusal.New(refusal.Conflict, "this enrolment code was used at the same time")
		}
		a, err := loadActor(ctx, tx, id)
		if err != nil {
			return err
		}
		return s.append(ctx, tx, a, "enrol/"+id, &audit.Record{Action: "user.enrolled", Details: map[string]any{"user": id}})
	})
	if err != nil && !refusal.Is(err) {
		return fmt.Errorf("enrol %s: %w", username, err)
	}
	return err
}

// ErrBootstrapClosed refuses a bootstrap once two administrators exist.
var ErrBootstrapClosed = errors.New("bootstrap is closed: two administrators exist, and they create every other account (takedown admin)")

// Bootstrap creates one of the first two administrators, with their organisation if it is new,
// and returns the user's enrolment code. It is the one way in to an empty installation, run
// by an operator with access to the database (takedownd bootstrap); once two administrators
// exist it refuses, and they create everyone else.
func Bootstrap(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, app *audit.Appender, org, orgName, user, displayName string) (id, code string, err error) {
	acct := &Account{OrgID: org, Username: user, DisplayName: displayName}
	if err := acct.check("create_user"); err != nil {
		return "", "", err
	}
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE role_grants IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var admins int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM role_grants g JOIN users u ON u.id = g.user_id
			WHERE g.role = 'admin' AND u.retired_at IS NULL`).Scan(&admins); err != nil {
			return err
		}
		if admins >= 2 {
			return ErrBootstrapClosed
		}
		// The organisation is made if it is new, and then needs a name; an existing one is
		// joined as it is.
		var name string
		err := tx.QueryRow(ctx, `SELECT name FROM organisations WHERE id = $1`, org).Scan(&name)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			newOrg := &Account{OrgID: org, OrgName: orgName, OrgKind: "agency"}
			if err := newOrg.check("create_org"); err != nil {
				return fmt.Errorf("organisation %s is new: %w", org, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO organisations (id, name, kind) VALUES ($1, $2, 'agency')`, org, orgName); err != nil {
				return err
			}
		case err != nil:
			return err
		case orgName != "" && orgName != name:
			return fmt.Errorf("organisation %s exists as %q: leave -org-name out to join it", org, name)
		}
		id = NewID("u-")
		var hash []byte
		code, hash = newEnrolmentCode()
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, username, display_name, org_id, password_hash, enrolment_hash, enrolment_expires_at)
			VALUES ($1, $2, $3, $4, '', $5, now() + $6::interval)`, id, user, displayName, org, hash, EnrolmentTTL.String()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO role_grants (user_id, role) VALUES ($1, 'admin')`, id); err != nil {
			return err
		}
		return app.Append(ctx, tx, "bootstrap/"+id, &audit.Record{Actor: audit.Actor{ID: "system", Roles: []string{}, Org: "system"},
			Action: "user.bootstrapped", Details: map[string]any{"user": id, "username": user, "org": org, "role": "admin"}})
	})
	if err != nil {
		return "", "", fmt.Errorf("bootstrap administrator %s: %w", user, err)
	}
	return id, code, nil
}

// User is an account as administrators see it.
type User struct {
	ID          string       `json:"id"`
	Username    string       `json:"username"`
	DisplayName string       `json:"display_name"`
	Org         string       `json:"org"`
	Roles       []authz.Role `json:"roles"`
	SSO         bool         `json:"sso"`      // bound to an identity provider's subject
	Enrolled    bool         `json:"enrolled"` // has a local password
	Retired     *time.Time   `json:"retired_at,omitempty"`
}

// Users lists the accounts, for administrators (and auditors, who read everything).
func (s *Service) Users(ctx context.Context, a authz.Actor, p Page) ([]User, error) {
	if !a.Has(authz.Admin) && !a.Has(authz.Auditor) {
		return nil, s.refuse(ctx, a, On{}, "read.users", &authz.Denied{Rule: "role", Reason: "accounts are read by administrators and auditors"})
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	rows, err := s.DB.Query(ctx, `SELECT u.id, u.username, u.display_name, u.org_id,
			COALESCE(array_agg(g.role ORDER BY g.role) FILTER (WHERE g.role IS NOT NULL), '{}'),
			u.oidc_subject IS NOT NULL, u.password_hash <> '', u.retired_at
		FROM users u LEFT JOIN role_grants g ON g.user_id = u.id
		GROUP BY u.id ORDER BY u.username LIMIT $1 OFFSET $2`, p.Limit, p.Offset)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (User, error) {
		var u User
		var roles []string
		err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Org, &roles, &u.SSO, &u.Enrolled, &u.Retired)
		for _, r := range roles {
			u.Roles = append(u.Roles, authz.Role(r))
		}
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	if out == nil {
		out = []User{}
	}
	return out, s.auditRead(ctx, a, "users", On{})
}

// PendingChanges lists the account changes waiting for a second administrator, oldest first.
func (s *Service) PendingChanges(ctx context.Context, a authz.Actor) ([]RoleChange, error) {
	if err := s.requireAdmin(ctx, a, "read.role_changes"); err != nil {
		return nil, err
	}
	rows, err := s.DB.Query(ctx, `SELECT id, kind, COALESCE(user_id, ''), COALESCE(role, ''), COALESCE(scope, ''), valid_from, valid_until,
			COALESCE(designation_id, ''), reason, proposed_by, account
		FROM role_changes WHERE approved_by IS NULL ORDER BY proposed_at, id LIMIT $1`, MaxPage)
	if err != nil {
		return nil, fmt.Errorf("list pending changes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RoleChange, error) {
		var c RoleChange
		err := row.Scan(&c.ID, &c.Kind, &c.User, &c.Role, &c.Scope, &c.ValidFrom, &c.ValidUntil, &c.DesignationID, &c.Reason, &c.ProposedBy, &c.Account)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list pending changes: %w", err)
	}
	if out == nil {
		out = []RoleChange{}
	}
	return out, nil
}
