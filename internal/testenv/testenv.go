// Package testenv gives tests a running embedded takedownd on a private database.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
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
	// Owner is a pool connected as the tables' owner (a superuser here), for tests that act as
	// a database administrator would; the daemon runs as a role with fewer rights.
	Owner *pgxpool.Pool
	// Namespace is the Temporal namespace the server runs in.
	Namespace string

	logged *logTail
}

// showOnFailure prints the server's warnings and errors when t fails.
func showOnFailure(t testing.TB, logged *logTail) {
	t.Cleanup(func() {
		if t.Failed() && !testing.Verbose() {
			t.Logf("the server's warnings and errors, newest last:\n%s", logged.tail())
		}
	})
}

// Start runs takedownd in dev mode on a fresh database with an in-memory Temporal server.
func Start(t testing.TB, wf workflows.Config) *Env {
	t.Helper()
	return StartWith(t, wf, nil)
}

// logTail keeps the last 64 KiB a logger wrote.
type logTail struct {
	mu  sync.Mutex
	buf []byte
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - 64<<10; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	return len(p), nil
}

func (l *logTail) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
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
	if cfg.DataDir == "" {
		// Each server runs in a namespace of its own on the test binary's Temporal server:
		// starting and stopping one per test cost seconds under the race detector.
		cfg.DevTemporal, cfg.Namespace = temporalNamespace(t)
	}
	if k := recordingKey(); k != "" {
		cfg.PayloadKey = k
	}
	var logged logTail
	// The server's errors are kept, and shown when the test fails: a rare failure (a 500 met
	// once in many random sequences) then comes with its cause.
	var w io.Writer = &logged
	if testing.Verbose() {
		w = io.MultiWriter(os.Stderr, &logged)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := daemon.Start(context.Background(), cfg, daemon.Dev, log)
	if err != nil {
		t.Fatalf("start takedownd: %v", err)
	}
	t.Cleanup(d.Close)
	owner, err := pgxpool.New(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	showOnFailure(t, &logged)
	e := &Env{D: d, Users: map[string]*client.Client{}, IDs: map[string]string{}, Owner: owner, Namespace: cfg.Namespace, logged: &logged}
	for _, c := range d.Credentials {
		cl, err := client.Login(context.Background(), d.URL, c.Username, c.Password)
		if err != nil {
			t.Fatal(err)
		}
		e.Users[c.Username], e.IDs[c.Username] = Reading(cl), c.ID
	}
	return e
}
