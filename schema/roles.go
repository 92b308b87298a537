package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

// AppendOnly are the tables the serving role may read and add to but never change: the audit
// log and what it is checked against. Triggers refuse changes too, but an owner can switch
// triggers off; a role without UPDATE, DELETE or TRUNCATE, owning nothing, cannot.
var AppendOnly = []string{
	"audit_entries", "audit_log", "audit_tiles", "audit_checkpoints", "audit_keys",
	"audit_cosignatures", "audit_companions", "audit_halts", "stage_history",
}

// Grant gives role what `serve` and `worker` need and nothing more: it may read every table,
// only add rows to the AppendOnly tables, and change the rest's rows; it owns nothing, so it
// cannot alter tables, switch triggers off or run DDL. Run by the tables' owner after
// migrating (`takedownd migrate -app-role`); it revokes what an earlier grant gave beyond that.
func Grant(ctx context.Context, conn *pgx.Conn, role string) error {
	var owner bool
	err := conn.QueryRow(ctx, `SELECT pg_has_role($1, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = 'audit_entries'::regclass`, role).Scan(&owner)
	if err != nil {
		var pgErr interface{ SQLState() string }
		if errors.As(err, &pgErr) && pgErr.SQLState() == "42704" {
			return fmt.Errorf("role %s does not exist (create it first: CREATE ROLE %s LOGIN PASSWORD '…')", role, role)
		}
		return fmt.Errorf("look up role %s: %w", role, err)
	}
	if owner {
		return fmt.Errorf("role %s owns the tables (or is a member of their owner's role): the serving role must be another", role)
	}
	r := pgx.Identifier{role}.Sanitize()
	stmts := []string{
		`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ` + r,
		`REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ` + r,
		`GRANT USAGE ON SCHEMA public TO ` + r,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + r,
		`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ` + r,
		`REVOKE INSERT, UPDATE, DELETE ON schema_version FROM ` + r,
	}
	for _, t := range AppendOnly {
		stmts = append(stmts, `REVOKE UPDATE, DELETE ON `+pgx.Identifier{t}.Sanitize()+` FROM `+r)
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("grant %s: %s: %w", role, s, err)
			}
		}
		return nil
	})
}

// ErrBehind reports a database whose schema is older than this binary's: `takedownd migrate`,
// run with the owner's credentials, brings it up.
var ErrBehind = errors.New("the database's schema is behind this takedownd: run `takedownd migrate` with the tables' owner's credentials")

// Check returns nil when the database at conn has exactly this binary's migrations applied;
// `serve` and `worker` check rather than migrate, since they run without the right to.
func Check(ctx context.Context, conn *pgx.Conn) error {
	var have int32
	err := conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&have)
	if err != nil {
		var pgErr interface{ SQLState() string }
		if errors.As(err, &pgErr) && pgErr.SQLState() == "42P01" {
			return fmt.Errorf("the database has no schema: %w", ErrBehind)
		}
		return fmt.Errorf("read the schema's version: %w", err)
	}
	want, err := count()
	if err != nil {
		return err
	}
	switch {
	case have < want:
		return fmt.Errorf("the database is at migration %d of %d: %w", have, want, ErrBehind)
	case have > want:
		return fmt.Errorf("the database is at migration %d, newer than this takedownd's %d: run the newer release", have, want)
	}
	return nil
}

// count is the number of migrations this binary carries.
func count() (int32, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	ms, err := migrate.FindMigrations(sub)
	if err != nil {
		return 0, fmt.Errorf("list migrations: %w", err)
	}
	return int32(len(ms)), nil
}
