package daemon_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/internal/witness"
	"github.com/takedown/takedown/workflows"
)

// TestRestoreFromBackup: a dump restored into an empty database holds a log that verifies
// against its signing key; but the witness cosigned what was written after the dump, so the
// restored log looks rolled back, and the service halts at start, naming the witness, rather
// than sign a second history over the lost entries (README: "Backup and restore").
func TestRestoreFromBackup(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	ctx := context.Background()
	dir := t.TempDir()
	const origin = "restore.test/audit"
	keyPath := filepath.Join(dir, "audit.key")
	if err := audit.GenerateKey(keyPath); err != nil {
		t.Fatal(err)
	}
	key, err := audit.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	_, vkey, err := audit.NewNoteSigner(ctx, origin, key)
	if err != nil {
		t.Fatal(err)
	}
	// The key of the log that goes on after the restore, under an origin of its own.
	const origin2 = "restore.test/audit-2"
	key2Path := filepath.Join(dir, "audit-2.key")
	if err := audit.GenerateKey(key2Path); err != nil {
		t.Fatal(err)
	}
	key2, err := audit.LoadKey(key2Path)
	if err != nil {
		t.Fatal(err)
	}
	_, vkey2, err := audit.NewNoteSigner(ctx, origin2, key2)
	if err != nil {
		t.Fatal(err)
	}
	// A witness of its own, outside the servers, that outlives the restore; it knows both logs,
	// as an operator adds the new one to every witness.
	wkey, err := witness.LoadKey(filepath.Join(dir, "witness.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := witness.New("restore-witness", wkey, filepath.Join(dir, "witness"), []string{vkey, vkey2}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: w}
	go srv.Serve(l)
	defer srv.Close()
	spec := "http://" + l.Addr().String() + " " + w.VerifierKey()

	var url string
	appendKey := filepath.Join(dir, "append.key") // kept: the restart's entry is written with it
	if err := audit.GenerateAppendKey(appendKey); err != nil {
		t.Fatal(err)
	}
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) {
		c.SigningKey, c.LogOrigin, c.Witnesses, url, c.AppendKey = keyPath, origin, []string{spec}, c.DatabaseURL, appendKey
	})
	cosigned := func(db *pgxpool.Pool) int64 {
		var n int64
		_ = db.QueryRow(ctx, `SELECT COALESCE(max(size), 0) FROM audit_cosignatures`).Scan(&n)
		return n
	}
	signed := func(db *pgxpool.Pool) int64 {
		var n int64
		_ = db.QueryRow(ctx, `SELECT COALESCE(max(size), 0) FROM audit_checkpoints`).Scan(&n)
		return n
	}
	waitCosigned := func() int64 {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if n := cosigned(e.Owner); n > 0 && n == signed(e.Owner) {
				var unsigned int
				err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_entries e WHERE NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.entry_id = e.id)`).Scan(&unsigned)
				if err == nil && unsigned == 0 {
					return n
				}
			}
		}
		t.Fatalf("the witness did not cosign the newest checkpoint (signed %d, cosigned %d)", signed(e.Owner), cosigned(e.Owner))
		return 0
	}
	newDraft(t, e, "self_execute", domestic)
	atDump := waitCosigned()
	dump := filepath.Join(dir, "takedown.dump")
	if out, err := exec.Command("pg_dump", "-Fc", "-f", dump, "-d", url).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	newDraft(t, e, "self_execute", domestic) // written after the backup, and cosigned
	lost := waitCosigned()
	if lost <= atDump {
		t.Fatalf("nothing was signed after the dump (%d, %d)", atDump, lost)
	}
	e.D.Close()

	restored := testdb.New(t)
	if out, err := exec.Command("pg_restore", "--exit-on-error", "-d", restored, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	db, err := pgxpool.New(ctx, restored)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The restored log is whole and signed: every entry re-hashed against its checkpoint.
	// A change the workflow makes on its own may be signed between the wait and the dump:
	// the dump then holds a little more than atDump, never what was written after it.
	ck, err := audit.Trust(ctx, db, []string{vkey})
	if err != nil || ck.Size < atDump || ck.Size >= lost {
		t.Fatalf("the restored log: size %d, %v; want %d to %d, verifying", ck.Size, err, atDump, lost-1)
	}
	atDump = ck.Size
	// Served again with the same witness, it is taken for what it is: a rollback.
	cfg := daemon.Config{HTTP: "127.0.0.1:0", DatabaseURL: restored, Namespace: "takedown", MaxEvidence: 1 << 20,
		Workflow: workflows.DefaultConfig(), LogLevel: "warn", TemporalLogLevel: "off", SigningKey: keyPath, LogOrigin: origin, Witnesses: []string{spec}, AppendKey: appendKey}
	d, err := daemon.Start(ctx, cfg, daemon.Dev, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }()
	resp, err := http.Get(d.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "rolled back or forked") {
		t.Fatalf("/healthz after the restore: %d %s", resp.StatusCode, body)
	}
	if n := signed(db); n != atDump {
		t.Fatalf("the restored log was signed on to %d over the lost entries (%d..%d)", n, atDump, lost)
	}

	// The way back (takedownd audit restart-log): the log goes on under a new origin, its first
	// entry holding the old origin's last checkpoint and the range the witness saw and the
	// database lost. Refused while a sequencer runs, with the old origin's name, or with a
	// witnessed size that loses nothing.
	cfg2 := cfg
	cfg2.SigningKey, cfg2.LogOrigin = key2Path, origin2
	signer2, _, err := daemon.LoadSigner(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	app, err := daemon.LoadAppender(cfg, daemon.Tool)
	if err != nil {
		t.Fatal(err)
	}
	restart := audit.Restart{PreviousKeys: []string{vkey}, Signer: signer2, VerifierKey: vkey2, Appender: app,
		Reason: "restored from the nightly dump after a disk failure", By: "operator:test", Witnessed: lost, Log: quiet}
	if _, err := audit.RestartLog(ctx, db, restart); !errors.Is(err, audit.ErrSequencing) {
		t.Fatalf("a restart while the sequencer runs: %v", err)
	}
	d.Close()
	same := restart
	same.Signer, _, err = daemon.LoadSigner(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.RestartLog(ctx, db, same); err == nil || !strings.Contains(err.Error(), "new origin") {
		t.Fatalf("a restart under the old origin: %v", err)
	}
	madeUp := restart
	madeUp.Witnessed = lost + 1000
	if _, err := audit.RestartLog(ctx, db, madeUp); err == nil || !strings.Contains(err.Error(), "not the size the witness's refusal names") {
		t.Fatalf("a restart with a witnessed size the halt does not name: %v", err)
	}
	wrongKey := restart
	wrongKey.PreviousKeys = []string{vkey2}
	if _, err := audit.RestartLog(ctx, db, wrongKey); err == nil || !strings.Contains(err.Error(), "not what the previous key signed") {
		t.Fatalf("a restart naming another previous key: %v", err)
	}
	ck, err = audit.RestartLog(ctx, db, restart)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Origin != origin2 || ck.Size <= atDump {
		t.Fatalf("after the restart the newest checkpoint is %s at %d; want %s beyond %d", ck.Origin, ck.Size, origin2, atDump)
	}
	if _, err := audit.RestartLog(ctx, db, restart); err == nil || !strings.Contains(err.Error(), "already goes on as") {
		t.Fatalf("a second restart: %v", err)
	}
	// Nor can it go on under a third origin with no witness's refusal standing.
	cfg3 := cfg2
	cfg3.SigningKey, cfg3.LogOrigin = filepath.Join(dir, "audit-3.key"), "restore.test/audit-3"
	if err := audit.GenerateKey(cfg3.SigningKey); err != nil {
		t.Fatal(err)
	}
	signer3, vkey3, err := daemon.LoadSigner(ctx, cfg3)
	if err != nil {
		t.Fatal(err)
	}
	third := restart
	third.PreviousKeys, third.Signer, third.VerifierKey, third.Witnessed = []string{vkey2}, signer3, vkey3, 0
	if _, err := audit.RestartLog(ctx, db, third); err == nil || !strings.Contains(err.Error(), "no witness's refusal stands") {
		t.Fatalf("a restart with no witness's refusal standing: %v", err)
	}
	// A worker still configured for the old log, or with a key this log never used, refuses to
	// start, rather than halt the log as tampered with.
	if _, err := daemon.Start(ctx, cfg, daemon.Dev, quiet); err == nil || !strings.Contains(err.Error(), "is not this log's origin") {
		t.Fatalf("a worker with the old origin after the restart: %v", err)
	}
	stray := cfg2
	stray.SigningKey = filepath.Join(dir, "stray.key")
	if err := audit.GenerateKey(stray.SigningKey); err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.Start(ctx, stray, daemon.Dev, quiet); err == nil || !strings.Contains(err.Error(), "not a key this log was ever signed with") {
		t.Fatalf("a worker with a key the log never used: %v", err)
	}
	var halts int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_halts WHERE cleared_at IS NULL`).Scan(&halts); err != nil || halts != 0 {
		t.Fatalf("%d halts stand after the misconfigured workers (%v)", halts, err)
	}
	// Served with the new key, the log is checked, cosigned under its new origin, and open.
	d, err = daemon.Start(ctx, cfg2, daemon.Dev, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(d.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == http.StatusOK && cosigned(db) == signed(db) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: /healthz %v, cosigned %d of %d", resp, cosigned(db), signed(db))
		}
	}
	// An auditor follows the chain: with both logs' keys the archive verifies, and names where
	// the log restarted and what was lost; with the new key alone the restart cannot be checked.
	archive := filepath.Join(dir, "archive")
	if _, err := audit.Export(ctx, db, archive); err != nil {
		t.Fatal(err)
	}
	pol, err := audit.ParsePolicy("log " + vkey2 + "\nlog " + vkey + "\nwitness w " + w.VerifierKey() + "\nquorum w\n")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyArchive(archive, pol, nil)
	if err != nil || !rep.OK() || len(rep.Restarts) != 1 {
		t.Fatalf("the restarted log's archive: %+v, %v", rep, err)
	}
	if r := rep.Restarts[0]; r.PreviousOrigin != origin || r.PreviousSize != atDump || r.Witnessed != lost || r.Index < atDump {
		t.Fatalf("the restart as verified: %+v; want %s at %d, %d witnessed", r, origin, atDump, lost)
	}
	alone, err := audit.ParsePolicy("log " + vkey2 + "\nwitness w " + w.VerifierKey() + "\nquorum w\n")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.VerifyArchive(archive, alone, nil); err != nil || rep.OK() || rep.Failures[0].Rule != "restart" {
		t.Fatalf("the archive with the new key alone: %+v, %v", rep, err)
	}
	// An auditor who had seen the lost entries is told their checkpoint is not extended.
	var seen audit.Checkpoint
	seen.Origin, seen.Size = origin, lost
	if rep, err := audit.VerifyArchive(archive, pol, &seen); err != nil || rep.OK() {
		t.Fatalf("an auditor who saw size %d: %+v, %v", lost, rep, err)
	}
}
