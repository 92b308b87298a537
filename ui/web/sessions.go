package web

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sessionStore keeps browser sessions in PostgreSQL (web_sessions), so every replica of
// serve knows them and a restart logs nobody out. Expired rows are never read, and are
// deleted by the commits that follow them.
type sessionStore struct {
	db *pgxpool.Pool
}

func (st *sessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var data []byte
	err := st.db.QueryRow(ctx, `SELECT data FROM web_sessions WHERE token = $1 AND expiry > now()`, token).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return data, err == nil, err
}

func (st *sessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	_, err := st.db.Exec(ctx, `WITH gone AS (DELETE FROM web_sessions WHERE expiry < now() - interval '1 hour')
		INSERT INTO web_sessions (token, data, expiry) VALUES ($1, $2, $3)
		ON CONFLICT (token) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry`, token, b, expiry)
	return err
}

func (st *sessionStore) DeleteCtx(ctx context.Context, token string) error {
	_, err := st.db.Exec(ctx, `DELETE FROM web_sessions WHERE token = $1`, token)
	return err
}

// The context-free methods scs also asks for; it calls the Ctx ones.
func (st *sessionStore) Find(token string) ([]byte, bool, error) {
	return st.FindCtx(context.Background(), token)
}

func (st *sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return st.CommitCtx(context.Background(), token, b, expiry)
}

func (st *sessionStore) Delete(token string) error { return st.DeleteCtx(context.Background(), token) }
