package schema_test

import (
	"context"
	"fmt"
	"slices"
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

// TestStageHistoryUpgrade: a database from before the stage history gets each measure's
// transitions from its audit records, refusals and non-transitions left out; from then on
// the trigger keeps it.
func TestStageHistoryUpgrade(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := schema.MigrateTo(ctx, conn, 15); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO organisations (id, name, kind) VALUES ('npa', 'NPA', 'agency')`,
		`INSERT INTO users (id, username, display_name, org_id, password_hash) VALUES ('u-o', 'o', 'O', 'npa', '')`,
		`INSERT INTO cases (id, org_id, title, summary, created_by) VALUES ('c-1', 'npa', 't', '', 'u-o')`,
		`INSERT INTO measures (id, case_id, stage, version, requester_id, plan) VALUES ('m-1', 'c-1', 'COMMAND_REVIEW', 1, 'u-o', '{}')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for i, rec := range []string{
		`{"action":"measure.created","to":"DRAFT","version":1,"ts":"2026-10-01T00:00:00Z"}`,
		`{"action":"submit","from":"DRAFT","to":"LEGAL_REVIEW","version":1,"ts":"2026-10-01T01:00:00Z"}`,
		`{"action":"refused.legal_review","from":"LEGAL_REVIEW","to":"COMMAND_REVIEW","version":1,"ts":"2026-10-01T01:30:00Z"}`,
		`{"action":"evidence.accessed","ts":"2026-10-01T01:40:00Z"}`,
		`{"action":"log_steps","from":"LEGAL_REVIEW","to":"LEGAL_REVIEW","version":1,"ts":"2026-10-01T01:50:00Z"}`,
		`{"action":"legal_review","from":"LEGAL_REVIEW","to":"COMMAND_REVIEW","version":1,"ts":"2026-10-01T02:00:00Z"}`,
	} {
		if _, err := conn.Exec(ctx, `INSERT INTO audit_entries (id, key, measure_id, record) VALUES ($1, $1, 'm-1', $2)`,
			fmt.Sprintf("e-%d", i), []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	if err := schema.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE measures SET stage = 'COMMISSION_REVIEW' WHERE id = 'm-1'`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT stage FROM stage_history WHERE measure_id = 'm-1' ORDER BY entered_at`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"DRAFT", "LEGAL_REVIEW", "COMMAND_REVIEW", "COMMISSION_REVIEW"}; !slices.Equal(got, want) {
		t.Fatalf("stage history after the upgrade and one change: %v, want %v", got, want)
	}
}
