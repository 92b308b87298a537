package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// Login throttling: an account with LoginFailuresPerAccount failed logins within LoginMemory
// (since its last successful login), or an address with LoginFailuresPerAddress, is locked
// from its latest failure for LoginLockBase, doubled for each failure past the limit, at most
// LoginLockMax. Attempts while locked are refused (429) and audited but not counted: nobody
// extends another's lock by trying, and the right password works the moment the lock ends.
const (
	LoginMemory             = 24 * time.Hour
	LoginLockBase           = time.Minute
	LoginLockMax            = time.Hour
	LoginFailuresPerAccount = 5
	LoginFailuresPerAddress = 20
	// DefaultTokenTTL is how long an API token lives when the server sets no TokenTTL.
	DefaultTokenTTL = 12 * time.Hour
)

// dummyHash is compared against when the username is unknown, so a wrong username costs the
// same time as a wrong password and does not reveal which accounts exist.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)

// Token is an API token as its holder sees it (the secret only when it is issued).
type Token struct {
	ID        string    `json:"id"`
	Token     string    `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Current   bool      `json:"current,omitempty"`
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Authenticate returns the principal of a live token (not expired, not revoked) and the
// token's ID.
func (s *Service) Authenticate(ctx context.Context, token string) (authz.Actor, string, error) {
	var user, id string
	err := s.DB.QueryRow(ctx, `SELECT t.user_id, t.id FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND u.retired_at IS NULL`,
		tokenHash(token)).Scan(&user, &id)
	if errors.Is(err, pgx.ErrNoRows) {
		return authz.Actor{}, "", refusal.New(refusal.Unauthenticated, "unknown, expired or revoked token: log in again (POST /api/v1/tokens)")
	}
	if err != nil {
		return authz.Actor{}, "", fmt.Errorf("look up token: %w", err)
	}
	a, err := loadActor(ctx, s.DB, user)
	if err != nil {
		return a, id, err
	}
	a, err = s.signedActor(ctx, a)
	return a, id, err
}

// loadActor reads a principal with its roles and current designations.
func loadActor(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, userID string) (authz.Actor, error) {
	var a authz.Actor
	var roles []string
	err := q.QueryRow(ctx, `SELECT u.id, u.username, u.org_id, COALESCE(array_agg(g.role ORDER BY g.role) FILTER (WHERE g.role IS NOT NULL), '{}')
		FROM users u LEFT JOIN role_grants g ON g.user_id = u.id WHERE u.id = $1 GROUP BY u.id`, userID).
		Scan(&a.ID, &a.Username, &a.Org, &roles)
	if err != nil {
		return a, err
	}
	for _, r := range roles {
		a.Roles = append(a.Roles, authz.Role(r))
	}
	rows, err := q.Query(ctx, `SELECT scope, valid_from, valid_until FROM executor_designations
		WHERE user_id = $1 AND revoked_at IS NULL ORDER BY valid_from`, userID)
	if err != nil {
		return a, err
	}
	defer rows.Close()
	for rows.Next() {
		var d authz.Designation
		if err := rows.Scan(&d.Scope, &d.ValidFrom, &d.ValidUntil); err != nil {
			return a, err
		}
		a.Designations = append(a.Designations, d)
	}
	return a, rows.Err()
}

// Login exchanges a username and password for a new API token.
func (s *Service) Login(ctx context.Context, username, password, addr string) (Token, error) {
	a, err := s.PasswordActor(ctx, username, password, addr)
	if err != nil {
		return Token{}, err
	}
	return s.issueToken(ctx, a.ID)
}

// PasswordActor checks a username and password, for the API's tokens and the web pages'
// sessions alike. Failed attempts are audited and throttled per account and per address
// (addr, the client's); a locked account says so.
func (s *Service) PasswordActor(ctx context.Context, username, password, addr string) (authz.Actor, error) {
	now := s.now()
	var perAccount, perAddress int
	var lastAccount, lastAddress *time.Time
	if err := s.DB.QueryRow(ctx, `SELECT count(*) FILTER (WHERE username = $1), max(at) FILTER (WHERE username = $1),
		count(*) FILTER (WHERE address = $2), max(at) FILTER (WHERE address = $2)
		FROM login_failures WHERE (username = $1 OR address = $2) AND at > $3`,
		username, addr, now.Add(-LoginMemory)).Scan(&perAccount, &lastAccount, &perAddress, &lastAddress); err != nil {
		return authz.Actor{}, fmt.Errorf("count failed logins: %w", err)
	}
	accountUntil, addressUntil := lockedUntil(perAccount, LoginFailuresPerAccount, lastAccount), lockedUntil(perAddress, LoginFailuresPerAddress, lastAddress)
	if now.Before(accountUntil) || now.Before(addressUntil) {
		what, until := "this account is locked", accountUntil
		if !now.Before(accountUntil) {
			what, until = "logins from this address are suspended", addressUntil
		}
		retry := until.Sub(now).Round(time.Second)
		s.loginRefused(ctx, username, addr)
		e := refusal.New(refusal.TooMany, "%s after too many failed logins; try again in %s", what, retry)
		e.RetryAfter = retry + time.Second
		return authz.Actor{}, e
	}
	var id, hash string
	err := s.DB.QueryRow(ctx, `SELECT id, password_hash FROM users WHERE username = $1 AND retired_at IS NULL`, username).Scan(&id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
	} else if err != nil {
		return authz.Actor{}, fmt.Errorf("look up user: %w", err)
	} else {
		err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	}
	if err != nil {
		s.loginFailed(ctx, username, addr, "wrong username or password")
		return authz.Actor{}, refusal.New(refusal.Unauthenticated, "wrong username or password")
	}
	// The account's count starts again; the address's stands.
	if _, err := s.DB.Exec(ctx, `DELETE FROM login_failures WHERE username = $1`, username); err != nil {
		return authz.Actor{}, fmt.Errorf("reset failed logins: %w", err)
	}
	return loadActor(ctx, s.DB, id)
}

// lockedUntil is when a lock after failures (limit or more, the latest at last) ends: the
// zero time when there is none.
func lockedUntil(failures, limit int, last *time.Time) time.Time {
	if failures < limit || last == nil {
		return time.Time{}
	}
	return last.Add(min(LoginLockBase<<min(failures-limit, 16), LoginLockMax))
}

// now is the service's clock (Now, when a test sets one).
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Actor returns a live (not retired) user as a principal, for a web session.
func (s *Service) Actor(ctx context.Context, userID string) (authz.Actor, error) {
	var live bool
	if err := s.DB.QueryRow(ctx, `SELECT retired_at IS NULL FROM users WHERE id = $1`, userID).Scan(&live); err != nil || !live {
		return authz.Actor{}, refusal.New(refusal.Unauthenticated, "the session's account is gone or retired: log in again")
	}
	a, err := loadActor(ctx, s.DB, userID)
	if err != nil {
		return a, err
	}
	return s.signedActor(ctx, a)
}

// issueToken creates an API token for the user.
func (s *Service) issueToken(ctx context.Context, userID string) (Token, error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	ttl := s.TokenTTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	t := Token{ID: NewID("t-"), Token: "tdk_" + hex.EncodeToString(raw)}
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO api_tokens (token_hash, user_id, id, expires_at) VALUES ($1, $2, $3, now() + $4::interval)
			RETURNING created_at, expires_at`, tokenHash(t.Token), userID, t.ID, ttl.String()).Scan(&t.CreatedAt, &t.ExpiresAt); err != nil {
			return err
		}
		a, err := loadActor(ctx, tx, userID)
		if err != nil {
			return err
		}
		return s.append(ctx, tx, a, "token/"+t.ID, &audit.Record{Action: "token.created",
			Details: map[string]any{"token": t.ID, "expires_at": t.ExpiresAt}})
	})
	if err != nil {
		return Token{}, fmt.Errorf("issue token: %w", err)
	}
	return t, nil
}

