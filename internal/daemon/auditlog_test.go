package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/testenv"
)

// verifyLog waits for the sequencer to cover every entry, exports the log and verifies it
// offline, as an auditor would: signature, tree, and the process rules replayed.
func verifyLog(t *testing.T, e *testenv.Env) *audit.Report {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var pending, entries int64
		if err := e.D.DB.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_pending), (SELECT count(*) FROM audit_entries)`).Scan(&pending, &entries); err != nil {
			t.Fatal(err)
		}
		_, ck, err := audit.Latest(ctx, e.D.DB)
		if pending == 0 && err == nil && ck.Size == entries {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sequencer has not caught up: %d pending", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dir := t.TempDir()
	if _, err := audit.Export(ctx, e.D.DB, dir); err != nil {
		t.Fatal(err)
	}
	pol, err := audit.ParsePolicy("log " + e.D.VerifierKey + "\n")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyArchive(dir, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("the real log does not verify: %v", rep.Failures)
	}
	return rep
}
