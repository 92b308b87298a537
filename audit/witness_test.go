package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
)

// testWitness is a minimal c2sp.org/tlog-witness: it cosigns a checkpoint only if the log
// signed it and it extends the last one it cosigned.
type testWitness struct {
	mu     sync.Mutex
	logKey note.Verifier
	signer *torchwood.CosignatureSigner
	size   int64
	root   tlog.Hash
}

func (w *testWitness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	head, ckText, _ := bytes.Cut(body, []byte("\n\n"))
	sc := bufio.NewScanner(bytes.NewReader(head))
	sc.Scan()
	old, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "old "), 10, 64)
	if err != nil {
		http.Error(rw, "bad old line", 400)
		return
	}
	var proof tlog.TreeProof
	for sc.Scan() {
		h, _ := base64.StdEncoding.DecodeString(sc.Text())
		proof = append(proof, tlog.Hash(h))
	}
	n, err := note.Open(ckText, note.VerifierList(w.logKey))
	if err != nil {
		http.Error(rw, "not signed by the log", http.StatusForbidden)
		return
	}
	ck, err := audit.ParseCheckpoint(n.Text)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusForbidden)
		return
	}
	if old != w.size {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(409)
		fmt.Fprintf(rw, "%d\n", w.size)
		return
	}
	if old > 0 && (ck.Size < old || tlog.CheckTree(proof, ck.Size, ck.Root, old, w.root) != nil) {
		http.Error(rw, "not consistent", http.StatusUnprocessableEntity)
		return
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		http.Error(rw, err.Error(), 500)
		return
	}
	w.size, w.root = ck.Size, ck.Root
	_, sig, _ := bytes.Cut(signed, []byte("\n\n"))
	rw.Write(sig)
}

// TestWitnesses: checkpoints carry the witnesses' cosignatures, and an auditor's k-of-n policy
// accepts them only when enough witnesses cosigned.
func TestWitnesses(t *testing.T) {
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	logV, _ := note.NewVerifier(vkey)
	var witnesses []*audit.Witness
	var wkeys []string
	for i := range 3 {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := torchwood.NewCosignatureSigner(fmt.Sprintf("witness%d.test", i), priv)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(&testWitness{logKey: logV, signer: s})
		defer srv.Close()
		if i == 2 {
			srv.Close() // one witness is down
		}
		w, err := audit.ParseWitness(srv.URL + " " + s.Verifier().String())
		if err != nil {
			t.Fatal(err)
		}
		witnesses = append(witnesses, w)
		wkeys = append(wkeys, s.Verifier().String())
	}
	wit := &audit.Witnessing{DB: db, Witnesses: witnesses, Log: seq.Log}
	for round := range 3 {
		appendN(t, db, round*50, 50, 10)
		drain(t, seq)
		text, ck, err := audit.Latest(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if got := wit.Cosign(ctx, text, ck); got != 2 {
			t.Fatalf("round %d: %d cosignatures, want 2 (one witness is down)", round, got)
		}
	}
	dir := t.TempDir()
	if _, err := audit.Export(ctx, db, dir); err != nil {
		t.Fatal(err)
	}
	policy := func(k int) audit.Policy {
		// The C2SP policy format: k of the three witnesses, as a group, must cosign.
		text := "log " + vkey + "\n"
		for i, w := range wkeys {
			text += fmt.Sprintf("witness w%d %s\n", i, w)
		}
		pol, err := audit.ParsePolicy(text + fmt.Sprintf("group g %d w0 w1 w2\nquorum g\n", k))
		if err != nil {
			t.Fatal(err)
		}
		return pol
	}
	if rep, _ := audit.VerifyArchive(dir, policy(2), nil); !rep.OK() {
		t.Fatalf("2-of-3 policy: %v", rep.Failures)
	}
	if rep, _ := audit.VerifyArchive(dir, policy(3), nil); rep.OK() || rep.Failures[0].Rule != "witnesses" {
		t.Fatalf("3-of-3 policy must fail on the witness count: %v", rep.Failures)
	}
	// One record with its proof, as the log serves it: the quorum holds there too.
	signed, ck0, err := audit.Latest(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	withCos, err := audit.WithCosignatures(ctx, db, signed, ck0.Size)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := tlog.ProveRecord(ck0.Size, 7, audit.HashReader(ctx, db))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.ArchiveRecord(dir, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := audit.VerifyProof(audit.FormatProof(7, rp, withCos), rec, policy(2)); err != nil {
		t.Fatalf("a proof with two cosignatures under a 2-of-3 policy: %v", err)
	}
	if _, _, err := audit.VerifyProof(audit.FormatProof(7, rp, withCos), rec, policy(3)); err == nil || !strings.Contains(err.Error(), "witnesses") {
		t.Fatalf("a proof with two cosignatures under a 3-of-3 policy: %v", err)
	}
	if _, _, err := audit.VerifyProof(audit.FormatProof(7, rp, signed), rec, policy(2)); err == nil {
		t.Fatal("a proof without cosignatures passed a 2-of-3 policy")
	}
	// A witness never cosigns a history that does not extend what it saw.
	_, ck, _ := audit.Latest(ctx, db)
	forged := ck
	forged.Root = tlog.RecordHash([]byte("fork"))
	forgedNote, err := note.Sign(&note.Note{Text: forged.Text()}, seq.Signer)
	if err != nil {
		t.Fatal(err)
	}
	w2 := &audit.Witnessing{DB: db, Witnesses: []*audit.Witness{witnesses[0]}, Log: seq.Log}
	if got := w2.Cosign(ctx, forgedNote, forged); got != 0 {
		t.Fatal("a witness cosigned a second root for the same size")
	}
}

// TestFailingWitnessBacksOff: a witness that keeps failing is asked again after 1 s, 2 s,
// 4 s…, not at every background round, and at once when it answers again.
func TestFailingWitnessBacksOff(t *testing.T) {
	db, seq, _ := newLog(t)
	appendN(t, db, 0, 5, 5)
	drain(t, seq)
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := torchwood.NewCosignatureSigner("flaky.test", priv)
	w, err := audit.ParseWitness(srv.URL + " " + s.Verifier().String())
	if err != nil {
		t.Fatal(err)
	}
	wit := &audit.Witnessing{DB: db, Witnesses: []*audit.Witness{w}, Log: seq.Log, Interval: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	wit.Run(ctx)
	// Rounds every 50 ms for 3.5 s would ask 70 times; backing off asks at 0, 1, 3 s.
	if n := asked.Load(); n < 2 || n > 4 {
		t.Fatalf("the failing witness was asked %d times in 3.5 s, want 3 (backing off 1 s, 2 s)", n)
	}
}
