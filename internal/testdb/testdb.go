// Package testdb gives each test a private PostgreSQL database with the schema applied.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/schema"
)

// AdminURL is the server tests create their databases on (TAKEDOWN_TEST_PG, default local).
func AdminURL() string {
	if v := os.Getenv("TAKEDOWN_TEST_PG"); v != "" {
		return v
	}
	return "host=127.0.0.1 port=5432 dbname=postgres"
}

// New creates an empty database for one test, dropped when the test ends, and returns
// its connection string.
func New(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("connect to PostgreSQL for tests (set TAKEDOWN_TEST_PG): %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "takedown_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), AdminURL())
		if err != nil {
			t.Logf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
		// The serving role `takedownd dev` or AppRole made for this database.
		if _, err := conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+name+"_app"); err != nil {
			t.Logf("drop role %s_app: %v", name, err)
		}
	})
	return fmt.Sprintf("%s dbname=%s", hostPart(AdminURL()), name)
}

// AppRole creates the login role serve and worker would run as on the database at url (one
// made by New), named <database>_app and dropped with it, and returns its name and a
// connection string that logs in as it. It has no rights until granted (schema.Grant).
func AppRole(t testing.TB, url string) (name, roleURL string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	name = cfg.Database + "_app"
	if _, err := conn.Exec(context.Background(), "CREATE ROLE "+name+" LOGIN PASSWORD 'app'"); err != nil {
		t.Fatalf("create role %s: %v", name, err)
	}
	return name, fmt.Sprintf("host=%s port=%d user=%s password=app dbname=%s", cfg.Host, cfg.Port, name, cfg.Database)
}

// hostPart drops dbname from a keyword/value connection string.
func hostPart(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return url
	}
	return fmt.Sprintf("host=%s port=%d user=%s", cfg.Host, cfg.Port, cfg.User)
}

// Migrated is New with the schema applied.
func Migrated(t testing.TB) string {
	t.Helper()
	url := New(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := schema.Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	return url
}
