package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// The audit log's reads (c2sp.org/tlog-tiles, tlog-proof). Checkpoints, hash tiles and proofs
// are public: witnesses, monitors and the public check with them that the log never forked.
// Entry bundles hold the records themselves (case titles, targets, people): they are read by
// authenticated auditors only, each read audited.

// Checkpoint returns the newest signed checkpoint with the cosignatures it has gathered.
func (s *Service) Checkpoint(ctx context.Context) ([]byte, error) {
	text, ck, err := audit.Latest(ctx, s.DB)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, refusal.New(refusal.NotFound, "no checkpoint yet")
	}
	if err != nil {
		return nil, err
	}
	return audit.WithCosignatures(ctx, s.DB, text, ck.Size)
}

// Tile returns a hash tile or, to an auditor (who, nil when anonymous), an entry bundle; full
// reports a tile that will never change.
func (s *Service) Tile(ctx context.Context, who *authz.Actor, path string) (data []byte, full bool, err error) {
	level, n, width, err := audit.ParseTilePath(path)
	if err != nil {
		return nil, false, refusal.New(refusal.Invalid, "%v", err)
	}
	if level < 0 {
		if who == nil {
			return nil, false, refusal.New(refusal.Unauthenticated, "entry bundles hold the records: auditors only, with Authorization: Bearer <token>")
		}
		if !who.Has(authz.Auditor) {
			return nil, false, s.refuse(ctx, *who, On{}, "read.log_entries",
				&authz.Denied{Rule: "need-to-know", Reason: "the log's records are read by auditors"})
		}
		if err := s.auditRead(ctx, *who, "log_entries", On{}); err != nil {
			return nil, false, err
		}
		data, err = audit.ReadEntries(ctx, s.DB, n, width)
	} else {
		data, err = audit.ReadTile(ctx, s.DB, level, n, width)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, refusal.New(refusal.NotFound, "no such tile")
	}
	return data, width == audit.EntriesPerTile, err
}

// Proof returns a c2sp.org/tlog-proof document for one entry against the newest checkpoint.
func (s *Service) Proof(ctx context.Context, index string) ([]byte, error) {
	i, err := strconv.ParseInt(index, 10, 64)
	if err != nil || i < 0 {
		return nil, refusal.New(refusal.Invalid, "index must be a non-negative integer")
	}
	// The checkpoint with the witnesses' cosignatures, so that an auditor's policy requiring
	// witnesses can check the proof alone.
	text, ck, err := audit.Settled(ctx, s.DB)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	if i >= ck.Size {
		return nil, refusal.New(refusal.NotFound, "index %d is not in the newest checkpoint (size %d) yet", i, ck.Size)
	}
	p, err := tlog.ProveRecord(ck.Size, i, audit.HashReader(ctx, s.DB))
	if err != nil {
		return nil, fmt.Errorf("prove entry %d: %w", i, err)
	}
	return audit.FormatProof(i, p, text), nil
}

// Consistency returns the hashes proving that the tree of size old is a prefix of the tree of
// size new ("" for the newest checkpoint).
func (s *Service) Consistency(ctx context.Context, old, new string) ([]tlog.Hash, error) {
	_, ck, err := audit.Latest(ctx, s.DB)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	oldSize, err1 := strconv.ParseInt(old, 10, 64)
	newSize := ck.Size
	var err2 error
	if new != "" {
		newSize, err2 = strconv.ParseInt(new, 10, 64)
	}
	if err1 != nil || err2 != nil || oldSize < 1 || oldSize > newSize || newSize > ck.Size {
		return nil, refusal.New(refusal.Invalid, "need 1 <= old <= new <= %d", ck.Size)
	}
	p, err := tlog.ProveTree(newSize, oldSize, audit.HashReader(ctx, s.DB))
	if err != nil {
		return nil, fmt.Errorf("prove consistency: %w", err)
	}
	return p, nil
}

// Inclusion is one log entry checked against the newest signed checkpoint, as the server
// sees it: the record, its proof, and whether the proof holds under the log's keys.
type Inclusion struct {
	Index  int64        `json:"index"`
	Record audit.Record `json:"record"`
	// Logged is the record exactly as logged: the bytes the proof is for.
	Logged     string `json:"logged"`
	RecordHash string `json:"record_hash"`
	Checkpoint string `json:"checkpoint"` // the signed note the proof is against
	Size       int64  `json:"size"`
	Root       string `json:"root"`
	Proof      string `json:"proof"` // the c2sp.org/tlog-proof document
	Verified   bool   `json:"verified"`
	Problem    string `json:"problem,omitempty"`
	// ActorName names the record's actor in words.
	ActorName string `json:"actor_name,omitempty"`
	// KeysFrom says where the verifier keys came from: "configuration" (the server's own key)
	// or "database" (the key history in the log's tables: a convenience, not a proof; an
	// auditor verifies offline with their own policy file).
	KeysFrom string `json:"keys_from"`
}

