package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

type actorKey struct{}

func actorOf(r *http.Request) authz.Actor { return r.Context().Value(actorKey{}).(authz.Actor) }

// auth requires a bearer token and puts its principal in the request context.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			s.fail(w, r, &Error{Status: 401, Code: "unauthenticated", Message: "send Authorization: Bearer <token> (POST /api/v1/tokens gives one)"})
			return
		}
		a, err := s.actorByToken(r.Context(), token)
		if errors.Is(err, pgx.ErrNoRows) {
			s.fail(w, r, &Error{Status: 401, Code: "unauthenticated", Message: "unknown or revoked token"})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	}
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func (s *Server) actorByToken(ctx context.Context, token string) (authz.Actor, error) {
	var id string
	if err := s.DB.QueryRow(ctx, `SELECT user_id FROM api_tokens WHERE token_hash = $1`, tokenHash(token)).Scan(&id); err != nil {
		return authz.Actor{}, err
	}
	return loadActor(ctx, s.DB, id)
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

// createToken exchanges a username and password for a new API token.
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
	var id, hash string
	err := s.DB.QueryRow(ctx, `SELECT id, password_hash FROM users WHERE username = $1`, in.Username).Scan(&id, &hash)
	if err == nil {
		err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(in.Password))
	}
	if err != nil {
		s.fail(w, r, &Error{Status: 401, Code: "unauthenticated", Message: "wrong username or password"})
		return
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := "tdk_" + hex.EncodeToString(raw)
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO api_tokens (token_hash, user_id) VALUES ($1, $2)`, tokenHash(token), id); err != nil {
			return err
		}
		a, err := loadActor(ctx, tx, id)
		if err != nil {
			return err
		}
		return audit.Append(ctx, tx, "token/"+newID(""), &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "token.created",
		})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": token})
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
