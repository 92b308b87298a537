package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MaxBatch is the most entries the sequencer puts in one batch.
const MaxBatch = 1024

// ErrLostLead stops a sequencer whose lock connection is gone: another replica may lead now.
var ErrLostLead = errors.New("the sequencer lock was lost (its connection ended): another replica may lead; this one stops signing")

// sequencerLock is the advisory lock key held by the one sequencing replica.
const sequencerLock = 0x74616b65646f776e // "takedown"

// Sequencer assigns log indexes to appended entries in batches, stores the Merkle tiles and
// signs a checkpoint after each batch. One replica sequences at a time: the holder of a
// PostgreSQL advisory lock; when it dies, its connection closes, the lock is released and
// another replica's Run takes over.
type Sequencer struct {
	DB *pgxpool.Pool
	// Signer signs every checkpoint. NextSigner, when set, signs too: the overlap of a key
	// rotation, during which auditors add its verifier key to their policies.
	Signer, NextSigner note.Signer
	// VerifierKeys are the verifier keys of Signer and NextSigner, recorded in the key history.
	VerifierKeys []string
	// Appender checks each waiting entry's authenticator (an entry without a valid one was not
	// written by the service: it is refused, never signed, and reported as a halt) and
	// appends the sequencer's own entries.
	Appender *Appender
	Origin   string
	// Interval is the longest an entry waits for its batch (default 250 ms; at most 1 s).
	Interval time.Duration
	Log      *slog.Logger
	// Witnessing, when set, collects witness cosignatures while this replica leads.
	Witnessing *Witnessing
	// Recheck is how often the leader checks the whole log against what it signed again
	// (default 10 minutes): entries are re-hashed, in chunks, between batches.
	Recheck time.Duration
	// Signed, when set, is told the size of each batch signed (for metrics).
	Signed func(entries int)

	lockPID uint32 // the backend holding the lock while this replica leads (0: Step called directly)

	readyOnce sync.Once
	ready     chan struct{}

	size  int64
	cache map[int64]tlog.Hash
	// Where entries without an index may be: written by a transaction in xip, or after the
	// cursor in (transaction, entry id) order. Everything else has been sequenced.
	xip      []uint64
	cursorTx uint64
	cursorID string
}

// Ready is closed once this sequencer's first try at the lead has ended its start-up check
// (passed, or failed and halted) or found another replica leading: from then on the database
// says whether anything may be accepted (Blocked).
func (s *Sequencer) Ready() <-chan struct{} {
	s.readyOnce.Do(func() { s.ready = make(chan struct{}) })
	return s.ready
}

func (s *Sequencer) markReady() {
	s.Ready()
	select {
	case <-s.ready:
	default:
		close(s.ready)
	}
}

