package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/testdb"
)

// TestClearHalt: an operator lists the standing halts and clears one with a reason; the
// clearing is an entry of the log, a halt is cleared once, and a clearing without a reason
// or an ID is refused before anything changes.
func TestClearHalt(t *testing.T) {
	ctx := context.Background()
	url := testdb.New(t)
	if err := daemon.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "append.key")
	if err := audit.GenerateAppendKey(key); err != nil {
		t.Fatal(err)
	}
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const problem = "witness w1 refused checkpoint 12: it holds a larger tree"
	if err := audit.Halt(ctx, db, problem); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(append(args, "-database-url", url, "-append-key", key), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := cli("audit", "halts"); err != nil || !strings.Contains(out, problem) {
		t.Fatalf("audit halts: %v\n%s", err, out)
	}
	var id string
	if err := db.QueryRow(ctx, `SELECT id::text FROM audit_halts`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-id", id}, {"-id", id, "-reason", "  "}, {"-reason", "checked"}, {"-id", "999", "-reason", "checked"},
		{"-id", id, "-reason", "restored", "from", "the", "backup"}, // an unquoted reason
		{"-id", id, "-reason", "a\x1b[31mred\x07"}} {
		if _, err := cli(append([]string{"audit", "clear-halt"}, args...)...); err == nil {
			t.Fatalf("clear-halt %v was taken", args)
		}
	}
	if halted, _ := audit.Halted(ctx, db); len(halted) != 1 {
		t.Fatalf("a refused clearing changed the halts: %v", halted)
	}
	out, err := cli("audit", "clear-halt", "-id", id, "-reason", "restored from the witnessed backup; checked by two operators")
	if err != nil || !strings.Contains(out, "cleared halt "+id) || !strings.Contains(out, "no halt stands") {
		t.Fatalf("clear-halt: %v\n%s", err, out)
	}
	var reason, by string
	if err := db.QueryRow(ctx, `SELECT convert_from(a.record, 'UTF8')::jsonb->>'reason', h.cleared_by FROM audit_entries a, audit_halts h
		WHERE convert_from(a.record, 'UTF8')::jsonb->>'action' = 'log.halt_cleared'`).Scan(&reason, &by); err != nil {
		t.Fatalf("the clearing is not in the log: %v", err)
	}
	if !strings.HasPrefix(reason, "restored from") || !strings.HasPrefix(by, "operator") {
		t.Fatalf("recorded %q by %q", reason, by)
	}
	if _, err := cli("audit", "clear-halt", "-id", id, "-reason", "again"); err == nil {
		t.Fatal("a cleared halt was cleared again")
	}
	// The sequencer checks the log and asks the witnesses again before anything is accepted.
	if checking, err := audit.Checking(ctx, db); err != nil || !checking {
		t.Fatalf("after the clearing, the log is not marked for checking (%v)", err)
	}
	// A reconcile halt whose row still differs is not cleared: it would halt again a minute
	// later, after actions were accepted on the edited row.
	if _, err := db.Exec(ctx, `INSERT INTO organisations (id, name, kind) VALUES ('slipped-in', 'Slipped in', 'agency')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO users (id, username, display_name, org_id, password_hash) VALUES ('u-slipped', 'slipped', 'S', 'slipped-in', 'x')`); err != nil {
		t.Fatal(err)
	}
	diffs, err := reconcile.Run(ctx, db)
	if err != nil || len(diffs) == 0 {
		t.Fatalf("reconcile: %v (%v)", diffs, err)
	}
	if err := audit.Halt(ctx, db, "reconcile: "+measure.Clip(diffs[0].String(), measure.MaxLine)); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT id::text FROM audit_halts WHERE cleared_at IS NULL`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if err := audit.GenerateAppendKey(other); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run([]string{"audit", "clear-halt", "-id", id, "-reason", "with the wrong key", "-database-url", url, "-append-key", other}, &stdout, &stderr); err == nil ||
		!strings.Contains(err.Error(), "append-key") {
		t.Fatalf("a clearing under another append key: %v", err)
	}
	if out, err := cli("audit", "clear-halt", "-id", id, "-reason", "looked at it"); err == nil || !strings.Contains(err.Error(), "still differ") {
		t.Fatalf("a reconcile halt was cleared with its row still edited: %v\n%s", err, out)
	}
	if _, err := db.Exec(ctx, `DELETE FROM users WHERE id = 'u-slipped'`); err != nil {
		t.Fatal(err)
	}
	if out, err := cli("audit", "clear-halt", "-id", id, "-reason", "the slipped-in user removed"); err != nil {
		t.Fatalf("clear-halt after the row was put back: %v\n%s", err, out)
	}
}
