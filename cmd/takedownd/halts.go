package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
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
	var problem string
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE audit_halts SET cleared_at = clock_timestamp(), cleared_by = $2
			WHERE id = $1 AND cleared_at IS NULL RETURNING problem`, id, by).Scan(&problem)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no standing halt %d (see `takedownd audit halts`)", id)
		}
		if err != nil {
			return fmt.Errorf("clear halt %d: %w", id, err)
		}
		if strings.HasPrefix(problem, "reconcile: ") {
			// A row still edited would halt the log again a minute later, after accepting
			// actions on it meanwhile: put it back first.
			diffs, err := reconcile.Run(ctx, tx)
			if err != nil {
				return err
			}
			for _, d := range diffs {
				if "reconcile: "+measure.Clip(d.String(), measure.MaxLine) == problem {
					return fmt.Errorf("halt %d still stands: %s (put the row back first; takedownd audit reconcile lists every difference)", id, d)
				}
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
