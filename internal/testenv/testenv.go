// Package testenv gives tests a running embedded takedownd on a private database.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/takedown/takedown/internal/testdb"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/workflows"
)

// Env is a running takedownd with a logged-in client per demo user.
type Env struct {
	D     *daemon.Daemon
	Users map[string]*client.Client // by username
	IDs   map[string]string         // user ID by username
}

// Start runs takedownd in dev mode on a fresh database with an in-memory Temporal server.
func Start(t testing.TB, wf workflows.Config) *Env {
	t.Helper()
	return StartWith(t, wf, nil)
}

// StartWith is Start with the configuration adjusted by adjust (when not nil).
func StartWith(t testing.TB, wf workflows.Config, adjust func(*daemon.Config)) *Env {
	t.Helper()
	cfg := daemon.Config{
		HTTP: "127.0.0.1:0", DatabaseURL: testdb.New(t), Namespace: "takedown",
		MaxEvidence: 1 << 20, Workflow: wf, LogLevel: "warn", TemporalLogLevel: "off",
		PasswordCost: bcrypt.MinCost, // many servers start under the race detector
	}
	if adjust != nil {
		adjust(&cfg)
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
