package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
)

// RestartAction is the action of the entry that starts a log under a new origin after a
// restore lost entries the witnesses had cosigned.
const RestartAction = "log.restarted"

// Restart is what RestartLog needs.
type Restart struct {
	// PreviousKeys are the previous log's verifier keys: the database's log must be what one
	// of them signed.
	PreviousKeys []string
	// Signer signs the new log's checkpoints; its name is the new origin. VerifierKey is its
	// verifier key.
	Signer      note.Signer
	VerifierKey string
	Appender    *Appender
	// Reason says why (the restore, its cause); By who runs it.
	Reason, By string
	// Witnessed is the size a witness's standing refusal names (0: take it from the refusal);
	// entries from the restored size up to it were signed and are lost.
	Witnessed int64
	Log       *slog.Logger
}

// witnessedSize finds, in a witness's refusal (Witnessing.cosign), the size it cosigned.
var witnessedSize = regexp.MustCompile(`holds a checkpoint this log does not extend \((?:it cosigned size (\d+);|the tree of size (\d+) it cosigned)`)

// ErrSequencing refuses a restart while a sequencer runs.
var ErrSequencing = errors.New("a worker's audit sequencer is running on this database: stop every worker (and dev) first")

// RestartLog continues the database's log under a new origin: the witnesses keep the old
// origin's larger checkpoint, and will never cosign a second history of it, so a log restored
// from a backup they outgrew cannot be signed on under it. The tree goes on (every entry
// keeps its index); its next entry, RestartAction, holds the old origin's newest signed
// checkpoint and the range lost, and the checkpoints from then on are the new origin's, signed
// by r.Signer. The standing halts are cleared by it, as the restart is their answer. An
// auditor's verify checks that the entries before it give that old checkpoint's root.
func RestartLog(ctx context.Context, db *pgxpool.Pool, r Restart) (Checkpoint, error) {
	r.Reason = strings.TrimSpace(r.Reason)
	if r.Reason == "" {
		return Checkpoint{}, errors.New("a restart needs a reason: the restore and its cause, for the auditors")
	}
	conn, err := db.Acquire(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(sequencerLock)).Scan(&got); err != nil {
		return Checkpoint{}, fmt.Errorf("take the sequencer lock: %w", err)
	}
	if !got {
		return Checkpoint{}, ErrSequencing
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(sequencerLock))

	prev, err := Trust(ctx, db, r.PreviousKeys)
	if _, newest, lerr := Latest(ctx, db); err != nil && lerr == nil && newest.Origin == r.Signer.Name() {
		return Checkpoint{}, fmt.Errorf("the log already goes on as %s (size %d): it was restarted; start the workers with its key", newest.Origin, newest.Size)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("the database's log is not what the previous key signed: %w", err)
	}
	if prev.Size == 0 {
		return Checkpoint{}, errors.New("the log has signed nothing yet: there is nothing to restart from")
	}
	origin := r.Signer.Name()
	if origin == prev.Origin {
		return Checkpoint{}, fmt.Errorf("the new key is named %q, the previous log's origin: the witnesses hold that origin's larger checkpoint; make a key for a new origin (takedownd keygen -log-origin NEW)", origin)
	}
	// Only a witness's refusal calls for a restart, and the size it names is the one recorded:
	// the operator confirms it, and cannot make up another.
	halts, err := Halted(ctx, db)
	if err != nil {
		return Checkpoint{}, err
	}
	named := int64(-1)
	for _, h := range halts {
		if m := witnessedSize.FindStringSubmatch(h); m != nil {
			n, _ := strconv.ParseInt(m[1]+m[2], 10, 64)
			named = max(named, n)
		}
	}
	switch {
	case named < 0:
		return Checkpoint{}, errors.New("no witness's refusal stands (takedownd audit halts): a restart answers a witness that holds a checkpoint this log does not extend; for any other halt, investigate and clear it (takedownd audit clear-halt)")
	case r.Witnessed != 0 && r.Witnessed != named:
		return Checkpoint{}, fmt.Errorf("-witnessed-size %d is not the size the witness's refusal names, %d (takedownd audit halts)", r.Witnessed, named)
	}
	r.Witnessed = named
	prevNote, _, err := Latest(ctx, db)
	if err != nil {
		return Checkpoint{}, err
	}
	key := "log.restart/" + origin
	id := EntryID(key)
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE audit_halts SET cleared_at = clock_timestamp(), cleared_by = $1 WHERE cleared_at IS NULL RETURNING problem`, r.By)
		if err != nil {
			return fmt.Errorf("clear the halts: %w", err)
		}
		cleared, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("clear the halts: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_signing SET checking = false`); err != nil {
			return fmt.Errorf("end the start-up check: %w", err)
		}
		details := map[string]any{
			"previous_origin": prev.Origin, "previous_size": prev.Size, "previous_root": prev.Root.String(),
			"previous_checkpoint": string(prevNote), "origin": origin, "vkey": r.VerifierKey, "cleared_halts": cleared,
		}
		details["witnessed_size"] = r.Witnessed
		if r.Witnessed > prev.Size {
			details["lost"] = fmt.Sprintf("entries %d to %d, signed under %s and cosigned, are not in this database", prev.Size, r.Witnessed-1, prev.Origin)
		} else {
			details["lost"] = fmt.Sprintf("a witness cosigned a tree of size %d under %s that this log does not extend (a fork)", r.Witnessed, prev.Origin)
		}
		return r.Appender.Append(ctx, tx, key, &Record{
			Actor: Actor{ID: r.By, Roles: []string{}, Org: "system"}, Action: RestartAction, Reason: r.Reason, Details: details,
		})
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("record the restart: %w", err)
	}
	// Signed here, under the new origin, before any worker starts: a worker with the new key
	// finds a log its key signed.
	seq := &Sequencer{DB: db, Signer: r.Signer, VerifierKeys: append(append([]string{}, r.PreviousKeys...), r.VerifierKey),
		Origin: origin, Appender: r.Appender, Log: r.Log}
	for {
		n, err := seq.Step(ctx)
		if err != nil {
			return Checkpoint{}, fmt.Errorf("sign under %s: %w", origin, err)
		}
		var signed bool
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log WHERE entry_id = $1)`, id).Scan(&signed); err != nil {
			return Checkpoint{}, err
		}
		if signed && n < MaxBatch {
			break
		}
		if n == 0 {
			return Checkpoint{}, errors.New("the restart entry was not signed: a halt or a start-up mark came back; see takedownd audit halts")
		}
	}
	_, ck, err := Latest(ctx, db)
	return ck, err
}

// restart is a RestartAction entry as an auditor's verify reads it.
type restart struct {
	index     int64
	previous  string // the previous origin's newest signed checkpoint, as the entry holds it
	witnessed int64
}
