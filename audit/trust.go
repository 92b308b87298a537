package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Mismatch is the database disagreeing with what the log signed. It names the table and the
// entries it found wrong.
type Mismatch struct {
	Table string // audit_entries, audit_log, audit_tiles or audit_checkpoints
	// From and To bound the log indexes at fault, [From, To); To is From+1 when one entry is
	// named exactly, -1 when unknown.
	From, To int64
	Why      string
}

func (m *Mismatch) Error() string {
	switch {
	case m.To == m.From+1:
		return fmt.Sprintf("%s: entry %d: %s", m.Table, m.From, m.Why)
	case m.From >= 0 && m.To > m.From:
		return fmt.Sprintf("%s: entries %d to %d: %s", m.Table, m.From, m.To-1, m.Why)
	}
	return fmt.Sprintf("%s: %s", m.Table, m.Why)
}

// compact is the right edge of a Merkle tree being built leaf by leaf (RFC 6962): the roots of
// its perfect subtrees, largest first. Memory is O(log n) whatever the size.
type compact struct {
	size   int64
	hashes []tlog.Hash
}

func (c *compact) add(leaf tlog.Hash) { c.addSubtree(leaf, 1) }

// addSubtree adds the root of a perfect subtree of n leaves (a power of two) whose first leaf
// is at a multiple of n, as a tile's root is.
func (c *compact) addSubtree(h tlog.Hash, n int64) {
	c.hashes = append(c.hashes, h)
	for s := c.size / n; s&1 == 1; s >>= 1 {
		k := len(c.hashes)
		c.hashes = append(c.hashes[:k-2], tlog.NodeHash(c.hashes[k-2], c.hashes[k-1]))
	}
	c.size += n
}

func (c *compact) root() tlog.Hash {
	if len(c.hashes) == 0 {
		h, _ := tlog.TreeHash(0, nil)
		return h
	}
	h := c.hashes[len(c.hashes)-1]
	for i := len(c.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(c.hashes[i], h)
	}
	return h
}

