package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
)

// TestRestartChainsToThePreviousLog: an archive of a log restarted under a new origin verifies
// when its restart entry holds a checkpoint of the previous origin that the entries before it
// give, signed by a key the auditor lists; and fails, on the restart entry, for every other
// previous checkpoint.
func TestRestartChainsToThePreviousLog(t *testing.T) {
	const n = 300 // the previous log, over a bundle's edge
	recs := make([]*audit.Record, n+8)
	prior := func(i int) *audit.Record {
		if recs[i] == nil { // one record object each: its salt, and so its leaf, is kept
			recs[i] = &audit.Record{Actor: audit.Actor{ID: "u-test"}, Action: "test.append", Details: map[string]any{"n": i}}
		}
		return recs[i]
	}
	old := t.TempDir()
	_, signer1, vkey1 := newLogKeyOnly(t)
	ck1, _ := writeSigned(t, old, n, prior, signer1)
	prevNote, err := os.ReadFile(filepath.Join(old, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	const origin2 = "takedown.test/audit-2"
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sv, err := signature.LoadED25519SignerVerifier(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer2, vkey2, err := audit.NewNoteSigner(context.Background(), origin2, sv)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(s note.Signer, c audit.Checkpoint) string {
		b, err := note.Sign(&note.Note{Text: c.Text()}, s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// restarted writes the new log: the previous entries, then at index at the restart entry
	// holding previous, then a few more.
	restarted := func(at int, previous string) string {
		dir := t.TempDir()
		gen := func(i int) *audit.Record {
			switch {
			case i < n:
				return prior(i)
			case i == at:
				return &audit.Record{Actor: audit.Actor{ID: "operator:test"}, Action: audit.RestartAction, Reason: "restored",
					Details: map[string]any{"previous_checkpoint": previous, "previous_size": n, "witnessed_size": n + 20}}
			}
			return &audit.Record{Actor: audit.Actor{ID: "u-test"}, Action: "test.append", Details: map[string]any{"n": i}}
		}
		writeSigned(t, dir, n+8, gen, signer2)
		return dir
	}
	verify := func(dir, policy string) *audit.Report {
		t.Helper()
		pol, err := audit.ParsePolicy(policy)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.VerifyArchive(dir, pol, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	both := "log " + vkey2 + "\nlog " + vkey1 + "\nquorum none\n"

	for _, at := range []int{n, n + 3} {
		rep := verify(restarted(at, string(prevNote)), both)
		if !rep.OK() || len(rep.Restarts) != 1 {
			t.Fatalf("restart at %d: %v, restarts %+v", at, rep.Failures, rep.Restarts)
		}
		if r := rep.Restarts[0]; r.Index != int64(at) || r.PreviousOrigin != origin || r.PreviousSize != n || r.Witnessed != n+20 {
			t.Fatalf("restart at %d as verified: %+v", at, r)
		}
	}
	wrongRoot := ck1
	wrongRoot.Root = tlog.RecordHash([]byte("another history"))
	beyond := ck1
	beyond.Size = n + 1
	shorter := ck1
	shorter.Size = n - 1
	sameOrigin := ck1
	sameOrigin.Origin = origin2
	for name, c := range map[string]struct {
		at       int
		previous string
		policy   string
	}{
		"the previous key not in the policy":   {n, string(prevNote), "log " + vkey2 + "\nquorum none\n"},
		"a root the entries do not give":       {n, sign(signer1, wrongRoot), both},
		"a size beyond the restart entry":      {n, sign(signer1, beyond), both},
		"a size whose root the entries lack":   {n, sign(signer1, shorter), both},
		"the new origin named as the previous": {n, sign(signer2, sameOrigin), both},
		"no checkpoint at all":                 {n, "", both},
		"a checkpoint's text without its note": {n, ck1.Text(), both},
	} {
		rep := verify(restarted(c.at, c.previous), c.policy)
		if rep.OK() || len(rep.Restarts) != 0 {
			t.Errorf("%s: verified (%+v)", name, rep.Restarts)
			continue
		}
		if f := rep.Failures[0]; f.Rule != "restart" || f.Index != int64(c.at) {
			t.Errorf("%s: failures %v; want the restart entry %d named", name, rep.Failures, c.at)
		}
	}
}
