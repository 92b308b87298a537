package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/measure"
)

// stateCollector reads the installation's state from the database at each scrape, so every
// replica reports the same numbers and none is lost when a process restarts.
type stateCollector struct {
	db  *pgxpool.Pool
	log *slog.Logger
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	measuresDesc    = desc("takedown_measures", "Measure requests by stage.", "stage")
	oldestDesc      = desc("takedown_measure_stage_oldest_seconds", "How long the measure that has waited longest in each open stage has been in it.", "stage")
	decisionsDesc   = desc("takedown_decisions", "Commission decisions by outcome.", "outcome")
	haltedDesc      = desc("takedown_audit_halted", "1 while the audit log refuses to sign: the database differs from what it signed.")
	haltsDesc       = desc("takedown_audit_halts", "Standing halts of the audit log.")
	checkingDesc    = desc("takedown_audit_checking", "1 while a sequencer's start-up check of the log runs (nothing is accepted).")
	signedDesc      = desc("takedown_audit_signed_entries", "Entries under the newest signed checkpoint.")
	unsignedDesc    = desc("takedown_audit_unsigned_entries", "Entries written but not signed into the log yet (the sequencer's lag).")
	ageDesc         = desc("takedown_audit_checkpoint_age_seconds", "Time since the newest checkpoint was signed.")
	witnessDesc     = desc("takedown_audit_witness_behind_entries", "Entries the newest checkpoint a witness cosigned lacks, by witness.", "witness")
	differencesDesc = desc("takedown_reconcile_differences", "Rows on which the tables and the signed log disagreed at the newest background comparison.")
	notComparedDesc = desc("takedown_reconcile_not_compared", "Measures the newest background comparison left for the next (entries not signed yet).")
	reconciledDesc  = desc("takedown_reconcile_last_run_timestamp_seconds", "When the newest background comparison ran (0: never).")
	upDesc          = desc("takedown_state_up", "1 when the installation's state could be read from the database at this scrape.")
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{measuresDesc, oldestDesc, decisionsDesc, haltedDesc, haltsDesc, checkingDesc, signedDesc,
		unsignedDesc, ageDesc, witnessDesc, differencesDesc, notComparedDesc, reconciledDesc, upDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := 1.0
	if err := c.collect(ctx, ch); err != nil {
		c.log.Warn("metrics: read the installation's state", "err", err)
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (c *stateCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	terminal := []string{string(measure.Closed), string(measure.Rejected), string(measure.Expired), string(measure.Withdrawn)}
	rows, err := c.db.Query(ctx, `SELECT m.stage, count(*),
			COALESCE(EXTRACT(EPOCH FROM max(now() - COALESCE((SELECT max(h.entered_at) FROM stage_history h
				WHERE h.measure_id = m.id AND h.stage = m.stage), m.updated_at)) FILTER (WHERE m.stage <> ALL($1))), 0)::float8
		FROM measures m GROUP BY m.stage`, terminal)
	if err != nil {
		return err
	}
	for rows.Next() {
		var stage string
		var n int64
		var oldest float64
		if err := rows.Scan(&stage, &n, &oldest); err != nil {
			rows.Close()
			return err
		}
		gauge(ch, measuresDesc, float64(n), stage)
		if !measure.Stage(stage).Terminal() {
			gauge(ch, oldestDesc, oldest, stage)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = c.db.Query(ctx, `SELECT outcome, count(*) FROM decisions GROUP BY outcome`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var outcome string
		var n int64
		if err := rows.Scan(&outcome, &n); err != nil {
			rows.Close()
			return err
		}
		gauge(ch, decisionsDesc, float64(n), outcome)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	problems, err := audit.Halted(ctx, c.db)
	if err != nil {
		return err
	}
	gauge(ch, haltedDesc, b2f(len(problems) > 0))
	gauge(ch, haltsDesc, float64(len(problems)))
	var signed, unsigned int64
	var age float64
	var checking bool
	var differences, notCompared int
	var reconciled *time.Time
	if err := c.db.QueryRow(ctx, `SELECT COALESCE((SELECT max(size) FROM audit_checkpoints), 0),
			(SELECT count(*) FROM audit_entries e WHERE NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.entry_id = e.id)),
			COALESCE((SELECT EXTRACT(EPOCH FROM now() - max(created_at)) FROM audit_checkpoints), 0)::float8,
			s.checking, r.differences, r.not_compared, r.checked_at
		FROM audit_signing s, reconcile_status r`).
		Scan(&signed, &unsigned, &age, &checking, &differences, &notCompared, &reconciled); err != nil {
		return err
	}
	gauge(ch, checkingDesc, b2f(checking))
	gauge(ch, signedDesc, float64(signed))
	gauge(ch, unsignedDesc, float64(unsigned))
	gauge(ch, ageDesc, age)
	gauge(ch, differencesDesc, float64(differences))
	gauge(ch, notComparedDesc, float64(notCompared))
	var at float64
	if reconciled != nil {
		at = float64(reconciled.UnixMilli()) / 1000
	}
	gauge(ch, reconciledDesc, at)
	rows, err = c.db.Query(ctx, `SELECT witness, $1 - max(size) FROM audit_cosignatures GROUP BY witness`, signed)
	if err != nil {
		return err
	}
	for rows.Next() {
		var w string
		var behind int64
		if err := rows.Scan(&w, &behind); err != nil {
			rows.Close()
			return err
		}
		gauge(ch, witnessDesc, float64(behind), w)
	}
	return rows.Err()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
