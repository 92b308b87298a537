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
