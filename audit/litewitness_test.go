package audit_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/litewitness"
)

// TestLitewitness runs the log against filippo.io/torchwood's litewitness, a witness written
// by others, as a process of its own with its key in an ssh-agent, as its README sets it up:
// its cosignatures are stored, an archive verifies under a C2SP policy that requires it, and
// when shown a second history it refuses, and the log halts.
func TestLitewitness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds litewitness")
	}
	t.Parallel() // waits on its own processes and databases more than it computes
	ctx := context.Background()
	const name = "litewitness.test/w1"
	db, seq, vkey := newLog(t)
	lite := litewitness.Start(t, name, origin, vkey)
	addr, wkey := lite.Addr, lite.VKey
	w, err := audit.ParseWitness(lite.Spec())
	if err != nil {
		t.Fatal(err)
	}
	wit := &audit.Witnessing{DB: db, Witnesses: []*audit.Witness{w}, Log: seq.Log}
	for round := range 3 {
		appendN(t, db, round*40, 40, 8)
		drain(t, seq)
		text, ck, err := audit.Latest(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if got := wit.Cosign(ctx, text, ck); got != 1 {
			t.Fatalf("round %d: litewitness did not cosign size %d\n%s", round, ck.Size, lite.Log())
		}
	}
	arch := t.TempDir()
	if _, err := audit.Export(ctx, db, arch); err != nil {
		t.Fatal(err)
	}
	policy := func(text string) audit.Policy {
		pol, err := audit.ParsePolicy(text)
		if err != nil {
			t.Fatal(err)
		}
		return pol
	}
	litePolicy := "log " + vkey + "\nwitness lite " + wkey + " http://" + addr + "\nquorum lite\n"
	if rep, _ := audit.VerifyArchive(arch, policy(litePolicy), nil); !rep.OK() {
		t.Fatalf("a policy requiring litewitness: %v", rep.Failures)
	}
	// Another witness, never asked, required too: the quorum is not met.
	_, other, _ := ed25519.GenerateKey(nil)
	os2, _ := torchwood.NewCosignatureSigner("other.test/w2", other)
	both := litePolicy + "witness other " + os2.Verifier().String() + "\ngroup both all lite other\n"
	both = strings.Replace(both, "quorum lite\n", "", 1) + "quorum both\n"
	if rep, _ := audit.VerifyArchive(arch, policy(both), nil); rep.OK() || rep.Failures[0].Rule != "witnesses" {
		t.Fatalf("a quorum of two with one cosignature must fail on witnesses: %v", rep.Failures)
	}

	// Shown a second history (the same size, another root, signed by the log's key), the
	// witness refuses, and the log halts with the witness's name.
	_, ck, _ := audit.Latest(ctx, db)
	forged := ck
	forged.Root = tlog.RecordHash([]byte("another history"))
	forgedNote, err := note.Sign(&note.Note{Text: forged.Text()}, seq.Signer)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := audit.ParseWitness("http://" + addr + " " + wkey) // knows nothing of the witness's size
	w2 := &audit.Witnessing{DB: db, Witnesses: []*audit.Witness{fresh}, Log: seq.Log}
	if got := w2.Cosign(ctx, forgedNote, forged); got != 0 {
		t.Fatal("litewitness cosigned a second root for the same size")
	}
	// A log restored from an older dump: smaller than what the witness cosigned.
	smaller := audit.Checkpoint{Origin: origin, Size: ck.Size - 10, Root: tlog.RecordHash([]byte("older"))}
	smallerNote, _ := note.Sign(&note.Note{Text: smaller.Text()}, seq.Signer)
	if got := w2.Cosign(ctx, smallerNote, smaller); got != 0 {
		t.Fatal("litewitness cosigned a checkpoint smaller than one it cosigned")
	}
	halts, err := audit.Halted(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(halts) == 0 || !strings.Contains(strings.Join(halts, "\n"), name) {
		t.Fatalf("the log did not halt on the witness's refusal: %q", halts)
	}
}
