package daemon_test

import (
	"context"
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
	// A witness of its own, outside the servers, that outlives the restore.
	wkey, err := witness.LoadKey(filepath.Join(dir, "witness.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := witness.New("restore-witness", wkey, filepath.Join(dir, "witness"), []string{vkey}, quiet)
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
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) {
		c.SigningKey, c.LogOrigin, c.Witnesses, url = keyPath, origin, []string{spec}, c.DatabaseURL
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
				_ = e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_entries e WHERE NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.entry_id = e.id)`).Scan(&unsigned)
				if unsigned == 0 {
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
	if ck, err := audit.Trust(ctx, db, []string{vkey}); err != nil || ck.Size != atDump {
		t.Fatalf("the restored log: size %d, %v; want %d, verifying", ck.Size, err, atDump)
	}
	// Served again with the same witness, it is taken for what it is: a rollback.
	cfg := daemon.Config{HTTP: "127.0.0.1:0", DatabaseURL: restored, Namespace: "takedown", MaxEvidence: 1 << 20,
		Workflow: workflows.DefaultConfig(), LogLevel: "warn", TemporalLogLevel: "off", SigningKey: keyPath, LogOrigin: origin, Witnesses: []string{spec}}
	d, err := daemon.Start(ctx, cfg, daemon.Dev, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
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
}
