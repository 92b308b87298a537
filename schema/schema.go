// Package schema holds takedown's SQL migrations, embedded in the binary, and applies them.
//
// Migrations run in order, each in its own transaction, under tern's advisory lock, so several
// replicas starting at once apply them exactly once.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the database at conn up to the newest migration.
func Migrate(ctx context.Context, conn *pgx.Conn) error { return migrateTo(ctx, conn, -1) }

// migrateTo brings the database up to migration n (-1: the newest); tests of an upgrade stop
// before the migration they test.
func migrateTo(ctx context.Context, conn *pgx.Conn, n int32) error {
	m, err := migrate.NewMigrator(ctx, conn, "schema_version")
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if n < 0 {
		n = int32(len(m.Migrations))
	}
	if err := m.MigrateTo(ctx, n); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}
