package service

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// Identity is who an OpenID Connect provider says signed in, from a verified ID token.
type Identity struct {
	Issuer, Subject string
	// Username is the claim matched against local accounts at the first login
	// (preferred_username); later logins find the account by issuer and subject.
	Username string
	// Roles, when the deployment maps roles from a claim, is that claim's value: the roles
	// the account then holds. Nil when roles are assigned locally, by two administrators.
	Roles []string
	// Org, when the deployment maps the organisation from a claim, must be the account's.
	Org string
}

// SignOnFailed records a sign-on that failed at the callback, before any identity was
// verified (a state that did not start here, a replayed or refused code, a wrong PKCE verifier,
// an ID token that does not verify): audited and counted against the address as a failed
// login is.
func (s *Service) SignOnFailed(ctx context.Context, addr string, err error) {
	s.loginFailed(ctx, "", addr, "single sign-on: "+refusal.Of(ctx, err).Message)
}

// SSOActor finds the account of a verified identity. Accounts are created by
// two administrators beforehand; the first login binds the provider's subject to the account
// of the same username, and from then on only that subject opens it. With roles mapped from a
// claim, the account's grants follow the claim, each change audited; a claim that would break
// the separation of duties (SoD-2) is refused.
func (s *Service) SSOActor(ctx context.Context, id Identity, addr string) (authz.Actor, error) {
	who := measure.Clip(id.Username, measure.MaxID)
	refuse := func(msg string) (authz.Actor, error) {
		s.loginFailed(ctx, who, addr, "single sign-on: "+msg)
		return authz.Actor{}, refusal.New(refusal.Unauthenticated, "%s", msg)
	}
	if id.Issuer == "" || id.Subject == "" {
		return refuse("the identity provider gave no issuer or subject")
	}
	var userID, org string
	var bound, retired bool
	err := s.DB.QueryRow(ctx, `SELECT id, org_id, true, retired_at IS NOT NULL FROM users WHERE oidc_issuer = $1 AND oidc_subject = $2`,
		id.Issuer, id.Subject).Scan(&userID, &org, &bound, &retired)
	if err == nil && retired {
		return refuse("the account of " + who + " is retired")
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.DB.QueryRow(ctx, `SELECT id, org_id, false FROM users WHERE username = $1 AND oidc_subject IS NULL AND retired_at IS NULL`,
			id.Username).Scan(&userID, &org, &bound)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		var boundElsewhere bool
		if qerr := s.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE username = $1 AND oidc_subject IS NOT NULL AND retired_at IS NULL)`,
			id.Username).Scan(&boundElsewhere); qerr == nil && boundElsewhere {
			return refuse("the account " + who + " is bound to another identity at the identity provider: only that identity opens it (an administrator can tell which)")
		}
		return refuse("no account for " + who + " here: administrators create accounts first")
	}
	if err != nil {
		return authz.Actor{}, fmt.Errorf("find the account of %s: %w", who, err)
	}
	if id.Org != "" && id.Org != org {
		return refuse(fmt.Sprintf("the identity provider places %s in %s, the account is in %s", who, measure.Clip(id.Org, measure.MaxID), org))
	}
	var roles []authz.Role
	if id.Roles != nil {
		for _, r := range id.Roles {
			if slices.Contains(authz.Roles, authz.Role(r)) && !slices.Contains(roles, authz.Role(r)) {
				roles = append(roles, authz.Role(r))
			}
		}
		if err := s.checkClaimedRoles(ctx, org, roles); err != nil {
			s.loginFailed(ctx, who, addr, "single sign-on: "+err.Error())
			return authz.Actor{}, err
		}
	}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		sso := authz.Actor{ID: "sso", Org: "system"}
		if !bound {
			tag, err := tx.Exec(ctx, `UPDATE users SET oidc_issuer = $2, oidc_subject = $3 WHERE id = $1 AND oidc_subject IS NULL`, userID, id.Issuer, id.Subject)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return refusal.New(refusal.Conflict, "the account was bound to another identity at the same time")
			}
			if err := s.append(ctx, tx, sso, "sso/"+userID+"/bound", &audit.Record{Action: "user.sso_bound",
				Details: map[string]any{"user": userID, "issuer": id.Issuer, "subject": measure.Clip(id.Subject, measure.MaxLine)}}); err != nil {
				return err
			}
		}
		if id.Roles == nil {
			return nil
		}
		return s.syncRoles(ctx, tx, sso, userID, roles)
	})
	if err != nil {
		if refusal.Is(err) {
			return authz.Actor{}, err
		}
		return authz.Actor{}, fmt.Errorf("single sign-on of %s: %w", who, err)
	}
	return s.Actor(ctx, userID)
}

// LoginSSO issues an API token to the account of a verified identity (see SSOActor).
func (s *Service) LoginSSO(ctx context.Context, id Identity, addr string) (Token, error) {
	a, err := s.SSOActor(ctx, id, addr)
	if err != nil {
		return Token{}, err
	}
	return s.issueToken(ctx, a.ID)
}

// checkClaimedRoles refuses a claimed role set that breaks the separation of duties or the
// organisation's kind.
func (s *Service) checkClaimedRoles(ctx context.Context, org string, roles []authz.Role) error {
	var kind string
	if err := s.DB.QueryRow(ctx, `SELECT kind FROM organisations WHERE id = $1`, org).Scan(&kind); err != nil {
		return fmt.Errorf("read organisation %s: %w", org, err)
	}
	var held []authz.Role
	for _, r := range roles {
		if err := authz.CheckGrant(held, r); err != nil {
			return err
		}
		if (kind == "agency" && authz.CommissionRole(r)) || (kind == "commission" && authz.AgencyRole(r)) {
			return &authz.Denied{Rule: "SoD-2", Reason: fmt.Sprintf("the claimed role %s is not held in a %s organisation", r, kind)}
		}
		held = append(held, r)
	}
	return nil
}

// syncRoles makes the user's grants the claimed roles, auditing each change.
func (s *Service) syncRoles(ctx context.Context, tx pgx.Tx, sso authz.Actor, userID string, roles []authz.Role) error {
	rows, err := tx.Query(ctx, `SELECT role FROM role_grants WHERE user_id = $1 FOR UPDATE`, userID)
	if err != nil {
		return err
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, r := range roles {
		if slices.Contains(held, string(r)) {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO role_grants (user_id, role) VALUES ($1, $2)`, userID, r); err != nil {
			return err
		}
		if err := s.append(ctx, tx, sso, "sso/"+NewID(""), &audit.Record{Action: "role.granted", Reason: "claimed by the identity provider",
			Details: map[string]any{"user": userID, "role": string(r)}}); err != nil {
			return err
		}
	}
	for _, r := range held {
		if slices.Contains(roles, authz.Role(r)) {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM role_grants WHERE user_id = $1 AND role = $2`, userID, r); err != nil {
			return err
		}
		if err := s.append(ctx, tx, sso, "sso/"+NewID(""), &audit.Record{Action: "role.revoked", Reason: "no longer claimed by the identity provider",
			Details: map[string]any{"user": userID, "role": r}}); err != nil {
			return err
		}
	}
	return nil
}
