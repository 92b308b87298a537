// Package audit holds takedown's audit records and appends them to the log.
//
// A record describes one state change, refused attempt or evidence access. It is encoded as
// RFC 8785 canonical JSON, so the same record always hashes to the same bytes, and inserted in
// the same PostgreSQL transaction as the change it describes: a change without its record (or
// the reverse) never commits.
package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MaxRecordSize bounds one canonical record: 64 KiB less one byte, the most a tlog-tiles
// entry bundle's 16-bit length prefix can carry.
const MaxRecordSize = 64<<10 - 1

// Version of the record format. Version 2 added the salt; the verifier still reads version 1
// records, which have none.
const Version = 2

// LogName names the log in records and, later, in checkpoints.
const LogName = "takedown.audit/v1"

// Actor is who acted, as the server authenticated them.
type Actor struct {
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
	Org   string   `json:"org"`
}

// Record is one audit entry (DESIGN section 5). Its leaf hash is public; Salt, 256 random
// bits that only auditors see, keeps that hash from confirming a guess of the rest.
type Record struct {
	V             int            `json:"v"`
	Log           string         `json:"log"`
	ID            string         `json:"id"`
	TS            time.Time      `json:"ts"`
	Actor         Actor          `json:"actor"`
	Action        string         `json:"action"`
	Case          string         `json:"case,omitempty"`
	Measure       string         `json:"measure,omitempty"`
	Version       int            `json:"version,omitempty"`
	From          string         `json:"from,omitempty"`
	To            string         `json:"to,omitempty"`
	Reason        string         `json:"reason,omitempty"`
	Salt          string         `json:"salt,omitempty"`
	Details       map[string]any `json:"details,omitempty"`
	PolicyVersion string         `json:"policy_version"`
}

// PolicyVersion is recorded when the caller names no authorization policy version (records
// written by the log itself and by seeding).
const PolicyVersion = "none"

// Canonical returns the RFC 8785 encoding of r.
func (r *Record) Canonical() ([]byte, error) {
	out, err := appendCanonical(make([]byte, 0, 512), r)
	if err != nil {
		return nil, fmt.Errorf("encode audit record %s: %w", r.Action, err)
	}
	if len(out) > MaxRecordSize {
		return nil, fmt.Errorf("audit record %s is %d bytes, over the %d limit: %w", r.Action, len(out), MaxRecordSize, ErrTooLarge)
	}
	return out, nil
}

// ErrTooLarge reports a record over MaxRecordSize even with its long details moved to
// companions: a field outside details (a reason) is too long, which input limits prevent.
var ErrTooLarge = errors.New("audit record too large")

// Companions is the details key under which a record lists the details it moved to companion
// data: detail name to "sha256:<hex>" of the value's canonical JSON.
const Companions = "companions"

