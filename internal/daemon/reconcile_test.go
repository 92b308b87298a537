package daemon_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestReconcileNamesTableEdits: a database administrator edits what a closed process decided,
// in SQL, leaving the log alone: a vote turned, a review removed, a decision reversed, a gate
// reference changed, a role granted, a measure moved to another stage, a prefectural
// designation widened to NPA scope, a rule slipped into the first policy version, an evidence
// file listed twice. The log still
// verifies and the API would serve the edits; reconcile names each row, and nothing else.
func TestReconcileNamesTableEdits(t *testing.T) {
	t.Parallel() // a server of its own; it polls with seconds to spare: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	m := newDraft(t, e, "self_execute", domestic)
	reviewAndApprove(t, e, m.ID)
	verifyLog(t, e) // the honest tables agree with the log
	if diffs, err := reconcile.Run(ctx, e.Owner); err != nil || len(diffs) != 0 {
		t.Fatalf("the honest tables: %v (%v)", diffs, err)
	}
	// A row inserted around the service, for this measure: the sequencer refuses it and halts;
	// once an operator clears the halt, the measure is compared again, not skipped for good.
	if _, err := e.Owner.Exec(ctx, `INSERT INTO audit_entries (id, key, measure_id, record) VALUES ('forged-1', 'forged-1', $1, convert_to('{"action":"vote"}', 'UTF8'))`, m.ID); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		var halts int
		if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_halts WHERE problem LIKE '%forged-1%'`).Scan(&halts); err != nil {
			t.Fatal(err)
		}
		if halts > 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the sequencer did not refuse the forged entry")
		}
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	// The next signed batch moves the recorded cursor past the forged entry: make one.
	after, err := e.Users["officer"].CreateCase(ctx, "after the halt", "")
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		var signed bool
		if err := e.Owner.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log l JOIN audit_entries a ON a.id = l.entry_id WHERE a.key = $1)`,
			"case/"+after).Scan(&signed); err != nil {
			t.Fatal(err)
		}
		if signed {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the action after the halt was not signed")
		}
	}
	var m1Digest string
	if err := e.Owner.QueryRow(ctx, `SELECT digest FROM measure_versions WHERE measure_id = $1 AND version = 1`, m.ID).Scan(&m1Digest); err != nil {
		t.Fatal(err)
	}

	var prefDesignation, evidenceSHA string
	if err := e.Owner.QueryRow(ctx, `SELECT sha256 FROM evidence WHERE measure_id = $1`, m.ID).Scan(&evidenceSHA); err != nil {
		t.Fatal(err)
	}
	if err := e.Owner.QueryRow(ctx, `SELECT user_id || ', prefectural, ' || to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ' to ' ||
		to_char(valid_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM executor_designations WHERE id = 'd-executor-pref'`).Scan(&prefDesignation); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE votes SET vote = 'reject' WHERE measure_id = '` + m.ID + `' AND member_id = '` + e.IDs["member1"] + `'`,
		`DELETE FROM reviews WHERE measure_id = '` + m.ID + `' AND kind = 'command'`,
		`UPDATE decisions SET outcome = 'rejected' WHERE measure_id = '` + m.ID + `'`,
		`INSERT INTO role_grants (user_id, role) VALUES ('` + e.IDs["officer"] + `', 'commander')`,
		`DELETE FROM role_grants WHERE user_id = '` + e.IDs["auditor"] + `'`,
		`UPDATE measures SET stage = 'EXECUTING' WHERE id = '` + m.ID + `'`,
		`UPDATE executor_designations SET scope = 'npa' WHERE id = 'd-executor-pref'`,
		`INSERT INTO authz_rules (version, role, op, effect) VALUES (1, 'officer', 'vote', 'allow')`,
		`UPDATE cases SET org_id = 'mpd-tokyo' WHERE id = '` + m.Case + `'`,
		`UPDATE users SET org_id = 'npa-cyber' WHERE id = '` + e.IDs["executor-pref"] + `'`,
		`UPDATE targets SET value = '198.18.0.66' WHERE measure_id = '` + m.ID + `' AND value = '203.0.113.10'`,
		`INSERT INTO evidence (id, measure_id, version, sha256, filename, kind, provenance, added_by)
			SELECT 'e-slipped-in', measure_id, version, sha256, 'again.pcap', kind, provenance, added_by FROM evidence WHERE measure_id = '` + m.ID + `'`,
	} {
		if _, err := e.Owner.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var diffs []reconcile.Difference
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if diffs, err = reconcile.Run(ctx, e.Owner); err != nil {
			t.Fatal(err)
		}
		waiting := slices.ContainsFunc(diffs, func(d reconcile.Difference) bool { return d.Table == reconcile.NotCompared })
		if len(diffs) >= 13 && !waiting || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // reads of the measure are logged too; let them be signed
	}
	var got []string
	for _, d := range diffs {
		got = append(got, d.Table+" "+d.Key+": "+d.InTable+" / "+d.InLog)
	}
	want := []string{
		"measures " + m.ID + ": EXECUTING / APPROVED",
		"votes " + m.ID + " v1 " + e.IDs["member1"] + ": reject / approve",
		"reviews " + m.ID + " v1 command " + e.IDs["commander"] + ":  / approve",
		"role_grants " + e.IDs["officer"] + " commander: granted / ",
		"role_grants " + e.IDs["auditor"] + " auditor:  / granted",
		"executor_designations d-executor-pref: " + strings.Replace(prefDesignation, "prefectural", "npa", 1) + " / " + prefDesignation,
		"authz_rules v1 officer vote allow: in force / ",
		"evidence " + m.ID + " v1 " + evidenceSHA + ": 2 / 1",
		"cases " + m.Case + ": mpd-tokyo / npa-cyber",
		"users " + e.IDs["executor-pref"] + ": npa-cyber / mpd-tokyo",
		"sealed_versions " + m.ID + " v1: " + m1Digest + " (its 2 target rows do not hash to the 2 targets sealed) / " + m1Digest,
	}
	// The reversed decision, with the approval's window on both sides.
	if i := slices.IndexFunc(got, func(g string) bool {
		return strings.HasPrefix(g, "decisions "+m.ID+" v1: rejected, window ") && strings.Contains(g, " / approved, window ")
	}); i >= 0 {
		want = append(want, got[i])
	} else {
		t.Errorf("reconcile did not name the reversed decision: %q", got)
	}
	// The swapped target is named as rows the records did not make, too.
	if i := slices.IndexFunc(got, func(g string) bool { return strings.HasPrefix(g, "targets "+m.ID+" v1: 2 targets, multiset hash ") }); i >= 0 {
		want = append(want, got[i])
	} else {
		t.Errorf("reconcile did not name the swapped target's rows: %q", got)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("reconcile did not name %q", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("reconcile found %d differences, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, d := range diffs {
		if d.InLog != "" && d.Index < 0 || d.String() == "" {
			t.Errorf("%v names no entry", d)
		}
	}
}

// TestBackgroundReconcileHalts: the worker compares the tables with the signed log on its own,
// and a row edited around the service (a case moved to another organisation, whose people
// would then read it) halts the log as an altered entry does: actions are refused, /healthz
// and /metrics say so, until the row is put back and an operator clears the halt.
func TestBackgroundReconcileHalts(t *testing.T) {
	t.Parallel() // a server of its own; it polls with seconds to spare: runs beside the others
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) { c.ReconcileEvery = time.Second })
	ctx := context.Background()
	officer := e.Users["officer"]
	id, err := officer.CreateCase(ctx, "moved in SQL", "")
	if err != nil {
		t.Fatal(err)
	}
	verifyLog(t, e)
	waitMetric := func(line string) string {
		t.Helper()
		var body string
		for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(100 * time.Millisecond) {
			resp, err := http.Get(e.D.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); strings.Contains(body, "\n"+line+"\n") {
				return body
			}
		}
		t.Fatalf("/metrics never said %q:\n%s", line, body)
		return ""
	}
	waitMetric("takedown_reconcile_differences 0")
	var org string
	if err := e.Owner.QueryRow(ctx, `SELECT org_id FROM cases WHERE id = $1`, id).Scan(&org); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE cases SET org_id = (SELECT id FROM organisations WHERE id <> $2 AND kind = 'agency' LIMIT 1) WHERE id = $1`, id, org); err != nil {
		t.Fatal(err)
	}
	waitMetric("takedown_audit_halted 1")
	body := waitMetric("takedown_reconcile_differences 1")
	if !strings.Contains(body, "\ntakedown_reconcile_last_run_timestamp_seconds ") {
		t.Fatalf("/metrics without the comparison's time:\n%s", body)
	}
	halts, err := audit.Halted(ctx, e.Owner)
	if err != nil || len(halts) != 1 || !strings.HasPrefix(halts[0], "reconcile: cases "+id) {
		t.Fatalf("halts after the case moved: %q (%v)", halts, err)
	}
	var ce *client.Error
	if _, err := officer.CreateCase(ctx, "while halted", ""); !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
		t.Fatalf("an action while the moved case halts the log: %v", err)
	}
	resp, err := http.Get(e.D.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "reconcile: cases "+id) {
		t.Fatalf("/healthz while halted: %d %s", resp.StatusCode, b)
	}
	// Put back and cleared: nothing differs, nothing halts again.
	if _, err := e.Owner.Exec(ctx, `UPDATE cases SET org_id = $2 WHERE id = $1`, id, org); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	waitMetric("takedown_reconcile_differences 0")
	if _, err := officer.CreateCase(ctx, "after the clear", ""); err != nil {
		t.Fatalf("an action after the row was put back and the halt cleared: %v", err)
	}
	time.Sleep(time.Second)
	if halts, err := audit.Halted(ctx, e.Owner); err != nil || len(halts) != 0 {
		t.Fatalf("halts after the clear: %q (%v)", halts, err)
	}
}
