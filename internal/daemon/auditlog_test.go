package daemon_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/testenv"
)

// verifyLog waits for the sequencer to cover every entry, exports the log and verifies it
// offline, as an auditor would: signature, tree, and the process rules replayed.
func verifyLog(t *testing.T, e *testenv.Env) *audit.Report {
	t.Helper()
	ctx := context.Background()
	rep := e.Exported(t)
	pol, err := audit.ParsePolicy("log " + e.D.VerifierKey + "\nquorum none\n")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("the real log does not verify: %v", rep.Failures)
	}
	// And the tables say what the signed log says they were written with.
	diffs, err := reconcile.Run(ctx, e.D.DB)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("the honest tables differ from the log: %v", diffs)
	}
	checkReadAPI(t, e, pol)
	return rep
}

// checkReadAPI fetches the checkpoint and proofs over HTTP, as a witness or monitor would.
func checkReadAPI(t *testing.T, e *testenv.Env, pol audit.Policy) {
	t.Helper()
	get := func(path string) []byte {
		req, _ := http.NewRequest("GET", e.D.URL+path, nil)
		if strings.HasPrefix(path, "/tile/entries/") {
			req.Header.Set("Authorization", "Bearer "+e.Users["auditor"].Token) // the records: auditors only
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", path, resp.Status, body)
		}
		return body
	}
	v, _ := note.NewVerifier(pol.LogKey)
	n, err := note.Open(get("/checkpoint"), note.VerifierList(v))
	if err != nil {
		t.Fatalf("/checkpoint: %v", err)
	}
	ck, _ := audit.ParseCheckpoint(n.Text)
	entries := get("/tile/" + audit.TilePath(-1, 0, int(min(ck.Size, audit.EntriesPerTile))))
	recs, err := audit.SplitBundle(entries)
	if err != nil || len(recs) == 0 {
		t.Fatalf("entry bundle: %v", err)
	}
	last := int64(len(recs) - 1)
	if _, idx, err := audit.VerifyProof(get(fmt.Sprintf("/proof/%d", last)), recs[last], pol); err != nil || idx != last {
		t.Fatalf("/proof/%d: %v", last, err)
	}
	if ck.Size > 2 {
		var proof tlog.TreeProof
		// Against the checkpoint read above: the log may have grown since (reads are audited).
		for _, line := range strings.Fields(string(get(fmt.Sprintf("/proof/consistency?old=2&new=%d", ck.Size)))) {
			h, _ := base64.StdEncoding.DecodeString(line)
			proof = append(proof, tlog.Hash(h))
		}
		oldRoot, _ := tlog.TreeHash(2, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				level, n := tlog.SplitStoredHashIndex(x)
				if level != 0 {
					out[i] = tlog.NodeHash(tlog.RecordHash(recs[0]), tlog.RecordHash(recs[1]))
				} else {
					out[i] = tlog.RecordHash(recs[n])
				}
			}
			return out, nil
		}))
		if err := tlog.CheckTree(proof, ck.Size, ck.Root, 2, oldRoot); err != nil {
			t.Fatalf("/proof/consistency: %v", err)
		}
	}
}
