package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/reconcile"
)

// operator names who runs an operator's command, for its audit entry.
func operator() string {
	if u, err := user.Current(); err == nil {
		return "operator:" + u.Username
	}
	return "operator"
}

// listHalts prints the standing halts of the audit log, oldest first.
func listHalts(ctx context.Context, db *pgxpool.Pool, out io.Writer) error {
	rows, err := db.Query(ctx, `SELECT id, at, problem FROM audit_halts WHERE cleared_at IS NULL ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read the log's halts: %w", err)
	}
	n := 0
	for rows.Next() {
		var id int64
		var at time.Time
		var problem string
		if err := rows.Scan(&id, &at, &problem); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d\t%s\t%s\n", id, at.UTC().Format(time.RFC3339), problem)
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(out, "no halt stands: the log signs")
	}
	return nil
}

// clearHalt clears one standing halt after an operator's investigation, with their reason, and
// records that in the log itself (an entry the sequencer signs once no other halt stands).
// It needs the tables' owner: the serving role cannot change audit_halts.
func clearHalt(ctx context.Context, db *pgxpool.Pool, app *audit.Appender, id int64, reason, by string, out io.Writer) error {
	reason = strings.TrimSpace(reason)
	if id <= 0 || reason == "" {
		return errors.New("audit clear-halt needs -id N (see `takedownd audit halts`) and -reason TEXT: what was investigated and found")
	}
	if fe := measure.CheckLine("-reason", reason, 2000); fe != nil {
		return fe
	}
	// The clearing is an entry of the log: written under another key, the sequencer would
	// refuse it and halt again. Checked against an entry the service wrote.
	var entry string
	var raw, auth []byte
	err := db.QueryRow(ctx, `SELECT id, record, auth FROM audit_entries WHERE auth IS NOT NULL ORDER BY created_at DESC LIMIT 1`).Scan(&entry, &raw, &auth)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read an entry to check the append key: %w", err)
	}
	if err == nil && !app.Authentic(entry, raw, auth) {
		return errors.New("the -append-key given is not the key the service writes entries with: the clearing would be refused by the sequencer")
	}
	var problem string
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE audit_halts SET cleared_at = clock_timestamp(), cleared_by = $2
			WHERE id = $1 AND cleared_at IS NULL RETURNING problem`, id, by).Scan(&problem)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no standing halt %d (see `takedownd audit halts`)", id)
		}
		if err != nil {
			return fmt.Errorf("clear halt %d: %w", id, err)
		}
		// A row still edited (the cause of a reconcile, grant, policy or case halt) would halt
		// the log again, after actions were accepted on it meanwhile: put it back first.
		diffs, err := reconcile.Run(ctx, tx)
		if err != nil {
			return err
		}
		for _, d := range diffs {
			if d.Table != reconcile.NotCompared {
				return fmt.Errorf("halt %d not cleared: the tables still differ from the signed log (%s); put the rows back first (takedownd audit reconcile lists every difference)",
					id, measure.Clip(d.String(), measure.MaxLine))
			}
		}
		// Nothing is accepted until the sequencer has checked the log and asked the witnesses
		// afresh: a cause that still stands (a witness that still refuses) halts it again
		// before anything is signed.
		if _, err := tx.Exec(ctx, `UPDATE audit_signing SET checking = true`); err != nil {
			return fmt.Errorf("mark the log for checking: %w", err)
		}
		return app.Append(ctx, tx, fmt.Sprintf("halt-cleared/%d", id), &audit.Record{
			Actor: audit.Actor{ID: by, Roles: []string{}, Org: "system"}, Action: "log.halt_cleared", Reason: reason,
			Details: map[string]any{"halt": id, "problem": problem},
		})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cleared halt %d: %s\n", id, problem)
	return listHalts(ctx, db, out)
}

// restartLog continues a restored log under a new origin (audit.RestartLog): the operator's
// answer to a witness that holds a checkpoint the restored log does not extend.
func restartLog(ctx context.Context, cfg daemon.Config, previousVkey string, witnessed int64, reason string, log *slog.Logger, out io.Writer) error {
	if cfg.DatabaseURL == "" || cfg.SigningKey == "" || cfg.LogOrigin == "" || previousVkey == "" || strings.TrimSpace(reason) == "" {
		return errors.New("audit restart-log needs -database-url, -signing-key and -log-origin of the new log (takedownd keygen -log-origin NEW -out NEW.key), -previous-vkey OLD.vkey and -reason TEXT")
	}
	if fe := measure.CheckLine("-reason", reason, 2000); fe != nil {
		return fe
	}
	prev, err := os.ReadFile(previousVkey)
	if err != nil {
		return fmt.Errorf("read the previous verifier key: %w", err)
	}
	signer, vkey, err := daemon.LoadSigner(ctx, cfg)
	if err != nil {
		return err
	}
	db, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	app, err := daemon.LoadAppender(cfg, daemon.Tool)
	if err != nil {
		return err
	}
	ck, err := audit.RestartLog(ctx, db, audit.Restart{PreviousKeys: []string{strings.TrimSpace(string(prev))}, Signer: signer, VerifierKey: vkey,
		Appender: app, Reason: reason, By: operator(), Witnessed: witnessed, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "the log goes on as %s at size %d, its first checkpoint signed; its verifier key, for the witnesses and the auditors' policy (beside the previous one):\n%s\n"+
		"start the workers with -signing-key %s -log-origin %s, and add the new log to every witness\n", ck.Origin, ck.Size, vkey, cfg.SigningKey, ck.Origin)
	return nil
}
