package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
)

// Exported waits for the sequencer to sign every entry, exports the log and verifies the
// archive offline with the log's key alone, as an auditor would; it returns the report.
func (e *Env) Exported(t testing.TB) *audit.Report {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(20 * time.Second); ; {
		var entries int64
		if err := e.D.DB.QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&entries); err != nil {
			t.Fatal(err)
		}
		if _, ck, err := audit.Latest(ctx, e.D.DB); err == nil && ck.Size == entries {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sequencer has not caught up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	dir := t.TempDir()
	if _, err := audit.Export(ctx, e.D.DB, dir); err != nil {
		t.Fatal(err)
	}
	pol, err := audit.ParsePolicy("log " + e.D.VerifierKey + "\nquorum none\n")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyArchive(dir, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