// Run sequences until ctx ends, taking the lead whenever no other replica holds it.
func (s *Sequencer) Run(ctx context.Context) error {
	if s.Interval <= 0 || s.Interval > time.Second {
		s.Interval = 250 * time.Millisecond
	}
	if s.Recheck <= 0 {
		s.Recheck = 10 * time.Minute
	}
	defer s.markReady()
	for ctx.Err() == nil {
		err := s.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := time.Second
		var m *Mismatch
		if errors.As(err, &m) {
			// Nothing is signed over a database that disagrees with the log: say what differs,
			// where every replica and /healthz see it, and look again later.
			s.Log.Error("audit sequencer: the database disagrees with the signed log; not signing", "problem", m.Error())
			if herr := Halt(context.WithoutCancel(ctx), s.DB, m.Error()); herr != nil {
				s.Log.Error("audit sequencer: record the halt", "err", herr)
			}
			s.markReady()
			wait = 30 * time.Second
		} else if err != nil {
			s.Log.Error("audit sequencer", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

// Halt records that the log cannot sign, once per distinct problem while it stands. In the
// same statement it touches the row every signed batch touches (audit_signing), so a batch
// begun before the halt fails to commit after it: nothing is signed from this instant on.
func Halt(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, problem string) error {
	_, err := q.Exec(ctx, `WITH h AS (INSERT INTO audit_halts (problem) SELECT $1::text
		WHERE NOT EXISTS (SELECT 1 FROM audit_halts WHERE cleared_at IS NULL AND problem = $1::text) RETURNING 1)
		UPDATE audit_signing SET halts = halts + 1`, problem)
	return err
}

// Blocked returns what keeps the service from accepting anything now: the standing halts and,
// while a sequencer's start-up check has not finished, that check (none: it accepts).
func Blocked(ctx context.Context, q Querier) ([]string, error) {
	problems, err := Halted(ctx, q)
	if err != nil {
		return nil, err
	}
	checking, err := Checking(ctx, q)
	if err != nil {
		return nil, err
	}
	if checking {
		problems = append(problems, StartupCheck)
	}
	return problems, nil
}

// StartupCheck is what Blocked says while a sequencer's start-up check runs.
const StartupCheck = "start-up check: the log is being checked against what it signed and what its witnesses cosigned"

// Checking reports whether a sequencer's start-up check has not finished (or failed).
func Checking(ctx context.Context, q Querier) (bool, error) {
	var checking bool
	if err := q.QueryRow(ctx, `SELECT checking FROM audit_signing`).Scan(&checking); err != nil {
		return false, fmt.Errorf("read the start-up check: %w", err)
	}
	return checking, nil
}

// Halted returns the standing problems that keep the log from signing (none: it signs).
func Halted(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT problem FROM audit_halts WHERE cleared_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read the log's halts: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// lead waits for the lock and sequences while holding it.
func (s *Sequencer) lead(ctx context.Context) error {
	conn, err := s.DB.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(sequencerLock)).Scan(&got); err != nil {
			return fmt.Errorf("take the sequencer lock: %w", err)
		}
		if got {
			break
		}
		s.markReady() // another replica leads: the database says how its check went
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(sequencerLock))
	// Each batch checks that this backend still holds the lock: a lock connection cut (a
	// network fault, pg_terminate_backend) lets another replica lead, and this one must stop.
	s.lockPID = conn.Conn().PgConn().PID()
	defer func() { s.lockPID = 0 }()
	if _, err := s.DB.Exec(ctx, `UPDATE audit_signing SET checking = true`); err != nil {
		return fmt.Errorf("mark the start-up check: %w", err)
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	s.Log.Info("audit sequencer leading", "size", s.size)
	if s.Witnessing != nil {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go s.Witnessing.Run(wctx)
	}
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	checked := time.Now()
	for {
		// An operator who clears a halt marks the log for checking again: nothing is accepted
		// until the log and the witnesses have been asked afresh.
		var again bool
		if err := s.DB.QueryRow(ctx, `SELECT checking FROM audit_signing`).Scan(&again); err != nil {
			return fmt.Errorf("read the check mark: %w", err)
		}
		if again {
			if err := s.check(ctx); err != nil {
				return err
			}
		}
		if time.Since(checked) > s.Recheck {
			if _, err := Trust(ctx, s.DB, s.VerifierKeys); err != nil {
				return err
			}
			checked = time.Now()
		}
		n, err := s.Step(ctx)
		if err != nil {
			return err
		}
		if n > 0 && s.Signed != nil {
			s.Signed(n)
		}
		if n > 0 && s.Witnessing != nil {
			// Cosigned at once, so readers find a checkpoint with its cosignatures.
			s.Witnessing.Inline(ctx)
		}
		if n == MaxBatch {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// check is the start-up check, run while the database is marked as being checked (nothing is
// accepted, nothing signed): the log against what it signed, then every witness asked about the
// newest checkpoint until each has answered (cosigned it, or said it holds a tree this log does
// not extend, which halts it). A witness that cannot be reached is asked again, and the mark
// stands meanwhile: a database restored from an older dump is never served because the
// witness that would show it was out of reach. A failed check leaves the mark beside its halt.
func (s *Sequencer) check(ctx context.Context) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	for s.Witnessing != nil {
		if s.Witnessing.Answered(ctx) {
			break
		}
		var halted bool
		if err := s.DB.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_halts WHERE cleared_at IS NULL)`).Scan(&halted); err != nil {
			return fmt.Errorf("read the log's halts: %w", err)
		}
		if halted {
			break
		}
		s.Log.Warn("start-up check: a witness has not answered; nothing is accepted until every witness has")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	if _, err := s.DB.Exec(ctx, `UPDATE audit_signing SET checking = false`); err != nil {
		return fmt.Errorf("end the start-up check: %w", err)
	}
	s.markReady()
	return nil
}

// load reads the tree size, checks it against the newest checkpoint, and records the signing
// keys in the key history.
func (s *Sequencer) load(ctx context.Context) error {
	if err := s.loadTree(ctx); err != nil {
		return err
	}
	return s.recordKeys(ctx)
}

func (s *Sequencer) loadTree(ctx context.Context) error {
	// Before signing anything: the database must be what this log signed.
	if _, err := Trust(ctx, s.DB, s.VerifierKeys); err != nil {
		return err
	}
	s.cache = map[int64]tlog.Hash{}
	if err := s.DB.QueryRow(ctx, `SELECT COALESCE(max(idx) + 1, 0) FROM audit_log`).Scan(&s.size); err != nil {
		return fmt.Errorf("read log size: %w", err)
	}
	var ckSize int64
	var root []byte
	// Before any checkpoint records where to look, every entry written by a transaction (from
	// 1 on: 0 marks entries sequenced through the old queue) may be waiting.
	s.xip, s.cursorTx, s.cursorID = nil, 1, ""
	var cursorTx *uint64
	var cursorID *string
	var xip []uint64
	err := s.DB.QueryRow(ctx, `SELECT size, root, next_tx, next_id, waiting FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&ckSize, &root, &cursorTx, &cursorID, &xip)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read newest checkpoint: %w", err)
	}
	if ckSize != s.size {
		return fmt.Errorf("log has %d entries but the newest checkpoint covers %d (hint: the database was altered outside takedown)", s.size, ckSize)
	}
	got, err := tlog.TreeHash(s.size, &dbHashReader{ctx: ctx, q: s.DB, cache: s.cache})
	if err != nil {
		return fmt.Errorf("rebuild the right edge: %w", err)
	}
	if string(got[:]) != string(root) {
		return fmt.Errorf("stored tiles give root %s, the newest checkpoint says %x", got, root)
	}
	if cursorTx != nil && cursorID != nil {
		s.xip, s.cursorTx, s.cursorID = xip, *cursorTx, *cursorID
	}
	return nil
}

// recordKeys adds signing keys not seen before to the key history, and logs each addition as
// an entry of the log itself, so the history is as verifiable as the rest.
func (s *Sequencer) recordKeys(ctx context.Context) error {
	for _, vkey := range s.VerifierKeys {
		err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `INSERT INTO audit_keys (vkey, first_size) VALUES ($1, $2) ON CONFLICT DO NOTHING`, vkey, s.size)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			return s.Appender.Append(ctx, tx, "log.key/"+vkey, &Record{
				Actor: Actor{ID: "system", Roles: []string{}, Org: "system"}, Action: "log.key_added",
				Details: map[string]any{"vkey": vkey, "first_size": s.size},
			})
		})
		if err != nil {
			return fmt.Errorf("record signing key: %w", err)
		}
	}
	return nil
}

// Step sequences one batch, if any entries are waiting, and returns how many it took. The
// batch, its tiles and its checkpoint commit in one transaction.
func (s *Sequencer) Step(ctx context.Context) (int, error) {
	if s.cache == nil {
		if err := s.load(ctx); err != nil {
			return 0, err
		}
	}
	var n int
	var held bool // a halt stands: nothing signed, the cursor kept
	var newCache map[int64]tlog.Hash
	var xip []uint64
	var cursorTx uint64
	var cursorID string
	err := pgx.BeginTxFunc(ctx, s.DB, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		// The first statement fixes the snapshot the whole batch reads with: every transaction
		// below its xmax and not in its xip had ended when it was taken. It also asks for
		// custom plans: the cursor's place in the table decides between scanning the index
		// from it and anything else.
		var xmax uint64
		if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmax(s), ARRAY(SELECT pg_snapshot_xip(s)), set_config('plan_cache_mode', 'force_custom_plan', true)
			FROM pg_current_snapshot() s`).Scan(&xmax, &xip, nil); err != nil {
			return fmt.Errorf("read snapshot: %w", err)
		}
		// While a halt stands, or the log is marked for checking, nothing is signed, and the
		// cursor stays where it is.
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_halts WHERE cleared_at IS NULL) OR (SELECT checking FROM audit_signing)`).Scan(&held); err != nil {
			return fmt.Errorf("read the log's halts: %w", err)
		}
		if held {
			return nil
		}
		if s.lockPID != 0 {
			var leading bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1
				AND classid = $2::bigint::oid AND objid = $3::bigint::oid AND objsubid = 1)`,
				int64(s.lockPID), int64(uint64(sequencerLock)>>32), int64(uint64(sequencerLock)&0xffffffff)).Scan(&leading); err != nil {
				return fmt.Errorf("check the sequencer lock: %w", err)
			}
			if !leading {
				return ErrLostLead
			}
		}
		rows, err := tx.Query(ctx, `(SELECT id, record, tx, auth FROM audit_entries WHERE (tx, id) > ($1, $2) ORDER BY tx, id LIMIT $4)
			UNION ALL
			(SELECT id, record, tx, auth FROM audit_entries WHERE tx = ANY($3) AND tx < $1)
			ORDER BY tx, id LIMIT $4`, s.cursorTx, s.cursorID, s.xip, MaxBatch)
		if err != nil {
			return fmt.Errorf("read waiting entries: %w", err)
		}
		var ids, forged []string
		var records [][]byte
		var lastTx uint64
		var lastID string
		read := 0
		for rows.Next() {
			var id string
			var rec, auth []byte
			if err := rows.Scan(&id, &rec, &lastTx, &auth); err != nil {
				rows.Close()
				return err
			}
			read, lastID = read+1, id
			if !s.Appender.Authentic(id, rec, auth) {
				forged = append(forged, id)
				continue
			}
			ids, records = append(ids, id), append(records, rec)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// Next time, look past what this batch read: after the snapshot when it took every
		// waiting entry, after its last entry when it was full.
		cursorTx, cursorID = xmax, ""
		if read == MaxBatch {
			cursorTx, cursorID = lastTx, lastID
		}
		for _, id := range forged {
			// Reported where every replica, /healthz and the service see it (someone wrote to
			// the database around the service), and nothing is signed until an operator has
			// investigated and cleared the halt; from then on the entry is left out for good.
			problem := fmt.Sprintf("audit entry %s has no valid authenticator: it was written around the service, and is refused (not signed)", id)
			var cleared bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_halts WHERE problem = $1 AND cleared_at IS NOT NULL)`, problem).Scan(&cleared); err != nil {
				return fmt.Errorf("look up the halt for entry %s: %w", id, err)
			}
			if cleared {
				continue
			}
			s.Log.Error("audit sequencer: refused an entry", "entry", id)
			if err := Halt(ctx, tx, problem); err != nil {
				return fmt.Errorf("report entry %s: %w", id, err)
			}
			held = true
		}
		if held {
			return nil
		}
		if len(ids) == 0 {
			return nil
		}
		n = len(ids)
		newCache = make(map[int64]tlog.Hash, len(s.cache)+2*n)
		for k, v := range s.cache {
			newCache[k] = v
		}
		r := &dbHashReader{ctx: ctx, q: tx, cache: newCache}
		logRows := make([][]any, n)
		for i, rec := range records {
			idx := s.size + int64(i)
			leaf := tlog.RecordHash(rec)
			hashes, err := tlog.StoredHashesForRecordHash(idx, leaf, r)
			if err != nil {
				return fmt.Errorf("hash entry %d: %w", idx, err)
			}
			base := tlog.StoredHashIndex(0, idx)
			for j, h := range hashes {
				newCache[base+int64(j)] = h
			}
			logRows[i] = []any{idx, ids[i], leaf[:]}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_log"}, []string{"idx", "entry_id", "leaf_hash"}, pgx.CopyFromRows(logRows)); err != nil {
			return fmt.Errorf("assign indexes: %w", err)
		}
		newSize := s.size + int64(n)
		for _, t := range tlog.NewTiles(TileHeight, s.size, newSize) {
			data, err := tlog.ReadTileData(t, r)
			if err != nil {
				return fmt.Errorf("build tile %s: %w", TilePath(t.L, t.N, t.W), err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO audit_tiles (level, n, width, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
				t.L, t.N, t.W, data); err != nil {
				return fmt.Errorf("store tile: %w", err)
			}
		}
		root, err := tlog.TreeHash(newSize, r)
		if err != nil {
			return fmt.Errorf("tree hash: %w", err)
		}
		signers := []note.Signer{s.Signer}
		if s.NextSigner != nil {
			signers = append(signers, s.NextSigner)
		}
		signed, err := note.Sign(&note.Note{Text: Checkpoint{Origin: s.Origin, Size: newSize, Root: root}.Text()}, signers...)
		if err != nil {
			return fmt.Errorf("sign checkpoint: %w", err)
		}
		// A halt recorded since this batch's snapshot makes this update fail (serialization):
		// the batch is signed before the halt or not at all.
		if _, err := tx.Exec(ctx, `UPDATE audit_signing SET halts = halts`); err != nil {
			return fmt.Errorf("check for a halt: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (size, root, note, next_tx, next_id, waiting) VALUES ($1, $2, $3, $4, $5, $6)`,
			newSize, root[:], string(signed), cursorTx, cursorID, xip); err != nil {
			return fmt.Errorf("store checkpoint: %w", err)
		}
		return nil
	})
	if err != nil {
		s.cache = nil // reload from the database before the next attempt
		return 0, err
	}
	if held {
		return 0, nil
	}
	s.xip, s.cursorTx, s.cursorID = xip, cursorTx, cursorID
	if n > 0 {
		s.size += int64(n)
		s.cache = rightEdge(newCache, s.size)
	}
	return n, nil
}

// rightEdge keeps the hashes the next records are most likely to need: at each level, the
// last node of a tree of this size. Anything else is read back from the tiles.
func rightEdge(all map[int64]tlog.Hash, size int64) map[int64]tlog.Hash {
	keep := map[int64]tlog.Hash{}
	for l := 0; size>>uint(l) > 0; l++ {
		idx := tlog.StoredHashIndex(l, (size>>uint(l))-1)
		if h, ok := all[idx]; ok {
			keep[idx] = h
		}
	}
	return keep
}

// Latest returns the newest signed checkpoint.
func Latest(ctx context.Context, q Querier) ([]byte, Checkpoint, error) {
	var text string
	err := q.QueryRow(ctx, `SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&text)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("read newest checkpoint: %w", err)
	}
	c, err := ParseCheckpoint(text)
	return []byte(text), c, err
}
