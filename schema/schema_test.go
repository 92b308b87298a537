package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/schema"
)

// TestReadRulesUpgrade: a database whose policy in force predates read rules gets, from
// migration 013, a new version holding that policy and the default read rules; without it,
// nobody could read anything after the upgrade.
func TestReadRulesUpgrade(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := schema.MigrateTo(ctx, conn, 12); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO authz_policy_versions (version, proposed_by, approved_by, reason, approved_at)
		VALUES (1, 'system', 'system', 'before reads were rules', now())`); err != nil {
		t.Fatal(err)
	}
	operations := 0
	for _, r := range authz.DefaultPolicy() {
		if strings.HasPrefix(r.Op, "read:") {
			continue
		}
		operations++
		if _, err := conn.Exec(ctx, `INSERT INTO authz_rules (version, role, op, effect) VALUES (1, $1, $2, $3)`, r.Role, r.Op, r.Effect); err != nil {
			t.Fatal(err)
		}
	}
	if err := schema.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	var version, rules, reads int
	if err := conn.QueryRow(ctx, `SELECT v.version, count(*), count(*) FILTER (WHERE r.op LIKE 'read:%')
		FROM authz_policy_versions v JOIN authz_rules r USING (version)
		WHERE v.approved_by IS NOT NULL GROUP BY v.version ORDER BY v.version DESC LIMIT 1`).Scan(&version, &rules, &reads); err != nil {
		t.Fatal(err)
	}
	if version != 2 || rules != len(authz.DefaultPolicy()) || reads != rules-operations {
		t.Fatalf("policy in force v%d: %d rules, %d of them reads; want v2 with the %d default rules", version, rules, reads, len(authz.DefaultPolicy()))
	}
	if err := schema.Migrate(ctx, conn); err != nil { // a second start changes nothing
		t.Fatal(err)
	}
}
