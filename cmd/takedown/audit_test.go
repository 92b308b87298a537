package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/testdb"
)

// TestVerifyStateCatchesFork: an auditor verifies an archive and keeps its signed checkpoint;
// the same key then signs a second history (another database, the same size), and the next
// verify fails as a fork and prints both signed checkpoints, each of which checks under the
// log's key on its own.
func TestVerifyStateCatchesFork(t *testing.T) {
	ctx := context.Background()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sv, err := signature.LoadED25519SignerVerifier(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, err := audit.NewNoteSigner(ctx, "fork.test/audit", sv)
	if err != nil {
		t.Fatal(err)
	}
	app, err := audit.NewAppender(bytes.Repeat([]byte{7}, audit.AppendKeySize))
	if err != nil {
		t.Fatal(err)
	}
	// One log, exported: history says what it says.
	export := func(say string) string {
		db, err := pgxpool.New(ctx, testdb.Migrated(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			for i := range 6 {
				if err := app.Append(ctx, tx, fmt.Sprintf("e/%d", i), &audit.Record{
					Actor: audit.Actor{ID: "system", Roles: []string{}, Org: "system"}, Action: "note.added",
					Details: map[string]any{"text": fmt.Sprintf("%s %d", say, i)}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		seq := &audit.Sequencer{DB: db, Signer: signer, VerifierKeys: []string{vkey}, Origin: "fork.test/audit", Appender: app,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if _, err := seq.Step(ctx); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, err := audit.Export(ctx, db, dir); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	honest, other := export("honest"), export("forged")
	work := t.TempDir()
	policy := filepath.Join(work, "policy.txt")
	if err := os.WriteFile(policy, []byte("log "+vkey+"\nquorum none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(work, "auditor.state")
	verify := func(archive string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, []string{"audit", "verify", "-policy", policy, "-archive", archive, "-state", state}, &out)
		return out.String(), err
	}
	if out, err := verify(honest); err != nil {
		t.Fatalf("the honest archive: %v\n%s", err, out)
	}
	saved, _ := os.ReadFile(state)
	if !strings.Contains(string(saved), "\n\n— fork.test/audit ") {
		t.Fatalf("the state is not the signed checkpoint:\n%s", saved)
	}
	out, err := verify(other)
	if err == nil || !strings.Contains(out, "FAIL fork") {
		t.Fatalf("a second history of the same size passed: %v\n%s", err, out)
	}
	// Both signed checkpoints are printed, and each verifies under the log's key.
	pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	parts := strings.Split(out, "--- ")
	if len(parts) != 3 {
		t.Fatalf("want two printed checkpoints:\n%s", out)
	}
	roots := map[string]bool{}
	for _, p := range parts[1:] {
		_, note, _ := strings.Cut(p, "---\n")
		ck, err := audit.ReadState([]byte(note), pol)
		if err != nil {
			t.Fatalf("a printed checkpoint does not verify: %v\n%s", err, note)
		}
		roots[ck.Root.String()] = true
	}
	if len(roots) != 2 {
		t.Fatalf("the printed checkpoints are not the two histories:\n%s", out)
	}
	// The state is left as it was: the fork is not adopted.
	if now, _ := os.ReadFile(state); !bytes.Equal(now, saved) {
		t.Fatal("a failed verify overwrote the state")
	}
	// A state file that is not signed by the log is refused, not trusted.
	if err := os.WriteFile(state, bytes.Replace(saved, []byte("\n\n— "), []byte("\n\n— x"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := verify(honest); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("a tampered state was accepted: %v\n%s", err, out)
	}
}
