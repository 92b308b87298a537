package witness_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/internal/witness"
)

const origin = "log.test/audit"

// tree is a log kept in memory: its stored hashes and a signer.
type tree struct {
	hashes []tlog.Hash
	n      int64
	signer note.Signer
}

func newTree(t *testing.T) (*tree, string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &tree{signer: s}, vkey
}

func (tr *tree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = tr.hashes[x]
	}
	return out, nil
}

func (tr *tree) grow(t *testing.T, k int, salt string) {
	for i := 0; i < k; i++ {
		hs, err := tlog.StoredHashes(tr.n, []byte(fmt.Sprintf("%s%d", salt, tr.n)), tr)
		if err != nil {
			t.Fatal(err)
		}
		tr.hashes = append(tr.hashes, hs...)
		tr.n++
	}
}

// request is the add-checkpoint body from old to the tree's current size.
func (tr *tree) request(t *testing.T, old int64) []byte {
	root, err := tlog.TreeHash(tr.n, tr)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", origin, tr.n, base64.StdEncoding.EncodeToString(root[:]))}, tr.signer)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	if old > 0 && old < tr.n {
		p, err := tlog.ProveTree(tr.n, old, tr)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range p {
			b.WriteString(h.String() + "\n")
		}
	}
	b.WriteString("\n")
	b.Write(signed)
	return b.Bytes()
}

func post(t *testing.T, url string, body []byte) (int, string) {
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWitness speaks c2sp.org/tlog-witness as a client would, honest and not: it cosigns a
// growing log, answers 409 with its size to a stale client, 422 to a fork, 403 to another
// key, 404 to an unknown log, 400 to garbage, and remembers across a restart.
func TestWitness(t *testing.T) {
	dir := t.TempDir()
	key, err := witness.LoadKey(filepath.Join(dir, "witness.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	tr, vkey := newTree(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := witness.New("witness.test/w", key, dir, []string{vkey}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	defer srv.Close()
	cv, err := torchwood.NewCosignatureVerifier(w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	cosigned := func(req []byte, resp string) bool {
		_, signed, _ := bytes.Cut(req, []byte("\n\n"))
		n, err := note.Open(append(signed, resp...), note.VerifierList(cv))
		return err == nil && len(n.Sigs) == 1
	}

	tr.grow(t, 5, "a")
	req := tr.request(t, 0)
	if code, body := post(t, srv.URL, req); code != 200 || !cosigned(req, body) {
		t.Fatalf("first checkpoint: %d %q", code, body)
	}
	tr.grow(t, 20, "a")
	req = tr.request(t, 5)
	if code, body := post(t, srv.URL, req); code != 200 || !cosigned(req, body) {
		t.Fatalf("extension 5→25: %d %q", code, body)
	}
	if code, body := post(t, srv.URL, tr.request(t, 5)); code != 409 || strings.TrimSpace(body) != "25" {
		t.Fatalf("stale old size: %d %q, want 409 25", code, body)
	}
	if code, body := post(t, srv.URL, tr.request(t, 25)); code != 200 {
		t.Fatalf("the same checkpoint again: %d %q", code, body)
	}

	// A fork: the same first 24 entries, another 25th and 26th.
	fork, _ := newTree(t)
	fork.signer = tr.signer
	fork.grow(t, 24, "a")
	fork.grow(t, 2, "b")
	if code, body := post(t, srv.URL, fork.request(t, 25)); code != 422 {
		t.Fatalf("a fork: %d %q, want 422", code, body)
	}
	other, _ := newTree(t)
	other.grow(t, 30, "a")
	if code, _ := post(t, srv.URL, other.request(t, 25)); code != 403 {
		t.Fatalf("signed by another key: %d, want 403", code)
	}
	stranger, _ := newTree(t)
	stranger.grow(t, 3, "a")
	body := bytes.Replace(stranger.request(t, 0), []byte(origin), []byte("other.test/log"), 1)
	if code, _ := post(t, srv.URL, body); code != 404 {
		t.Fatalf("unknown log: %d, want 404", code)
	}
	for _, bad := range []string{"", "old x\n\n", "old -1\n\nx", "old 1\nnot base64\n\n" + origin + "\n", strings.Repeat("A", 70<<10), "old 99\n\n" + string(tr.request(t, 0)[7:])} {
		if code, _ := post(t, srv.URL, []byte(bad)); code != 400 && code != 403 {
			t.Fatalf("%.40q: %d, want 400", bad, code)
		}
	}
	if code, _ := post(t, srv.URL, tr.request(t, 26)); code != 400 {
		t.Fatal("old size beyond the checkpoint must be 400")
	}

	// Restarted on the same state, it still knows size 25 and still refuses the fork.
	srv.Close()
	w2, err := witness.New("witness.test/w", key, dir, []string{vkey}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(w2)
	defer srv2.Close()
	if code, body := post(t, srv2.URL, fork.request(t, 0)); code != 409 || strings.TrimSpace(body) != "25" {
		t.Fatalf("after a restart: %d %q, want 409 25", code, body)
	}
	if code, _ := post(t, srv2.URL, fork.request(t, 25)); code != 422 {
		t.Fatal("after a restart the fork was not refused")
	}

	// A damaged state file stops it from starting, rather than start afresh and cosign a fork.
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := witness.New("witness.test/w", key, dir, []string{vkey}, log); err == nil {
		t.Fatal("started on a damaged state file")
	}
	// The key survives: the same verifier key on reload.
	key2, err := witness.LoadKey(filepath.Join(dir, "witness.key"), false)
	if err != nil || !key2.Equal(key) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	if _, err := witness.LoadKey(filepath.Join(dir, "missing.key"), false); err == nil {
		t.Fatal("a missing key without create")
	}
}
