package daemon_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// secretDraft opens the officer's case "SECRET op Nightjar" with a draft on the domestic targets.
func secretDraft(t *testing.T, e *testenv.Env) (string, client.Measure) {
	t.Helper()
	ctx := context.Background()
	off := e.Users["officer"]
	caseID, err := off.CreateCase(ctx, "SECRET op Nightjar", "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, plan("self_execute", e.IDs["executor"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, domestic); err != nil {
		t.Fatal(err)
	}
	return caseID, m
}

// TestNeedToKnow: every demo user of every organisation tries to list and read a case, its
// measure, targets, evidence (list and file) and history, before and after the measure goes
// before the Commission. Who may not read finds nothing (404, never the content), and the
// refusal is audited; each of an auditor's reads is audited.
func TestNeedToKnow(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	off := e.Users["officer"]
	caseID, m := secretDraft(t, e)
	ev, err := off.AddEvidence(ctx, m.ID, url.Values{"filename": {"c2.pcap"}, "kind": {"pcap"}, "provenance": {"osint"}}, strings.NewReader("beacon"))
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/api/v1/cases/" + caseID, "/api/v1/measures/" + m.ID, "/api/v1/measures/" + m.ID + "/targets",
		"/api/v1/measures/" + m.ID + "/evidence", "/api/v1/evidence/" + ev["sha256"].(string), "/api/v1/measures/" + m.ID + "/history"}
	count := func(like string) int {
		var n int
		if err := e.D.DB.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE key LIKE $1`, like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	agency := []string{"officer", "officer2", "legal", "commander", "auditor"}
	commission := []string{"secretariat", "chair", "member1", "member2", "member3", "member4"}
	check := func(phase string, readers []string) {
		n := 0
		for name, c := range e.Users {
			may := slices.Contains(readers, name)
			for _, p := range paths {
				refusedBefore, readsBefore := count("refused/%"), count("read/%")
				var raw any
				err := c.Do(ctx, "GET", p, nil, &raw)
				if p == paths[4] && err != nil && strings.Contains(err.Error(), "invalid character") {
					err = nil // a file, not JSON: it was served
				}
				n++
				switch {
				case may && err != nil:
					t.Errorf("%s: %s may read %s but: %v", phase, name, p, err)
				case !may:
					var ce *client.Error
					if !errors.As(err, &ce) || ce.Status != 404 {
						t.Errorf("%s: %s may not read %s but got %v", phase, name, p, err)
					}
					if count("refused/%") != refusedBefore+1 {
						t.Errorf("%s: %s's refused read of %s is not audited", phase, name, p)
					}
				case name == "auditor" && p != paths[4] && count("read/%") != readsBefore+1:
					t.Errorf("%s: the auditor's read of %s is not audited", phase, p)
				}
			}
			var cases []map[string]any
			if err := c.Do(ctx, "GET", "/api/v1/cases?limit=500", nil, &cases); err != nil {
				t.Fatalf("%s lists cases: %v", name, err)
			}
			listed := slices.ContainsFunc(cases, func(c map[string]any) bool { return c["id"] == caseID })
			if listed != may {
				t.Errorf("%s: %s lists the case: %v, may read it: %v", phase, name, listed, may)
			}
			var ms struct{ Measures []map[string]any }
			if err := c.Do(ctx, "GET", "/api/v1/measures?limit=500", nil, &ms); err != nil {
				t.Fatalf("%s lists measures: %v", name, err)
			}
			listed = slices.ContainsFunc(ms.Measures, func(x map[string]any) bool { return x["id"] == m.ID })
			if listed != may {
				t.Errorf("%s: %s lists the measure: %v, may read it: %v", phase, name, listed, may)
			}
		}
		t.Logf("%s: %d reads by %d users", phase, n, len(e.Users))
	}
	check("draft", agency)
	mustAct(t, off, m.ID, "submit", nil, "LEGAL_REVIEW")
	check("before the Commission", append(append(slices.Clone(agency), commission...), "executor"))
}

// httpTiles reads tiles anonymously over the public read API, for tlog.TileHashReader.
type httpTiles struct {
	t   *testing.T
	url string
	got *[]byte // every byte served, for the content check
}

func (h httpTiles) Height() int { return audit.TileHeight }

func (h httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		out[i] = anonymousGet(h.t, h.url+"/tile/"+audit.TilePath(t.L, t.N, t.W), 200)
		*h.got = append(*h.got, out[i]...)
	}
	return out, nil
}

func (httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func anonymousGet(t *testing.T, url string, want int) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s, want %d", url, resp.Status, want)
	}
	return body
}

// TestPublicLogRevealsNoContent: an anonymous client fetches the checkpoint, every hash tile
// and every proof, and finds no case title, target or person in them; it still checks, with
// golang.org/x/mod alone, that the tiles make the signed tree. The entry bundles, which hold
// the records, are refused to it and to non-auditors.
func TestPublicLogRevealsNoContent(t *testing.T) {
	// Its own server: the public checkpoint is compared with an export taken just before,
	// and on a shared one another test's measure may append between the two.
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	off := e.Users["officer"]
	_, m := secretDraft(t, e)
	mustAct(t, off, m.ID, "submit", nil, "LEGAL_REVIEW")
	rep := verifyLog(t, e) // waits for the sequencer, checks the auditor's view

	var served []byte
	text := anonymousGet(t, e.D.URL+"/checkpoint", 200)
	served = append(served, text...)
	v, err := note.NewVerifier(e.D.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(text, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	// c2sp.org/tlog-checkpoint: origin, size, base64 root hash, then optional lines.
	lines := strings.Split(n.Text, "\n")
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		t.Fatalf("checkpoint root %q: %v", lines[2], err)
	}
	tree := tlog.Tree{N: size, Hash: tlog.Hash(h)}
	if tree.N != rep.Checkpoint.Size {
		t.Fatalf("public checkpoint size %d, exported %d", tree.N, rep.Checkpoint.Size)
	}
	root, err := tlog.TreeHash(tree.N, tlog.TileHashReader(tree, httpTiles{t, e.D.URL, &served}))
	if err != nil || root != tree.Hash {
		t.Fatalf("an outsider cannot rebuild the signed tree from the public tiles: %v", err)
	}
	for i := range tree.N {
		served = append(served, anonymousGet(t, fmt.Sprintf("%s/proof/%d", e.D.URL, i), 200)...)
	}
	served = append(served, anonymousGet(t, e.D.URL+"/proof/consistency?old=1", 200)...)
	for _, secret := range []string{"Nightjar", "203.0.113.10", "example-c2", "officer", "u-executor", "PlugX"} {
		if bytes.Contains(served, []byte(secret)) {
			t.Errorf("the public log serves %q", secret)
		}
	}
	t.Logf("%d public bytes checked, tree of %d entries rebuilt", len(served), tree.N)

	// Someone who guesses a record exactly, all but its salt, cannot confirm the guess from
	// the public leaf hashes; the record with its salt, as auditors hold it, is there.
	idx := make([]int64, tree.N)
	for i := range idx {
		idx[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := tlog.TileHashReader(tree, httpTiles{t, e.D.URL, new([]byte)}).ReadHashes(idx)
	if err != nil {
		t.Fatal(err)
	}
	public := map[tlog.Hash]bool{}
	for _, l := range leaves {
		public[l] = true
	}
	rows, err := e.D.DB.Query(ctx, `SELECT e.record FROM audit_entries e JOIN audit_log l ON l.entry_id = e.id WHERE l.idx < $1`, tree.N)
	if err != nil {
		t.Fatal(err)
	}
	records, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	salt := regexp.MustCompile(`,"salt":"[0-9a-f]{64}"`)
	for _, rec := range records {
		if !public[tlog.RecordHash(rec)] {
			t.Errorf("record %s is not a public leaf", rec)
		}
		guess := salt.ReplaceAll(rec, nil)
		if bytes.Equal(guess, rec) {
			t.Errorf("record %s has no salt", rec)
		}
		if public[tlog.RecordHash(guess)] {
			t.Errorf("the public leaves confirm the unsalted record %s", guess)
		}
	}

	bundle := "/tile/" + audit.TilePath(-1, 0, int(min(tree.N, audit.EntriesPerTile)))
	anonymousGet(t, e.D.URL+bundle, 401)
	refusedWith(t, off.Do(ctx, "GET", bundle, nil, nil), 403, "need-to-know")
}
