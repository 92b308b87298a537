package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/workflows"
)

// TestDevPairsDataDirAndDatabase: `dev` keeps Temporal's state in its data directory and the
// measures in its database. A new data directory on an old database (or the reverse) once
// started silently, printed no passwords and answered 500 for every measure in flight; it is
// now refused with a hint, and the right pair starts again.
func TestDevPairsDataDirAndDatabase(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(dir, db string) (*daemon.Daemon, error) {
		cfg := daemon.Config{HTTP: "127.0.0.1:0", DataDir: dir, DatabaseURL: db, MaxEvidence: 1 << 20,
			Workflow: workflows.DefaultConfig(), LogLevel: "warn", TemporalLogLevel: "off"}
		return daemon.Start(ctx, cfg, daemon.Dev, log)
	}
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	dbA, dbB := testdb.New(t), testdb.New(t)

	d, err := start(dirA, dbA)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Credentials) == 0 {
		t.Fatal("a first start printed no demo users")
	}
	d.Close()

	for _, c := range []struct{ name, dir, db string }{
		{"new data directory, old database", dirB, dbA},
		{"old data directory, new database", dirA, dbB},
	} {
		_, err := start(c.dir, c.db)
		if err == nil || !strings.Contains(err.Error(), "hint:") {
			t.Errorf("%s: want a refusal with a hint, got %v", c.name, err)
		}
	}

	d, err = start(dirA, dbA)
	if err != nil {
		t.Fatalf("the right pair does not start again: %v", err)
	}
	d.Close()
}
