package reconcile_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/testdb"
)

// TestFreshDatabaseAgrees: before the server's first start has written the default policy, a
// fresh database owes no rules: nothing differs (a background comparison that ran this early
// halted the log over nothing).
func TestFreshDatabaseAgrees(t *testing.T) {
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	diffs, err := reconcile.Snapshot(ctx, db)
	if err != nil || len(diffs) != 0 {
		t.Fatalf("a fresh database: %v (%v)", diffs, err)
	}
	// Once version 1 is there, its rules are owed.
	if _, err := db.Exec(ctx, `INSERT INTO authz_policy_versions (version, proposed_by, approved_by, reason, approved_at) VALUES (1, 'system', 'system', 'default', now())`); err != nil {
		t.Fatal(err)
	}
	if diffs, err := reconcile.Snapshot(ctx, db); err != nil || len(diffs) == 0 {
		t.Fatalf("version 1 without its rules: %v (%v)", diffs, err)
	}
}
