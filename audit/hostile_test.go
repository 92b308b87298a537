package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
)

// hostileArchive writes a validly signed checkpoint of size entries into a new directory and
// returns it with the policy that trusts its key: what someone holding the log key could hand
// an auditor.
func hostileArchive(t *testing.T, size int64) (string, audit.Policy) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sv, _ := signature.LoadED25519SignerVerifier(priv)
	signer, vkey, err := audit.NewNoteSigner(context.Background(), "takedown.test/audit", sv)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: audit.Checkpoint{Origin: "takedown.test/audit", Size: size, Root: tlog.Hash{1}}.Text()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "checkpoint"), signed, 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := audit.ParsePolicy("origin takedown.test/audit\nlog " + vkey + "\nquorum none\n")
	if err != nil {
		t.Fatal(err)
	}
	return dir, pol
}

// TestHostileArchive: archives built to crash or hang the verifier are refused, quickly and in
// bounded memory: a sparse 8 GiB bundle, a bundle that is a link to /dev/zero, a FIFO, a
// checkpoint claiming 2^31 entries, an 8 GiB checkpoint.
func TestHostileArchive(t *testing.T) {
	bundle := func(dir string, size int64) string {
		p := filepath.Join(dir, "tile", filepath.FromSlash(audit.TilePath(-1, 0, int(size))))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name string
		size int64
		make func(t *testing.T, dir string)
		want string
	}{
		{"a sparse 8 GiB bundle", 3, func(t *testing.T, dir string) {
			f, err := os.Create(bundle(dir, 3))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(8 << 30); err != nil {
				t.Fatal(err)
			}
		}, "over the"},
		{"a bundle linked to /dev/zero", 3, func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/zero", bundle(dir, 3)); err != nil {
				t.Fatal(err)
			}
		}, "cannot be read"},
		{"a FIFO for a bundle", 3, func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(bundle(dir, 3), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"a checkpoint claiming 2^31 entries", 1 << 31, func(t *testing.T, dir string) {}, "missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, pol := hostileArchive(t, c.size)
			c.make(t, dir)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			rep, err := audit.VerifyArchive(dir, pol, nil)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(rep.Failures[0].Msg, c.want) {
				t.Fatalf("%s: %+v, want a failure saying %q", c.name, rep.Failures, c.want)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Fatalf("%s: the verifier allocated %d MiB", c.name, grew>>20)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s: %v to refuse", c.name, d)
			}
			t.Logf("%s: %s", c.name, rep.Failures[0].Msg)
		})
	}
	// The checkpoint itself, and the files an auditor names on the command line.
	dir, pol := hostileArchive(t, 3)
	f, err := os.OpenFile(filepath.Join(dir, "checkpoint"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(8 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := audit.VerifyArchive(dir, pol, nil); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("an 8 GiB checkpoint: %v", err)
	}
	if _, err := audit.ReadFile(filepath.Join(dir, "checkpoint"), audit.MaxSmallFile); err == nil {
		t.Fatal("an 8 GiB state file was read")
	}
	if _, err := audit.ReadFile("/dev/zero", audit.MaxSmallFile); err == nil {
		t.Fatal("/dev/zero was read as a file")
	}
}