// loginFailed records a failed login, for throttling and in the audit log.
func (s *Service) loginFailed(ctx context.Context, username, addr, why string) {
	s.recordLogin(ctx, username, addr, why, true)
}

// loginRefused records in the audit log a login refused while locked; it does not count.
func (s *Service) loginRefused(ctx context.Context, username, addr string) {
	s.recordLogin(ctx, username, addr, "throttled", false)
}

func (s *Service) recordLogin(ctx context.Context, username, addr, why string, counts bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	name := measure.Clip(strings.ToValidUTF8(username, "\uFFFD"), measure.MaxID)
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if counts {
			if _, err := tx.Exec(ctx, `INSERT INTO login_failures (username, address, at) VALUES ($1, $2, $3)`, username, addr, s.now()); err != nil {
				return err
			}
		}
		return s.append(ctx, tx, authz.Actor{ID: "anonymous"}, "login/"+NewID(""), &audit.Record{Action: "login.failed", Reason: why,
			Details: map[string]any{"username": name, "address": addr}})
	})
	if err != nil {
		s.Log.ErrorContext(ctx, "record a failed login", "username", name, "address", addr, "err", err)
	}
}

// Tokens lists the actor's live tokens, marking current.
func (s *Service) Tokens(ctx context.Context, a authz.Actor, current string) ([]Token, error) {
	rows, err := s.DB.Query(ctx, `SELECT id, created_at, expires_at FROM api_tokens
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at`, a.ID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Token, error) {
		var t Token
		err := row.Scan(&t.ID, &t.CreatedAt, &t.ExpiresAt)
		t.Current = t.ID == current
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	if out == nil {
		out = []Token{}
	}
	return out, nil
}

// RevokeToken revokes one of the actor's tokens.
func (s *Service) RevokeToken(ctx context.Context, a authz.Actor, id string) error {
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, id, a.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refusal.New(refusal.NotFound, "no live token %s of yours", measure.Clip(id, 64))
		}
		return s.append(ctx, tx, a, "token/"+id+"/revoked", &audit.Record{Action: "token.revoked", Details: map[string]any{"token": id}})
	})
	if err != nil && !refusal.Is(err) {
		return fmt.Errorf("revoke token: %w", err)
	}
	return err
}

// HashPassword is the password hash stored for users, at bcrypt cost (0 for bcrypt's default).
func HashPassword(pw string, cost int) (string, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	return string(h), err
}
