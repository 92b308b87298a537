package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

type actorKey struct{}

type tokenKey struct{}

func actorOf(r *http.Request) authz.Actor { return r.Context().Value(actorKey{}).(authz.Actor) }

// tokenOf is the ID of the token the request came with.
func tokenOf(r *http.Request) string { id, _ := r.Context().Value(tokenKey{}).(string); return id }

// Login throttling: within LoginWindow, an account with LoginFailuresPerAccount failed logins,
// or an address with LoginFailuresPerAddress, is refused (429) until the oldest failure
// leaves the window, even with the right password.
const (
	LoginWindow             = 15 * time.Minute
	LoginFailuresPerAccount = 5
	LoginFailuresPerAddress = 20
	// DefaultTokenTTL is how long an API token lives when the server sets no TokenTTL.
	DefaultTokenTTL = 12 * time.Hour
)

// dummyHash is compared against when the username is unknown, so a wrong username costs the
// same time as a wrong password and does not reveal which accounts exist.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)

// auth requires a bearer token and puts its principal in the request context.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			s.fail(w, r, &Error{Status: 401, Code: "unauthenticated", Message: "send Authorization: Bearer <token> (POST /api/v1/tokens gives one)"})
			return
		}
		a, id, err := s.actorByToken(r.Context(), token)
		if errors.Is(err, pgx.ErrNoRows) {
			s.fail(w, r, &Error{Status: 401, Code: "unauthenticated", Message: "unknown, expired or revoked token: log in again (POST /api/v1/tokens)"})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), actorKey{}, a), tokenKey{}, id)
		next(w, r.WithContext(ctx))
	}
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// actorByToken returns the principal of a live token (not expired, not revoked) and the
// token's ID.
func (s *Server) actorByToken(ctx context.Context, token string) (authz.Actor, string, error) {
	var user, id string
	if err := s.DB.QueryRow(ctx, `SELECT user_id, id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()`,
		tokenHash(token)).Scan(&user, &id); err != nil {
		return authz.Actor{}, "", err
	}
	a, err := loadActor(ctx, s.DB, user)
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

// Token is an API token as its holder sees it (the secret only when it is issued).
type Token struct {
	ID        string    `json:"id"`
	Token     string    `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Current   bool      `json:"current,omitempty"`
}

// clientAddress is the address failed logins are counted against.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// createToken exchanges a username and password for a new API token. Failed attempts are
// audited and throttled per account and per address.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	addr := clientAddress(r)
	var perAccount, perAddress int
	var oldest *time.Time
	if err := s.DB.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM login_failures WHERE username = $1 AND at > now() - $3::interval),
		(SELECT count(*) FROM login_failures WHERE address = $2 AND at > now() - $3::interval),
		(SELECT min(at) FROM login_failures WHERE (username = $1 OR address = $2) AND at > now() - $3::interval)`,
		in.Username, addr, LoginWindow.String()).Scan(&perAccount, &perAddress, &oldest); err != nil {
		s.fail(w, r, err)
		return
	}
	if perAccount >= LoginFailuresPerAccount || perAddress >= LoginFailuresPerAddress {
		retry := LoginWindow
		if oldest != nil {
			retry = time.Until(oldest.Add(LoginWindow)).Round(time.Second)
		}
		what := "this account is locked"
		if perAccount < LoginFailuresPerAccount {
			what = "logins from this address are suspended"
		}
		w.Header().Set("Retry-After", fmt.Sprint(int(retry.Seconds())+1))
		s.loginFailed(ctx, in.Username, addr, "throttled")
		s.fail(w, r, &Error{Status: 429, Code: "too_many_attempts",
			Message: fmt.Sprintf("%s after too many failed logins; try again in %s", what, retry)})
		return
	}
	var id, hash string
	err := s.DB.QueryRow(ctx, `SELECT id, password_hash FROM users WHERE username = $1`, in.Username).Scan(&id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(in.Password))
	} else if err != nil {
		s.fail(w, r, err)
		return
	} else {
		err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(in.Password))
	}
	if err != nil {
		s.loginFailed(ctx, in.Username, addr, "wrong username or password")
		s.fail(w, r, &Error{Status: 401, Code: "unauthenticated", Message: "wrong username or password"})
		return
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	ttl := s.TokenTTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	t := Token{ID: newID("t-"), Token: "tdk_" + hex.EncodeToString(raw)}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO api_tokens (token_hash, user_id, id, expires_at) VALUES ($1, $2, $3, now() + $4::interval)
			RETURNING created_at, expires_at`, tokenHash(t.Token), id, t.ID, ttl.String()).Scan(&t.CreatedAt, &t.ExpiresAt); err != nil {
			return err
		}
		a, err := loadActor(ctx, tx, id)
		if err != nil {
			return err
		}
		return audit.Append(ctx, tx, "token/"+t.ID, &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "token.created",
			Details: map[string]any{"token": t.ID, "expires_at": t.ExpiresAt},
		})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

// loginFailed records a failed or throttled login, for throttling and in the audit log.
func (s *Server) loginFailed(ctx context.Context, username, addr, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	name := measure.Clip(strings.ToValidUTF8(username, "\uFFFD"), measure.MaxID)
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO login_failures (username, address) VALUES ($1, $2)`, username, addr); err != nil {
			return err
		}
		return audit.Append(ctx, tx, "login/"+newID(""), &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: "anonymous", Roles: []string{}, Org: ""}, Action: "login.failed", Reason: why,
			Details: map[string]any{"username": name, "address": addr}})
	})
	if err != nil {
		s.Log.Error("record a failed login", "username", name, "address", addr, "err", err)
	}
}

// listTokens lists the caller's live tokens.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	rows, err := s.DB.Query(r.Context(), `SELECT id, created_at, expires_at FROM api_tokens
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at`, actorOf(r).ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Token, error) {
		var t Token
		err := row.Scan(&t.ID, &t.CreatedAt, &t.ExpiresAt)
		t.Current = t.ID == tokenOf(r)
		return t, err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if out == nil {
		out = []Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// revokeToken revokes one of the caller's tokens; "current" names the one in use (logout).
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	id := r.PathValue("id")
	if id == "current" {
		id = tokenOf(r)
	}
	ctx := r.Context()
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, id, a.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &Error{Status: 404, Code: "not_found", Message: "no live token " + measure.Clip(id, 64) + " of yours"}
		}
		return audit.Append(ctx, tx, "token/"+id+"/revoked", &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "token.revoked", Details: map[string]any{"token": id}})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, actorOf(r))
}

// HashPassword is the password hash stored for users, at bcrypt cost (0 for bcrypt's default).
func HashPassword(pw string, cost int) (string, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	return string(h), err
}