// Trust checks the database against the newest checkpoint the log signed, with the log's own
// verifier keys: that note must open under one of them; every entry is hashed again, in index
// order, and must match its stored leaf hash; the tree they make must have the signed root;
// and the stored tiles must give the same root. It returns the signed checkpoint (size 0
// when nothing was signed yet) or a *Mismatch naming what differs. Memory stays bounded at any
// size: entries are streamed.
func Trust(ctx context.Context, q Querier, verifierKeys []string) (Checkpoint, error) {
	var text string
	err := q.QueryRow(ctx, `SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) {
		var n int64
		if err := q.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n); err != nil {
			return Checkpoint{}, fmt.Errorf("count the log: %w", err)
		}
		if n > 0 {
			return Checkpoint{}, &Mismatch{Table: "audit_checkpoints", From: 0, To: n, Why: fmt.Sprintf("%d sequenced entries and no signed checkpoint", n)}
		}
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read the newest checkpoint: %w", err)
	}
	ck, err := openSigned(text, verifierKeys)
	if err != nil {
		return ck, &Mismatch{Table: "audit_checkpoints", From: -1, To: -1, Why: "the newest checkpoint does not open under the log's own keys: " + err.Error()}
	}
	var size int64
	if err := q.QueryRow(ctx, `SELECT COALESCE(max(idx) + 1, 0) FROM audit_log`).Scan(&size); err != nil {
		return ck, fmt.Errorf("read the log's size: %w", err)
	}
	if size < ck.Size {
		return ck, &Mismatch{Table: "audit_log", From: size, To: ck.Size, Why: fmt.Sprintf("the log holds %d entries; %d were signed", size, ck.Size)}
	}
	// Entries past the signed size were sequenced by a batch that did not commit its
	// checkpoint: impossible in one transaction, so someone wrote them.
	if size > ck.Size {
		return ck, &Mismatch{Table: "audit_log", From: ck.Size, To: size, Why: "entries beyond the newest signed checkpoint"}
	}
	var c compact
	var firstBad, badTile *Mismatch
	// The leaf tiles (level 0) hold the leaf hashes themselves: each is compared as it fills.
	tile := make([]byte, 0, EntriesPerTile*tlog.HashSize)
	// Leaf tiles are read 64 at a time, the widest of each: the tiles of a tree this size.
	stored := map[int64][]byte{}
	checkTile := func() error {
		n := (c.size - 1) / EntriesPerTile
		data, ok := stored[n]
		if !ok {
			rows, err := q.Query(ctx, `SELECT DISTINCT ON (n) n, data FROM audit_tiles WHERE level = 0 AND n >= $1 AND n < $2 ORDER BY n, width DESC`, n, n+64)
			if err != nil {
				return fmt.Errorf("read leaf tiles from %d: %w", n, err)
			}
			var k int64
			var d []byte
			if _, err := pgx.ForEachRow(rows, []any{&k, &d}, func() error { stored[k] = slices.Clone(d); return nil }); err != nil {
				return fmt.Errorf("read leaf tiles from %d: %w", n, err)
			}
			data = stored[n]
		}
		delete(stored, n)
		if badTile == nil && string(data) != string(tile) {
			badTile = &Mismatch{Table: "audit_tiles", From: n * EntriesPerTile, To: c.size, Why: "the leaf tile is missing or does not hold the entries' hashes"}
		}
		tile = tile[:0]
		return nil
	}
	err = forEntryInOrder(ctx, q, ck.Size, aheadEntries, func(idx int64, stored []byte, record []byte) error {
		if idx != c.size {
			return &Mismatch{Table: "audit_log", From: c.size, To: idx, Why: "entries missing from the log"}
		}
		leaf := tlog.RecordHash(record)
		if firstBad == nil && string(stored) != string(leaf[:]) {
			firstBad = &Mismatch{Table: "audit_entries", From: idx, To: idx + 1, Why: "the record does not hash to its leaf: it was edited, or swapped with another"}
		}
		c.add(leaf)
		tile = append(tile, leaf[:]...)
		if len(tile) == cap(tile) {
			return checkTile()
		}
		return nil
	})
	if err != nil {
		return ck, err
	}
	if len(tile) > 0 {
		_ = checkTile()
	}
	if c.size != ck.Size {
		return ck, &Mismatch{Table: "audit_log", From: c.size, To: ck.Size, Why: "entries missing from the log"}
	}
	if got := c.root(); got != ck.Root {
		if firstBad != nil {
			return ck, firstBad
		}
		return ck, narrow(ctx, q, verifierKeys, ck)
	}
	if firstBad != nil {
		return ck, &Mismatch{Table: "audit_log", From: firstBad.From, To: firstBad.To, Why: "the stored leaf hash is not the record's (the records are as signed)"}
	}
	if badTile != nil {
		return ck, badTile
	}
	tiles, err := tlog.TreeHash(ck.Size, &dbHashReader{ctx: ctx, q: q, cache: map[int64]tlog.Hash{}})
	if err != nil {
		return ck, &Mismatch{Table: "audit_tiles", From: -1, To: -1, Why: "the tiles cannot be read: " + err.Error()}
	}
	if tiles != ck.Root {
		return ck, &Mismatch{Table: "audit_tiles", From: -1, To: -1, Why: fmt.Sprintf("the tiles give root %s, the log signed %s", tiles, ck.Root)}
	}
	return ck, nil
}

// openSigned opens a signed checkpoint under the log's keys. Without keys (a sequencer in a
// test that records no key history) it reads the checkpoint unverified: the other checks
// still hold.
func openSigned(text string, keys []string) (Checkpoint, error) {
	if len(keys) == 0 {
		body, _, ok := strings.Cut(text, "\n\n")
		if !ok {
			return Checkpoint{}, errors.New("malformed note")
		}
		return ParseCheckpoint(body + "\n")
	}
	var vs []note.Verifier
	for _, k := range keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open([]byte(text), note.VerifierList(vs...))
	if err != nil {
		return Checkpoint{}, err
	}
	return ParseCheckpoint(n.Text)
}

// forEntry streams the sequenced entries [from, to) in index order.
func forEntry(ctx context.Context, q Querier, from, to int64, fn func(idx int64, leaf, record []byte) error) error {
	const chunk = 10000
	for lo := from; lo < to; lo += chunk {
		rows, err := q.Query(ctx, `SELECT l.idx, l.leaf_hash, e.record FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id
			WHERE l.idx >= $1 AND l.idx < $2 ORDER BY l.idx`, lo, min(lo+chunk, to))
		if err != nil {
			return fmt.Errorf("read entries from %d: %w", lo, err)
		}
		var idx int64
		var leaf, record []byte
		_, err = pgx.ForEachRow(rows, []any{&idx, &leaf, &record}, func() error { return fn(idx, leaf, record) })
		if err != nil {
			var m *Mismatch
			if errors.As(err, &m) {
				return m
			}
			return fmt.Errorf("read entries from %d: %w", lo, err)
		}
	}
	return nil
}

// beginner is a pool, connection or transaction that can open a transaction.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Reading in physical order keeps at most this many entries (and bytes) read ahead of the one
// the log needs next; past either, the rest is read by index.
const (
	aheadEntries = 100_000
	aheadBytes   = 256 << 20
)

// forEntryInOrder calls fn for every entry [0, to) in index order, as forEntry does, but reads
// the entries in the order they lie on disk beside the log's indexes (two cursors in one
// snapshot), keeping those read ahead of their turn: entries are written in nearly the order
// they are sequenced, so the lookahead stays small. forEntry finds each entry through its
// primary key, a random walk over the whole index once the log outgrows memory (10M entries
// took 31 times as long as 1M). A log whose entries lie far from their order falls back to
// forEntry for the rest.
func forEntryInOrder(ctx context.Context, q Querier, to int64, maxAhead int, fn func(idx int64, leaf, record []byte) error) error {
	b, ok := q.(beginner)
	if !ok || to == 0 {
		return forEntry(ctx, q, 0, to, fn)
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin reading the log: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
		return fmt.Errorf("begin reading the log: %w", err)
	}
	if _, err := tx.Exec(ctx, `DECLARE trust_log NO SCROLL CURSOR FOR SELECT idx, entry_id, leaf_hash FROM audit_log WHERE idx < $1 ORDER BY idx`, to); err != nil {
		return fmt.Errorf("read the log: %w", err)
	}
	if _, err := tx.Exec(ctx, `DECLARE trust_entries NO SCROLL CURSOR FOR SELECT id, record FROM audit_entries`); err != nil {
		return fmt.Errorf("read the entries: %w", err)
	}
	type logRow struct {
		idx   int64
		entry string
		leaf  []byte
	}
	ahead := map[string][]byte{}
	aheadSize, entriesDone := 0, false
	readEntries := func() error {
		rows, err := tx.Query(ctx, `FETCH 10000 FROM trust_entries`)
		if err != nil {
			return fmt.Errorf("read the entries: %w", err)
		}
		var id string
		var record []byte
		n, err := pgx.ForEachRow(rows, []any{&id, &record}, func() error {
			ahead[id] = slices.Clone(record)
			aheadSize += len(record)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the entries: %w", err)
		}
		entriesDone = n.RowsAffected() == 0
		return nil
	}
	var batch []logRow
	for done := int64(0); done < to; {
		rows, err := tx.Query(ctx, `FETCH 10000 FROM trust_log`)
		if err != nil {
			return fmt.Errorf("read the log from %d: %w", done, err)
		}
		batch = batch[:0]
		var r logRow
		if _, err := pgx.ForEachRow(rows, []any{&r.idx, &r.entry, &r.leaf}, func() error {
			batch = append(batch, logRow{r.idx, r.entry, slices.Clone(r.leaf)})
			return nil
		}); err != nil {
			return fmt.Errorf("read the log from %d: %w", done, err)
		}
		if len(batch) == 0 {
			return nil // fewer rows than to: the caller names the entries missing
		}
		for _, r := range batch {
			record, ok := ahead[r.entry]
			for !ok && !entriesDone {
				if len(ahead) >= maxAhead || aheadSize >= aheadBytes {
					// Far out of order: the rest by index.
					_ = tx.Rollback(ctx)
					return forEntry(ctx, q, r.idx, to, fn)
				}
				if err := readEntries(); err != nil {
					return err
				}
				record, ok = ahead[r.entry]
			}
			if !ok {
				continue // as the join skips it: fn names the gap
			}
			delete(ahead, r.entry)
			aheadSize -= len(record)
			if err := fn(r.idx, r.leaf, record); err != nil {
				var m *Mismatch
				if errors.As(err, &m) {
					return m
				}
				return err
			}
			done = r.idx + 1
		}
	}
	return nil
}

// narrow finds, among the signed checkpoints, the first whose root the entries no longer
// make: the rewritten entries lie after the one before it. It verifies only the checkpoints
// it probes (a binary search), and hashes the entries once.
func narrow(ctx context.Context, q Querier, keys []string, newest Checkpoint) error {
	rows, err := q.Query(ctx, `SELECT size FROM audit_checkpoints ORDER BY size`)
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}
	sizes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}
	// The entries' roots at every checkpoint size.
	roots := make(map[int64]tlog.Hash, len(sizes))
	var c compact
	next := 0
	for next < len(sizes) && sizes[next] == 0 {
		next++
	}
	err = forEntry(ctx, q, 0, newest.Size, func(idx int64, _, record []byte) error {
		c.add(tlog.RecordHash(record))
		for next < len(sizes) && sizes[next] == c.size {
			roots[c.size] = c.root()
			next++
		}
		return nil
	})
	if err != nil {
		return err
	}
	signedRoot := func(size int64) (tlog.Hash, bool) {
		var text string
		if err := q.QueryRow(ctx, `SELECT note FROM audit_checkpoints WHERE size = $1`, size).Scan(&text); err != nil {
			return tlog.Hash{}, false
		}
		ck, err := openSigned(text, keys)
		return ck.Root, err == nil && ck.Size == size
	}
	// The first checkpoint whose signed root the entries do not make (or that does not open).
	i := sort.Search(len(sizes), func(i int) bool {
		r, ok := signedRoot(sizes[i])
		return !ok || r != roots[sizes[i]]
	})
	if i == len(sizes) {
		return &Mismatch{Table: "audit_entries", From: -1, To: -1, Why: "the entries do not make the signed root"}
	}
	from := int64(0)
	if i > 0 {
		from = sizes[i-1]
	}
	return &Mismatch{Table: "audit_entries", From: from, To: sizes[i],
		Why: fmt.Sprintf("rewritten: the entries no longer make the root signed at size %d (leaf hashes and tiles rewritten to match)", sizes[i])}
}
