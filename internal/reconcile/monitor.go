package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/measure"
)

// Snapshot runs Run on one snapshot of the database: the log and the tables as they were at
// one instant, so a row written between two of its reads is never mistaken for a difference.
func Snapshot(ctx context.Context, db *pgxpool.Pool) (diffs []Difference, err error) {
	err = pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		diffs, err = Run(ctx, tx)
		return err
	})
	return diffs, err
}

// MaxHalts bounds the halts one comparison records: past it, one more halt says how many rows
// more differ (`takedownd audit reconcile` lists them all).
const MaxHalts = 20

// Monitor compares the tables with the signed log every Every, as `takedownd audit reconcile`
// does, records each comparison for /metrics (reconcile_status), and halts the log on every
// difference found in two comparisons in a row: a row edited around the service stops
// everything until an operator has looked, as an altered log entry does. One comparison alone
// may see a row whose entry the sequencer has not signed yet; the next will not.
type Monitor struct {
	DB    *pgxpool.Pool
	Every time.Duration
	Log   *slog.Logger

	seen map[string]bool // the differences of the previous comparison
}

// Run compares every Every until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.Every):
		}
		if _, err := m.Check(ctx); err != nil && ctx.Err() == nil {
			m.Log.Error("reconcile the tables with the signed log", "err", err)
		}
	}
}

// Check runs one comparison and returns the differences it halted the log for. While a halt
// stands nothing is compared: the sequencer signs nothing, so every row written just before
// the halt would look like a difference; the comparison starts afresh once it is cleared.
func (m *Monitor) Check(ctx context.Context) ([]Difference, error) {
	halts, err := audit.Halted(ctx, m.DB)
	if err != nil {
		return nil, err
	}
	if len(halts) > 0 {
		m.seen = nil
		return nil, nil
	}
	diffs, err := Snapshot(ctx, m.DB)
	if err != nil {
		return nil, err
	}
	now := map[string]bool{}
	var standing []Difference
	notCompared := 0
	for _, d := range diffs {
		if d.Table == NotCompared {
			notCompared++
			continue
		}
		k := d.String()
		now[k] = true
		if m.seen[k] {
			standing = append(standing, d)
		}
	}
	m.seen = now
	if _, err := m.DB.Exec(ctx, `UPDATE reconcile_status SET checked_at = now(), differences = $1, not_compared = $2`, len(now), notCompared); err != nil {
		return nil, fmt.Errorf("record the comparison: %w", err)
	}
	for i, d := range standing {
		problem := "reconcile: " + measure.Clip(d.String(), measure.MaxLine)
		if i == MaxHalts {
			problem = fmt.Sprintf("reconcile: %d more rows differ from the signed log (takedownd audit reconcile lists them)", len(standing)-i)
		}
		m.Log.Error("ALERT: a table differs from the signed log; halting", "difference", d.String())
		if err := audit.Halt(context.WithoutCancel(ctx), m.DB, problem); err != nil {
			return standing, fmt.Errorf("record the halt: %w", err)
		}
		if i == MaxHalts {
			break
		}
	}
	return standing, nil
}