// spill moves r's largest details into companion data, one at a time, until r fits its limit.
// A record commits to each moved value by its SHA-256; the value is stored beside the log, in
// audit_companions, and carried by exports (companions/<hex>).
func (r *Record) spill(ctx context.Context, tx pgx.Tx) error {
	out, err := appendCanonical(make([]byte, 0, 512), r)
	if err != nil {
		return fmt.Errorf("encode audit record %s: %w", r.Action, err)
	}
	for len(out) > MaxRecordSize {
		var name string
		var largest []byte
		for k, v := range r.Details {
			if k == Companions {
				continue
			}
			enc, err := appendValue(nil, v)
			if err != nil {
				return fmt.Errorf("encode detail %s of %s: %w", k, r.Action, err)
			}
			if len(enc) > len(largest) || (len(enc) == len(largest) && k < name) {
				name, largest = k, enc
			}
		}
		if len(largest) < 128 {
			return fmt.Errorf("audit record %s is %d bytes, over the %d limit: %w", r.Action, len(out), MaxRecordSize, ErrTooLarge)
		}
		sum := sha256.Sum256(largest)
		ref := "sha256:" + hex.EncodeToString(sum[:])
		if _, err := tx.Exec(ctx, `INSERT INTO audit_companions (sha256, content) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			hex.EncodeToString(sum[:]), largest); err != nil {
			return fmt.Errorf("store companion %s of %s: %w", name, r.Action, err)
		}
		moved, _ := r.Details[Companions].(map[string]any)
		if moved == nil {
			moved = map[string]any{}
		}
		moved[name] = ref
		details := make(map[string]any, len(r.Details))
		for k, v := range r.Details {
			if k != name {
				details[k] = v
			}
		}
		details[Companions] = moved
		r.Details = details
		if out, err = appendCanonical(out[:0], r); err != nil {
			return fmt.Errorf("encode audit record %s: %w", r.Action, err)
		}
	}
	return nil
}

// ErrDuplicate reports that an entry with the same key is already in the log: the change it
// describes was already committed, and the caller should roll back and treat it as done.
var ErrDuplicate = errors.New("audit entry already recorded")

// EntryID is the ID of the entry appended under an idempotency key: a name-based UUID
// (RFC 9562 version 5), so the entry's primary key alone makes appends idempotent.
func EntryID(key string) string { return uuid.NewSHA1(entryNamespace, []byte(key)).String() }

var entryNamespace = uuid.MustParse("5f0c1e9a-4b7d-4c2e-9a61-7d3b2f8e0c14")

// Append inserts r in tx under the idempotency key, with its authenticator. It fills ID (from
// the key), TS, V, Log and PolicyVersion when empty. On a key already present it returns
// ErrDuplicate and changes nothing.
func (a *Appender) Append(ctx context.Context, tx pgx.Tx, key string, r *Record) error {
	if a == nil {
		return errNoAppender
	}
	r.fill(key, time.Now().UTC())
	if err := r.spill(ctx, tx); err != nil {
		return err
	}
	data, measure, err := r.prepare(key, time.Now().UTC())
	if err != nil {
		return err
	}
	// The sequencer finds the entry by its transaction (the tx column's default) once it commits.
	tag, err := tx.Exec(ctx, `INSERT INTO audit_entries (id, key, measure_id, created_at, record, auth)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, r.ID, key, measure, r.TS, data, a.Authenticator(r.ID, data))
	if err != nil {
		return fmt.Errorf("append audit entry %s: %w", r.Action, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDuplicate
	}
	return nil
}

// prepare fills what the log sets itself (ID, time, format and policy versions) and returns the
// canonical bytes and the measure column.
func (r *Record) prepare(key string, now time.Time) ([]byte, *string, error) {
	r.fill(key, now)
	data, err := r.Canonical()
	if err != nil {
		return nil, nil, err
	}
	var measure *string
	if r.Measure != "" {
		measure = &r.Measure
	}
	return data, measure, nil
}

// fill sets what the log sets itself, where the caller left it empty.
func (r *Record) fill(key string, now time.Time) {
	if r.ID == "" {
		r.ID = EntryID(key)
	}
	if r.TS.IsZero() {
		r.TS = now
	}
	r.V, r.Log = Version, LogName
	if r.Salt == "" {
		r.Salt = NewSalt()
	}
	if r.PolicyVersion == "" {
		r.PolicyVersion = PolicyVersion
	}
}

// NewSalt returns 256 random bits in hex. A record's salt keeps its leaf hash, which is
// public, from confirming a guess of its content: without it, anyone who can guess a record
// (a login by a known person at a known minute) could hash the guess and find it in the
// tiles.
func NewSalt() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// validSalt reports whether s is a salt as NewSalt makes them.
func validSalt(s []byte) bool {
	if len(s) != 64 {
		return false
	}
	var bad byte
	for _, c := range s {
		bad |= notLowerHex[c] // no early exit: a branch per byte costs more than the rare bad salt saves
	}
	return bad == 0
}

// notLowerHex is 1 for every byte that is not lower-case hexadecimal.
var notLowerHex = func() (t [256]byte) {
	for i := range t {
		t[i] = 1
	}
	for _, c := range []byte("0123456789abcdef") {
		t[c] = 0
	}
	return t
}()

// Keyed is a record with its idempotency key, for AppendBatch.
type Keyed struct {
	Key    string
	Record *Record
}

// AppendBatch inserts many records in tx with COPY, for callers that append in bulk (execution
// step batches, imports). Unlike Append, a key already present fails the whole transaction:
// batch callers make their batch idempotent as a whole.
func (a *Appender) AppendBatch(ctx context.Context, tx pgx.Tx, recs []Keyed) error {
	if a == nil {
		return errNoAppender
	}
	entries := make([][]any, len(recs))
	now := time.Now().UTC()
	for i, k := range recs {
		r := k.Record
		r.fill(k.Key, now)
		if err := r.spill(ctx, tx); err != nil {
			return err
		}
		data, measure, err := r.prepare(k.Key, now)
		if err != nil {
			return err
		}
		entries[i] = []any{r.ID, k.Key, measure, r.TS, data, a.Authenticator(r.ID, data)}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_entries"}, []string{"id", "key", "measure_id", "created_at", "record", "auth"}, pgx.CopyFromRows(entries)); err != nil {
		return fmt.Errorf("append %d audit entries: %w", len(recs), err)
	}
	return nil
}

// Entry is a record with its place in the log: Index is nil while the entry waits for the
// sequencer (pending: not yet under a signed checkpoint).
type Entry struct {
	Record
	Index *int64 `json:"log_index"`
}

// Entries returns the records of one measure in the order they were appended, each with its
// log index once sequenced. An entry not yet sequenced is shown (as pending) only when a's
// authenticator says the service wrote it: a row inserted around the service never appears.
func (a *Appender) Entries(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, measure string) ([]Entry, error) {
	rows, err := q.Query(ctx, `SELECT e.id, e.record, e.auth, l.idx FROM audit_entries e LEFT JOIN audit_log l ON l.entry_id = e.id
		WHERE e.measure_id = $1 ORDER BY e.created_at, e.id`, measure)
	if err != nil {
		return nil, fmt.Errorf("read audit entries of %s: %w", measure, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var id string
		var raw, auth []byte
		var e Entry
		if err := rows.Scan(&id, &raw, &auth, &e.Index); err != nil {
			return nil, err
		}
		if e.Index == nil && !a.Authentic(id, raw, auth) {
			continue
		}
		if err := json.Unmarshal(raw, &e.Record); err != nil {
			return nil, fmt.Errorf("decode audit entry: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
