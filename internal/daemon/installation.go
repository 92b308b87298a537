package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// installationFile holds, in dev's data directory, the ID of the installation it belongs to.
const installationFile = "installation"

// pairDataDir ties dev's data directory (Temporal's state) to its database (the measures): the
// two hold one installation's state and must not be mixed. A data directory and a database
// that are both new are paired; a pair is recognised; anything else is refused, saying how to
// go on, because a measure whose workflow is in neither place, or a workflow whose measure is
// gone, can never move again.
func pairDataDir(ctx context.Context, db *pgxpool.Pool, dir, where string) error {
	path := filepath.Join(dir, installationFile)
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	inDir := strings.TrimSpace(string(raw))
	var inDB string
	if err := db.QueryRow(ctx, `SELECT id FROM installation`).Scan(&inDB); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read the database's installation: %w", err)
	}
	var used bool // the database holds users: it has been started before
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&used); err != nil {
		return fmt.Errorf("look at the database: %w", err)
	}
	_, statErr := os.Stat(filepath.Join(dir, "temporal.db"))
	dirUsed := inDir != "" || statErr == nil
	reset := fmt.Sprintf("(hint: start with the data directory that goes with this database, or start afresh by dropping the database "+
		"and removing the data directory: `dropdb -h 127.0.0.1 takedown && rm -rf %s`, or give -database-url a new database)", dir)
	switch {
	case inDir != "" && inDir == inDB:
		return nil
	case inDir != "" && inDB != "":
		return fmt.Errorf("data directory %s belongs to installation %s but the database (%s) to installation %s %s", dir, inDir, where, inDB, reset)
	case inDB != "":
		return fmt.Errorf("the database (%s) belongs to installation %s, whose data directory is not %s (it has no record of it) %s", where, inDB, dir, reset)
	case inDir != "":
		return fmt.Errorf("data directory %s belongs to installation %s, but the database (%s) is new or was reset: its measures are gone %s", dir, inDir, where, reset)
	case used && !dirUsed:
		return fmt.Errorf("the database (%s) already holds an installation's users and measures, and data directory %s is new %s", where, dir, reset)
	}
	// Both new, or both from before installations were recorded: pair them.
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	if _, err := db.Exec(ctx, `INSERT INTO installation (id) VALUES ($1)`, id); err != nil {
		return fmt.Errorf("record the installation: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
