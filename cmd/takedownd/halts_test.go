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
	for _, args := range [][]string{{"-id", id}, {"-id", id, "-reason", "  "}, {"-reason", "checked"}, {"-id", "999", "-reason", "checked"}} {
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
}