// Inclusion proves entry index of the log and checks the proof server-side. Entries hold
// case contents: with a measure, the entry must be that measure's and the measure readable;
// without one, the reader must be an auditor. Auditors' reads are audited.
func (s *Service) Inclusion(ctx context.Context, a authz.Actor, measureID string, index int64) (Inclusion, error) {
	notFound := refusal.New(refusal.NotFound, "no entry %d", index)
	if index < 0 {
		return Inclusion{}, notFound
	}
	on := On{}
	if measureID != "" {
		m, err := s.readMeasure(ctx, a, measureID, "log_entry")
		if err != nil {
			return Inclusion{}, err
		}
		on = m.on()
	} else if !a.Has(authz.Auditor) {
		return Inclusion{}, s.refuse(ctx, a, On{}, "read.log_entry", &authz.Denied{Rule: "need-to-know", Reason: "the log's records are read by auditors"})
	}
	var raw []byte
	var owner *string
	err := s.DB.QueryRow(ctx, `SELECT e.record, e.measure_id FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id WHERE l.idx = $1`, index).Scan(&raw, &owner)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && measureID != "" && (owner == nil || *owner != measureID)) {
		return Inclusion{}, notFound
	}
	if err != nil {
		return Inclusion{}, fmt.Errorf("read entry %d: %w", index, err)
	}
	if measureID == "" {
		if err := s.auditRead(ctx, a, "log_entry", on); err != nil {
			return Inclusion{}, err
		}
	}
	in := Inclusion{Index: index, Logged: string(raw), RecordHash: tlog.RecordHash(raw).String()}
	if err := json.Unmarshal(raw, &in.Record); err != nil {
		in.Problem = "the record is not JSON: " + err.Error()
	}
	in.ActorName = s.nameOf(ctx, in.Record.Actor.ID)
	doc, err := s.Proof(ctx, strconv.FormatInt(index, 10))
	if err != nil {
		return Inclusion{}, err
	}
	in.Proof = string(doc)
	keys, from, err := s.logKeys(ctx)
	if err != nil {
		return Inclusion{}, err
	}
	in.KeysFrom = from
	_, _, ckText, err := audit.ParseProof(doc)
	if err == nil {
		in.Checkpoint = string(ckText)
	}
	ck, _, err := audit.VerifyProof(doc, raw, audit.Policy{LogKeys: keys})
	in.Size, in.Root = ck.Size, ck.Root.String()
	if err != nil {
		in.Problem = err.Error()
		return in, nil
	}
	in.Verified = in.Problem == ""
	return in, nil
}

// nameOf is a user's display name and organisation's name, or "" for someone unknown.
func (s *Service) nameOf(ctx context.Context, id string) string {
	ns, err := s.names(ctx, []string{id})
	if p, ok := ns[id]; err == nil && ok {
		return p.Name + " (" + p.Org + ")"
	}
	return ""
}

// AuditStream writes the signed log's records from index from on as JSON lines (audit.Stream)
// to an auditor; with follow it goes on as new checkpoints are signed until ctx ends (the
// request's deadline): the reader asks again from the index after the last line it got.
func (s *Service) AuditStream(ctx context.Context, a authz.Actor, from int64, follow bool, w io.Writer) error {
	if !a.Has(authz.Auditor) {
		return s.refuse(ctx, a, On{}, "read.log_stream", &authz.Denied{Rule: "need-to-know", Reason: "the log's records are read by auditors"})
	}
	if from < 0 {
		return s.refuse(ctx, a, On{}, "read.log_stream", &measure.FieldError{Field: "from", Message: "must be a log index (0 or more)"})
	}
	if err := s.auditRead(ctx, a, "log_stream", On{}); err != nil {
		return err
	}
	_, err := audit.Stream(ctx, s.DB, from, follow, time.Second, w)
	if errors.Is(err, audit.ErrAltered) {
		s.Log.ErrorContext(ctx, "ALERT: the audit stream met a record the signed log does not hold", "err", err)
		return refusal.New(refusal.Conflict, "%v", err)
	}
	return err
}
