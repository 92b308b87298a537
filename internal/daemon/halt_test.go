package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestServerStopsOnTamperedLog: a database superuser edits a sequenced audit record while the
// server runs. The sequencer's next check finds it, names the entry, and stops signing;
// /healthz answers 503 saying why; actions are refused (503) and nothing new is signed; an
// auditor can still read.
func TestServerStopsOnTamperedLog(t *testing.T) {
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) { c.LogRecheck = 200 * time.Millisecond })
	ctx := context.Background()
	u := e.Users
	m := newDraft(t, e, "self_execute", domestic)
	verifyLog(t, e) // everything so far is signed
	get := func(path string) (int, string) {
		resp, err := http.Get(e.D.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	health := func() (int, string) { return get("/healthz") }
	if status, body := health(); status != 200 {
		t.Fatalf("/healthz before: %d %s", status, body)
	}
	if status, body := get("/metrics"); status != 200 || !strings.Contains(body, "\ntakedown_audit_halted 0\n") {
		t.Fatalf("/metrics before: %d %s", status, body)
	}
	var idx int64
	if err := e.D.DB.QueryRow(ctx, `SELECT l.idx FROM audit_log l JOIN audit_entries a ON a.id = l.entry_id
		WHERE a.measure_id = $1 ORDER BY l.idx LIMIT 1`, m.ID).Scan(&idx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`ALTER TABLE audit_entries DISABLE TRIGGER USER`,
		`UPDATE audit_entries SET record = record || '\x20'::bytea
			WHERE id = (SELECT entry_id FROM audit_log WHERE idx = ` + itoa(idx) + `)`,
		`ALTER TABLE audit_entries ENABLE TRIGGER USER`,
		`ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_no_update`,
		`ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_no_truncate`} {
		if _, err := e.Owner.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var status int
	var body string
	for range 100 {
		if status, body = health(); status == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "audit_entries: entry "+itoa(idx)) {
		t.Fatalf("/healthz after the edit: %d %s", status, body)
	}
	if status, body := get("/metrics"); status != 200 || !strings.Contains(body, "\ntakedown_audit_halted 1\n") {
		t.Fatalf("/metrics after the edit: %d %s", status, body)
	}
	var signed int64
	if err := e.D.DB.QueryRow(ctx, `SELECT max(size) FROM audit_checkpoints`).Scan(&signed); err != nil {
		t.Fatal(err)
	}
	_, err := u["officer"].Act(ctx, m.ID, "submit", nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
		t.Fatalf("an action while the log cannot sign: %v", err)
	}
	if _, err := u["officer"].CreateCase(ctx, "another", ""); !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
		t.Fatalf("a new case while the log cannot sign: %v", err)
	}
	if _, err := u["auditor"].History(ctx, m.ID); err != nil {
		t.Fatalf("an auditor reads while the log cannot sign: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	var now int64
	if err := e.D.DB.QueryRow(ctx, `SELECT max(size) FROM audit_checkpoints`).Scan(&now); err != nil || now != signed {
		t.Fatalf("the log signed on over the edit: size %d, then %d (%v)", signed, now, err)
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// TestHaltIsAbsoluteAndImmediate: from the instant a halt is recorded (here as a witness's
// refusal would record it) no action is accepted, not a second later, and nothing is signed,
// though audited reads go on writing entries; from the instant it is cleared, actions are
// accepted again and what waited is signed.
func TestHaltIsAbsoluteAndImmediate(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	m := newDraft(t, e, "self_execute", domestic)
	verifyLog(t, e)
	signedSize := func() int64 {
		var n int64
		if err := e.Owner.QueryRow(ctx, `SELECT max(size) FROM audit_checkpoints`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for round := range 3 {
		if _, err := u["officer"].CreateCase(ctx, "before the halt", ""); err != nil {
			t.Fatal(err) // the service has just read the halts: none
		}
		if err := audit.Halt(ctx, e.Owner, fmt.Sprintf("witness w1 refused checkpoint (round %d): it holds a larger tree", round)); err != nil {
			t.Fatal(err)
		}
		_, err := u["officer"].Act(ctx, m.ID, "submit", nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
			t.Fatalf("round %d: an action at once after the halt: %v", round, err)
		}
		time.Sleep(300 * time.Millisecond) // a batch's interval: whatever was waiting would be signed
		before := signedSize()
		for range 3 {
			if _, err := u["auditor"].History(ctx, m.ID); err != nil { // audited: an entry each
				t.Fatal(err)
			}
		}
		time.Sleep(800 * time.Millisecond)
		if after := signedSize(); after != before {
			t.Fatalf("round %d: the log signed during the halt: size %d, then %d", round, before, after)
		}
		// An archive exported now says so, and an auditor's verify fails on it.
		dir := t.TempDir()
		if _, err := audit.Export(ctx, e.D.DB, dir); err != nil {
			t.Fatal(err)
		}
		pol, err := audit.ParsePolicy("log " + e.D.VerifierKey + "\nquorum none\n")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.VerifyArchive(dir, pol, nil)
		if err != nil || rep.OK() || !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool {
			return f.Rule == "halt" && strings.Contains(f.Msg, fmt.Sprintf("round %d", round))
		}) {
			t.Fatalf("round %d: the archive of a halted log verifies: %+v (%v)", round, rep, err)
		}
		if _, err := e.Owner.Exec(ctx, `UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`); err != nil {
			t.Fatal(err)
		}
		if _, err := u["officer"].CreateCase(ctx, "at once after the clearing", ""); err != nil {
			t.Fatalf("round %d: an action at once after the clearing: %v", round, err)
		}
	}
	verifyLog(t, e) // what waited during the halts is signed now
}

// TestRetryAfterHaltIsAFreshAttempt: a halt recorded after the service's own check but before
// the activity's transaction refuses the action (503), and changes nothing; the client's retry
// with the same Idempotency-Key once the halt is cleared is then carried out, not answered
// with the old refusal. (Found by the cluster test: a leader's start-up check beginning
// between the two checks left a few measures refused for minutes.)
func TestRetryAfterHaltIsAFreshAttempt(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	m := newDraft(t, e, "self_execute", domestic)
	off := e.Users["officer"]

	// Hold the measure's row: the service checks and sends the Update, whose activity waits.
	tx, err := e.Owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM measures WHERE id = $1 FOR UPDATE`, m.ID); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		_, err := off.ActOnce(ctx, m.ID, "submit", "submit-once", nil)
		sent <- err
	}()
	if err := eventually(t, func() error {
		var n int
		_ = e.Owner.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM measures WHERE id%FOR UPDATE%'`).Scan(&n)
		if n == 0 {
			return errors.New("the activity does not wait for the measure's row")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := audit.Halt(ctx, e.Owner, "witness w1 refused checkpoint: it holds a larger tree"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if err := <-sent; !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
		t.Fatalf("the action the halt overtook: %v, want 503", err)
	}
	if got, err := off.Measure(ctx, m.ID); err != nil || got.Stage != "DRAFT" {
		t.Fatalf("the refused action changed the measure: %s (%v)", got.Stage, err)
	}
	// While the halt stands, the retry is refused again; once cleared, it is carried out.
	if _, err := off.ActOnce(ctx, m.ID, "submit", "submit-once", nil); !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
		t.Fatalf("a retry during the halt: %v, want 503", err)
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	got, err := off.ActOnce(ctx, m.ID, "submit", "submit-once", nil)
	if err != nil || got.Stage != "LEGAL_REVIEW" {
		t.Fatalf("the retry with the same key after the clearing: %s, %v; want LEGAL_REVIEW", got.Stage, err)
	}
	// And once carried out, the key answers as the first success did, doing nothing again.
	if again, err := off.ActOnce(ctx, m.ID, "submit", "submit-once", nil); err != nil || again.Stage != "LEGAL_REVIEW" {
		t.Fatalf("a retry of the carried-out action: %s, %v", again.Stage, err)
	}
	var submits int
	if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE measure_id = $1 AND convert_from(record, 'UTF8')::jsonb->>'action' = 'submit'`, m.ID).Scan(&submits); err != nil || submits != 1 {
		t.Fatalf("%d submit entries (%v), want 1", submits, err)
	}
}
