// Package testenv gives tests a private PostgreSQL database and a running embedded takedownd.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/workflows"
)

// AdminURL is the server tests create their databases on (TAKEDOWN_TEST_PG, default local).
func AdminURL() string {
	if v := os.Getenv("TAKEDOWN_TEST_PG"); v != "" {
		return v
	}
	return "host=127.0.0.1 port=5432 dbname=postgres"
}

// Database creates an empty database for one test, dropped when the test ends, and returns
// its connection string.
func Database(t testing.TB) string {
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
	})
	return fmt.Sprintf("%s dbname=%s", hostPart(AdminURL()), name)
}

// hostPart drops dbname from a keyword/value connection string.
func hostPart(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return url
	}
	return fmt.Sprintf("host=%s port=%d user=%s", cfg.Host, cfg.Port, cfg.User)
}

// Env is a running takedownd with a logged-in client per demo user.
type Env struct {
	D     *daemon.Daemon
	Users map[string]*client.Client // by username
	IDs   map[string]string         // user ID by username
}

// Start runs takedownd in dev mode on a fresh database with an in-memory Temporal server.
func Start(t testing.TB, wf workflows.Config) *Env {
	t.Helper()
	cfg := daemon.Config{
		HTTP: "127.0.0.1:0", DatabaseURL: Database(t), Namespace: "takedown",
		MaxEvidence: 1 << 20, Workflow: wf, LogLevel: "warn", TemporalLogLevel: "off",
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	d, err := daemon.Start(context.Background(), cfg, daemon.Dev, log)
	if err != nil {
		t.Fatalf("start takedownd: %v", err)
	}
	t.Cleanup(d.Close)
	e := &Env{D: d, Users: map[string]*client.Client{}, IDs: map[string]string{}}
	for _, c := range d.Credentials {
		cl, err := client.Login(context.Background(), d.URL, c.Username, c.Password)
		if err != nil {
			t.Fatal(err)
		}
		e.Users[c.Username], e.IDs[c.Username] = cl, c.ID
	}
	return e
}
