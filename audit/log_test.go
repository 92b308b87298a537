package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/testdb"
)

const origin = "takedown.test/audit"

// memTree holds a tree's stored hashes in memory, for tests that build trees without a database.
type memTree []tlog.Hash

func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(*m)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = (*m)[x]
	}
	return out, nil
}

// add appends record n's data and returns an error from tlog.
func (m *memTree) add(n int64, data []byte) error {
	hs, err := tlog.StoredHashes(n, data, m)
	*m = append(*m, hs...)
	return err
}

// newLogKeyOnly returns a fresh checkpoint signer and its verifier key, with no database.
func newLogKeyOnly(t testing.TB) (struct{}, note.Signer, string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sv, err := signature.LoadED25519SignerVerifier(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, err := audit.NewNoteSigner(context.Background(), origin, sv)
	if err != nil {
		t.Fatal(err)
	}
	return struct{}{}, signer, vkey
}

// newLog returns a pool on a fresh database and a sequencer with a new key.
func newLog(t testing.TB) (*pgxpool.Pool, *audit.Sequencer, string) {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sv, err := signature.LoadED25519SignerVerifier(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, err := audit.NewNoteSigner(ctx, origin, sv)
	if err != nil {
		t.Fatal(err)
	}
	return db, &audit.Sequencer{DB: db, Signer: signer, Origin: origin, Appender: testAppender, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, vkey
}

// appendN appends n records, per records per transaction.
func appendN(t testing.TB, db *pgxpool.Pool, from, n, per int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i += per {
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			for j := i; j < min(i+per, from+n); j++ {
				if err := testAppender.Append(ctx, tx, fmt.Sprintf("k/%d", j), &audit.Record{
					Actor: audit.Actor{ID: "u-test", Roles: []string{"officer"}, Org: "npa"}, Action: "test.append",
					Details: map[string]any{"n": j},
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func drain(t testing.TB, s *audit.Sequencer) {
	t.Helper()
	for {
		n, err := s.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// TestInteroperability checks our checkpoints, inclusion proofs and consistency proofs with
// golang.org/x/mod/sumdb/note and sumdb/tlog directly: no project code verifies.
func TestInteroperability(t *testing.T) {
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	appendN(t, db, 0, 700, 7)
	drain(t, seq)
	oldText, old, err := audit.Latest(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 700, 1500, 100)
	drain(t, seq)
	newText, _, err := audit.Latest(ctx, db)
	if err != nil {
		t.Fatal(err)
	}

	// From here on, only x/mod: the signed note, then the tree.
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	open := func(text []byte) (int64, tlog.Hash) {
		n, err := note.Open(text, note.VerifierList(v))
		if err != nil {
			t.Fatalf("checkpoint does not verify: %v", err)
		}
		var size int64
		var rootB64 string
		var originLine string
		if _, err := fmt.Sscanf(n.Text, "%s\n%d\n%s\n", &originLine, &size, &rootB64); err != nil || originLine != origin {
			t.Fatalf("checkpoint text %q", n.Text)
		}
		root, err := tlog.ParseHash(rootB64)
		if err != nil {
			t.Fatal(err)
		}
		return size, root
	}
	oldSize, oldRoot := open(oldText)
	newSize, newRoot := open(newText)
	if oldSize != 700 || newSize != 2200 || oldSize != old.Size {
		t.Fatalf("sizes %d and %d", oldSize, newSize)
	}

	// Recompute every hash from the entries alone.
	var leaves [][]byte
	for n := int64(0); n*audit.EntriesPerTile < newSize; n++ {
		w := int(min(audit.EntriesPerTile, newSize-n*audit.EntriesPerTile))
		bundle, err := audit.ReadEntries(ctx, db, n, w)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := audit.SplitBundle(bundle)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, recs...)
	}
	mem := &memTree{}
	for i, rec := range leaves {
		if err := mem.add(int64(i), rec); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := tlog.TreeHash(newSize, mem); got != newRoot {
		t.Fatalf("recomputed root %s, checkpoint %s", got, newRoot)
	}

	// Inclusion and consistency proofs served from the database's tiles.
	dbr := audit.HashReader(ctx, db)
	for _, i := range []int64{0, 1, 255, 256, 699, 1234, newSize - 1} {
		p, err := tlog.ProveRecord(newSize, i, dbr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, newSize, newRoot, i, tlog.RecordHash(leaves[i])); err != nil {
			t.Fatalf("inclusion of %d: %v", i, err)
		}
	}
	tp, err := tlog.ProveTree(newSize, oldSize, dbr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(tp, newSize, newRoot, oldSize, oldRoot); err != nil {
		t.Fatalf("consistency %d -> %d: %v", oldSize, newSize, err)
	}
	// The tiles themselves, read through x/mod's own tile reader, which checks them against the root.
	tr := tlog.TileHashReader(tlog.Tree{N: newSize, Hash: newRoot}, tileReader{ctx, db})
	if _, err := tr.ReadHashes([]int64{tlog.StoredHashIndex(0, 1999)}); err != nil {
		t.Fatalf("tiles do not verify: %v", err)
	}
}

type tileReader struct {
	ctx context.Context
	db  *pgxpool.Pool
}

func (tileReader) Height() int { return audit.TileHeight }
func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		d, err := audit.ReadTile(r.ctx, r.db, t.L, t.N, t.W)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}
func (tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func TestTilePaths(t *testing.T) {
	for _, tt := range []struct {
		level int
		n     int64
		w     int
		path  string
	}{
		{0, 0, 256, "0/000"}, {1, 1234067, 256, "1/x001/x234/067"}, {-1, 5, 17, "entries/005.p/17"}, {2, 1000, 3, "2/x001/000.p/3"},
	} {
		if got := audit.TilePath(tt.level, tt.n, tt.w); got != tt.path {
			t.Errorf("TilePath(%d,%d,%d) = %s, want %s", tt.level, tt.n, tt.w, got, tt.path)
		}
		l, n, w, err := audit.ParseTilePath(tt.path)
		if err != nil || l != tt.level || n != tt.n || w != tt.w {
			t.Errorf("ParseTilePath(%s) = %d %d %d %v", tt.path, l, n, w, err)
		}
	}
	for _, bad := range []string{"0/1", "0/x001", "0/001.p/256", "0/001.p/0", "a/001", "0/x01/000", "entries/000.p/01"} {
		if _, _, _, err := audit.ParseTilePath(bad); err == nil {
			t.Errorf("ParseTilePath(%s) accepted", bad)
		}
	}
}

// TestAppendOnly: as the application's role, rewriting the log is refused.
func TestAppendOnly(t *testing.T) {
	ctx := context.Background()
	db, seq, _ := newLog(t)
	appendN(t, db, 0, 10, 10)
	drain(t, seq)
	for _, sql := range []string{
		`UPDATE audit_entries SET record = 'x'`, `DELETE FROM audit_entries`, `TRUNCATE audit_entries CASCADE`,
		`UPDATE audit_log SET idx = idx + 1`, `DELETE FROM audit_log`, `TRUNCATE audit_log CASCADE`,
		`DELETE FROM audit_checkpoints`, `UPDATE audit_tiles SET data = ''`,
	} {
		if _, err := db.Exec(ctx, sql); err == nil {
			t.Errorf("%s was allowed", sql)
		}
	}
}

// TestKeyRotation: during the overlap both keys sign; auditors holding either key verify; the
// key history is in the log itself.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	db, seq, oldKey := newLog(t)
	seq.VerifierKeys = []string{oldKey}
	appendN(t, db, 0, 10, 10)
	drain(t, seq)
	_, next, newKey := newLogKeyOnly(t)
	seq2 := &audit.Sequencer{DB: db, Signer: seq.Signer, NextSigner: next, VerifierKeys: []string{oldKey, newKey}, Origin: origin, Appender: testAppender, Log: seq.Log}
	appendN(t, db, 10, 10, 10)
	drain(t, seq2)
	verifyWith := func(keys ...string) bool {
		dir := t.TempDir()
		if _, err := audit.Export(ctx, db, dir); err != nil {
			t.Fatal(err)
		}
		text := ""
		for _, k := range keys {
			text += "log " + k + "\n"
		}
		pol, err := audit.ParsePolicy(text + "quorum none\n")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.VerifyArchive(dir, pol, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep.OK()
	}
	if !verifyWith(oldKey) || !verifyWith(newKey) {
		t.Fatal("during the overlap a checkpoint must verify with either key")
	}
	// The old key retired.
	seq3 := &audit.Sequencer{DB: db, Signer: next, VerifierKeys: []string{newKey}, Origin: origin, Appender: testAppender, Log: seq.Log}
	appendN(t, db, 20, 5, 5)
	drain(t, seq3)
	if verifyWith(oldKey) || !verifyWith(newKey) {
		t.Fatal("after the rotation only the new key verifies")
	}
	rows, _ := db.Query(ctx, `SELECT vkey FROM audit_keys ORDER BY first_size`)
	history, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(history) != 2 || history[0] != oldKey || history[1] != newKey {
		t.Fatalf("key history %v, %v", history, err)
	}
	var logged int
	db.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE convert_from(record, 'UTF8')::jsonb->>'action' = 'log.key_added'`).Scan(&logged)
	if logged != 2 {
		t.Fatalf("%d key additions in the log, want 2", logged)
	}
}

// TestSequencerTakesLateCommits: an entry whose transaction began before others but commits
// after they were sequenced is sequenced once it commits, also by a sequencer started while it
// was open; one transaction larger than a batch is split across batches; a rolled-back entry
// never appears; no entry is sequenced twice.
func TestSequencerTakesLateCommits(t *testing.T) {
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	late, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback(ctx)
	if err := testAppender.Append(ctx, late, "late", &audit.Record{Actor: audit.Actor{ID: "u-late"}, Action: "test.late"}); err != nil {
		t.Fatal(err)
	}
	aborted, _ := db.Begin(ctx)
	if err := testAppender.Append(ctx, aborted, "aborted", &audit.Record{Actor: audit.Actor{ID: "u-aborted"}, Action: "test.aborted"}); err != nil {
		t.Fatal(err)
	}
	big := make([]audit.Keyed, 2*audit.MaxBatch+10)
	for i := range big {
		big[i] = audit.Keyed{Key: fmt.Sprintf("big/%d", i), Record: &audit.Record{Actor: audit.Actor{ID: "u-big"}, Action: "test.big"}}
	}
	if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return testAppender.AppendBatch(ctx, tx, big) }); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 0, 300, 7)
	drain(t, seq)
	if err := aborted.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	want := int64(len(big) + 300)
	size := func() int64 {
		var n, distinct int64
		if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT entry_id) FROM audit_log`).Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		if n != distinct {
			t.Fatalf("%d log entries for %d distinct records", n, distinct)
		}
		return n
	}
	if got := size(); got != want {
		t.Fatalf("%d entries sequenced, want %d", got, want)
	}

	// A new leader starts while the late transaction is still open: it neither repeats nor
	// loses anything.
	restarted := &audit.Sequencer{DB: db, Signer: seq.Signer, Origin: origin, Appender: testAppender, Log: seq.Log}
	drain(t, restarted)
	if got := size(); got != want {
		t.Fatalf("after a restart %d entries, want %d", got, want)
	}
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 300, 5, 5)
	drain(t, restarted)
	if got := size(); got != want+6 {
		t.Fatalf("after the late commit %d entries, want %d", got, want+6)
	}
	var lateIn, abortedIn bool
	db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id WHERE e.key = 'late')`).Scan(&lateIn)
	db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_entries WHERE id = $1)`, audit.EntryID("aborted")).Scan(&abortedIn)
	if !lateIn || abortedIn {
		t.Fatalf("late entry in the log: %v; aborted entry stored: %v", lateIn, abortedIn)
	}
	dir := t.TempDir()
	if _, err := audit.Export(ctx, db, dir); err != nil {
		t.Fatal(err)
	}
	pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	if rep, err := audit.VerifyArchive(dir, pol, nil); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep)
	}
}

// TestAppendIsIdempotent: a second append under the same key, in another transaction, is
// refused with ErrDuplicate and adds nothing, whatever the second record says.
func TestAppendIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db, _, _ := newLog(t)
	appendOnce := func(action string) error {
		return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			return testAppender.Append(ctx, tx, "wf-1/7", &audit.Record{Actor: audit.Actor{ID: "u-1"}, Action: action})
		})
	}
	if err := appendOnce("first"); err != nil {
		t.Fatal(err)
	}
	if err := appendOnce("retry"); !errors.Is(err, audit.ErrDuplicate) {
		t.Fatalf("second append: %v, want ErrDuplicate", err)
	}
	var n int
	var id string
	if err := db.QueryRow(ctx, `SELECT count(*), min(id) FROM audit_entries`).Scan(&n, &id); err != nil || n != 1 || id != audit.EntryID("wf-1/7") {
		t.Fatalf("%d entries, id %s (want 1, %s): %v", n, id, audit.EntryID("wf-1/7"), err)
	}
}

// testAppender authenticates the entries the tests write, as the service does.
var testAppender = func() *audit.Appender {
	a, err := audit.NewAppender(bytes.Repeat([]byte{0x5a}, audit.AppendKeySize))
	if err != nil {
		panic(err)
	}
	return a
}()
