// Package reconcile compares the domain tables with the audit log and names every difference.
//
// The log is what was signed; the tables are what the service serves. Someone with the
// database's credentials can edit a closed measure's votes in SQL: the log still verifies, and
// the API would serve the edit. Reconcile folds the signed records into the rows they say
// were written (each measure's stage, the votes, decisions, reviews and gates, the role
// grants) and compares them with the tables, row by row.
package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
)

// Difference is one row on which the tables and the log disagree. Table and Key name the row;
// InTable and InLog say what each holds ("" where one has no such row); Index is the log
// entry that wrote what the log holds (-1 when the log holds nothing).
type Difference struct {
	Table   string
	Key     string
	InTable string
	InLog   string
	Index   int64
}

func (d Difference) String() string {
	switch {
	case d.InLog == "":
		return fmt.Sprintf("%s %s: the table holds %q, which no signed entry wrote", d.Table, d.Key, d.InTable)
	case d.InTable == "":
		return fmt.Sprintf("%s %s: entry %d wrote %q, which the table no longer holds", d.Table, d.Key, d.Index, d.InLog)
	}
	return fmt.Sprintf("%s %s: the table holds %q, entry %d wrote %q", d.Table, d.Key, d.InTable, d.Index, d.InLog)
}

// Querier is what Run reads with.
type Querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// row is what one side says of a row: its value and, from the log, the entry that wrote it.
type row struct {
	value string
	index int64
}

// sides holds, per table, each side's rows by key.
type sides struct {
	log, table map[string]map[string]row
}

func (s *sides) put(side map[string]map[string]row, table, key string, r row) {
	if side[table] == nil {
		side[table] = map[string]row{}
	}
	side[table][key] = r
}

// Run compares the tables with the signed log and returns the differences, in table then key
// order. Rows of a measure that has entries still waiting for the sequencer are not compared
// (the tables run ahead of the signed log by up to one batch); call it on a quiet log or
// expect those to be skipped.
func Run(ctx context.Context, q Querier) ([]Difference, error) {
	s := &sides{log: map[string]map[string]row{}, table: map[string]map[string]row{}}
	if err := s.fold(ctx, q); err != nil {
		return nil, err
	}
	if err := s.read(ctx, q); err != nil {
		return nil, err
	}
	waiting, err := pendingMeasures(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []Difference
	for _, table := range []string{"measures", "votes", "decisions", "reviews", "gates", "role_grants"} {
		keys := map[string]bool{}
		for k := range s.log[table] {
			keys[k] = true
		}
		for k := range s.table[table] {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		for _, k := range sorted {
			if m, _, ok := strings.Cut(k, " "); ok && waiting[m] || waiting[k] {
				continue
			}
			l, inLog := s.log[table][k]
			t, inTable := s.table[table][k]
			if inLog && inTable && l.value == t.value {
				continue
			}
			d := Difference{Table: table, Key: k, InTable: t.value, InLog: l.value, Index: l.index}
			if !inLog {
				d.Index = -1
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// fold reads every signed record in log order and writes down the rows it says it wrote.
func (s *sides) fold(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT l.idx, e.record FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id ORDER BY l.idx`)
	if err != nil {
		return fmt.Errorf("read the signed log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var raw []byte
		if err := rows.Scan(&idx, &raw); err != nil {
			return fmt.Errorf("read the signed log: %w", err)
		}
		var r audit.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode entry %d: %w", idx, err)
		}
		s.apply(idx, &r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the signed log: %w", err)
	}
	return nil
}

// apply writes down what one record says it wrote.
func (s *sides) apply(idx int64, r *audit.Record) {
	if strings.HasPrefix(r.Action, "refused.") || strings.HasPrefix(r.Action, "read.") {
		return
	}
	str := func(k string) string { v, _ := r.Details[k].(string); return v }
	at := row{index: idx}
	put := func(table, key, value string) {
		at.value = value
		s.put(s.log, table, key, at)
	}
	if r.Measure != "" && r.To != "" {
		put("measures", r.Measure, r.To)
	}
	mv := fmt.Sprintf("%s v%d", r.Measure, r.Version)
	switch r.Action {
	case "vote":
		put("votes", mv+" "+r.Actor.ID, str("vote"))
	case "decide":
		tally, _ := r.Details["tally"].(map[string]any)
		outcome, _ := tally["outcome"].(string)
		put("decisions", mv, outcome)
	case "legal_review", "command_review":
		put("reviews", mv+" "+strings.TrimSuffix(r.Action, "_review")+" "+r.Actor.ID, str("decision"))
	case "post_hoc_decision":
		put("reviews", mv+" post_hoc "+r.Actor.ID, str("decision"))
	case "record_gate":
		put("gates", mv+" "+str("gate"), str("reference"))
	case "role.granted", "user.created", "user.bootstrapped":
		role := str("role")
		if r.Action == "user.bootstrapped" {
			role = "admin"
		}
		if role != "" {
			put("role_grants", str("user")+" "+role, "granted")
		}
	case "role.revoked":
		delete(s.log["role_grants"], str("user")+" "+str("role"))
	}
}

// read reads the same rows from the tables.
func (s *sides) read(ctx context.Context, q Querier) error {
	for _, t := range []struct{ table, sql string }{
		{"measures", `SELECT id, stage FROM measures`},
		{"votes", `SELECT measure_id || ' v' || version || ' ' || member_id, vote FROM votes`},
		{"decisions", `SELECT measure_id || ' v' || version, outcome FROM decisions`},
		{"reviews", `SELECT measure_id || ' v' || version || ' ' || kind || ' ' || reviewer_id, decision FROM reviews`},
		{"gates", `SELECT measure_id || ' v' || version || ' ' || kind, reference FROM gates`},
		{"role_grants", `SELECT user_id || ' ' || role, 'granted' FROM role_grants`},
	} {
		rows, err := q.Query(ctx, t.sql)
		if err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return fmt.Errorf("read %s: %w", t.table, err)
			}
			if _, dup := s.table[t.table][k]; dup {
				v += " (twice)"
			}
			s.put(s.table, t.table, k, row{value: v})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
	}
	return nil
}

// pendingMeasures returns the measures with entries the sequencer has not signed yet.
func pendingMeasures(ctx context.Context, q Querier) (map[string]bool, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT e.measure_id FROM audit_entries e
		WHERE e.measure_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.entry_id = e.id)`)
	if err != nil {
		return nil, fmt.Errorf("read waiting entries: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read waiting entries: %w", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
