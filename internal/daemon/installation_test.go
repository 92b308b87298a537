package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/demo"
	"github.com/takedown/takedown/internal/testdb"
)

// TestPairDataDir: `dev` keeps Temporal's state in its data directory and the measures in its
// database. A new data directory on an old database (or the reverse) once started silently,
// printed no passwords and answered 500 for every measure in flight; it is now refused with a
// hint, and the right pair is recognised.
func TestPairDataDir(t *testing.T) {
	ctx := context.Background()
	pool := func(url string) *pgxpool.Pool {
		if err := Migrate(ctx, url); err != nil {
			t.Fatal(err)
		}
		p, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	dbA, dbB := pool(testdb.New(t)), pool(testdb.New(t))
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{dirA, dirB} {
		if _, err := lockDir(d); err != nil {
			t.Fatal(err)
		}
	}

	if err := pairDataDir(ctx, dbA, dirA, "A"); err != nil {
		t.Fatalf("a new pair: %v", err)
	}
	if _, err := demo.Seed(ctx, dbA, testAppender(t), 4); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dir string
		db        *pgxpool.Pool
	}{
		{"new data directory, used database", dirB, dbA},
		{"used data directory, new database", dirA, dbB},
	} {
		err := pairDataDir(ctx, c.db, c.dir, c.name)
		if err == nil || !strings.Contains(err.Error(), "hint:") {
			t.Errorf("%s: want a refusal with a hint, got %v", c.name, err)
		}
	}
	if err := pairDataDir(ctx, dbA, dirA, "A"); err != nil {
		t.Fatalf("the same pair again: %v", err)
	}
}

// testAppender authenticates entries for tests that write without a daemon.
func testAppender(t testing.TB) *audit.Appender {
	t.Helper()
	a, err := audit.NewAppender(make([]byte, audit.AppendKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
