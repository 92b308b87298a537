package reconcile_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
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

// TestUnsignedPolicyEntriesWait: a policy version whose proposal and approval the service
// wrote but the sequencer has not signed yet (a halt stopped it right after) is not compared:
// its rows wait with its entries, as a measure's do, so that the halt can be cleared once the
// cause is put back instead of standing for good.
func TestUnsignedPolicyEntriesWait(t *testing.T) {
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := make([]byte, 32)
	app, err := audit.NewAppender(raw)
	if err != nil {
		t.Fatal(err)
	}
	admin := audit.Actor{ID: "u-admin", Roles: []string{"admin"}, Org: "oversight"}
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, q := range []string{
			`INSERT INTO authz_policy_versions (version, proposed_by, approved_by, reason, approved_at) VALUES (2, 'u-admin', 'u-admin2', 'x', now())`,
			`INSERT INTO authz_rules (version, role, op, effect) VALUES (2, 'officer', 'submit', 'allow')`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		if err := app.Append(ctx, tx, "policy/v2/proposed", &audit.Record{Actor: admin, Action: "policy.proposed",
			Details: map[string]any{"version": "v2", "rule_set": []string{"allow officer submit"}}}); err != nil {
			return err
		}
		admin.ID = "u-admin2"
		return app.Append(ctx, tx, "policy/v2/approved", &audit.Record{Actor: admin, Action: "policy.approved", Details: map[string]any{"version": "v2"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := reconcile.Run(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 || diffs[0].Table != reconcile.NotCompared || diffs[0].Key != "v2" {
		t.Fatalf("a policy version with entries not signed yet: %v, want v2 not compared", diffs)
	}
}
