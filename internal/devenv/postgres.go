package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is the database the embedded default uses.
type Postgres struct {
	URL  string
	stop func() error
}

// Stop stops a private cluster started by FindPostgres; it does nothing otherwise.
func (p *Postgres) Stop() error {
	if p.stop == nil {
		return nil
	}
	return p.stop()
}

// FindPostgres returns a database for the embedded default, in order: databaseURL if given;
// else the server on 127.0.0.1:5432, with database "takedown" created if missing; else a
// private cluster under dataDir/postgres, created with the machine's initdb and started with
// pg_ctl.
func FindPostgres(ctx context.Context, log *slog.Logger, databaseURL, dataDir string) (*Postgres, error) {
	if databaseURL != "" {
		return &Postgres{URL: databaseURL}, nil
	}
	local := "host=127.0.0.1 port=5432 dbname=postgres connect_timeout=3"
	if err := ensureDatabase(ctx, local, "takedown"); err == nil {
		return &Postgres{URL: "host=127.0.0.1 port=5432 dbname=takedown"}, nil
	} else {
		log.Info("no PostgreSQL on 127.0.0.1:5432; starting a private cluster", "reason", err)
	}
	return startCluster(ctx, log, filepath.Join(dataDir, "postgres"))
}

// ensureDatabase creates database name on the server at url if it is missing.
func ensureDatabase(ctx context.Context, url, name string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func pgBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Strings(matches)
	if len(matches) == 0 {
		return "", fmt.Errorf("%s not found (hint: apt-get install postgresql, or set DATABASE_URL)", name)
	}
	return matches[len(matches)-1], nil
}

func startCluster(ctx context.Context, log *slog.Logger, dir string) (*Postgres, error) {
	initdb, err := pgBinary("initdb")
	if err != nil {
		return nil, err
	}
	pgctl, err := pgBinary("pg_ctl")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		return nil, errors.New("a private PostgreSQL cluster cannot run as root (hint: run PostgreSQL as a service and set DATABASE_URL)")
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); os.IsNotExist(err) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		out, err := exec.CommandContext(ctx, initdb, "-D", dir, "-A", "trust", "-U", "takedown", "-E", "UTF8").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("initdb %s: %w\n%s", dir, err, out)
		}
	}
	port, err := clusterPort(dir)
	if err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", port, dir)
	out, err := exec.CommandContext(ctx, pgctl, "-D", dir, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "start").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	log.Info("private PostgreSQL started", "dir", dir, "port", port)
	base := fmt.Sprintf("host=127.0.0.1 port=%d user=takedown", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = ensureDatabase(ctx, base+" dbname=postgres", "takedown")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	return &Postgres{URL: base + " dbname=takedown", stop: func() error {
		return exec.Command(pgctl, "-D", dir, "-m", "fast", "stop").Run()
	}}, nil
}

// clusterPort keeps the private cluster on one port across restarts.
func clusterPort(dir string) (int, error) {
	f := filepath.Join(dir, "takedown.port")
	if b, err := os.ReadFile(f); err == nil {
		if p, err := strconv.Atoi(string(b)); err == nil {
			return p, nil
		}
	}
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], os.WriteFile(f, []byte(strconv.Itoa(ports[0])), 0o600)
}
