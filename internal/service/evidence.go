package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// Evidence is one item of evidence attached to a version.
type Evidence struct {
	ID         string     `json:"id"`
	SHA256     string     `json:"sha256"`
	Size       int64      `json:"size"`
	Filename   string     `json:"filename"`
	Kind       string     `json:"kind"`
	Provenance string     `json:"provenance"`
	LegalBasis string     `json:"legal_basis,omitempty"`
	Acquirer   string     `json:"acquirer,omitempty"`
	Tool       string     `json:"tool,omitempty"`
	AcquiredAt *time.Time `json:"acquired_at,omitempty"`
	TLP        string     `json:"tlp"`
	AddedBy    string     `json:"added_by"`
}

// Provenances and TLPs are the values evidence may carry.
var (
	Provenances = []string{"own_investigation", "partner_report", "victim_report", "communications_information", "osint"}
	TLPs        = []string{"clear", "green", "amber", "amber+strict", "red"}
)

// bidi reports the Unicode controls that reorder how text is displayed.
func bidi(r rune) bool {
	return r == '\u200e' || r == '\u200f' || r == '\u061c' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// check checks evidence metadata as it arrives, filling the default TLP (amber).
func (e *Evidence) check() error {
	if e.TLP == "" {
		e.TLP = "amber"
	}
	for _, f := range []struct{ name, value string }{{"filename", e.Filename}, {"kind", e.Kind}, {"provenance", e.Provenance},
		{"legal_basis", e.LegalBasis}, {"acquirer", e.Acquirer}, {"tool", e.Tool}, {"tlp", e.TLP}} {
		if fe := measure.CheckLine(f.name, f.value, measure.MaxLine); fe != nil {
			return fe
		}
	}
	// A file's name, not a path: what follows the last separator, as a browser sends it.
	e.Filename = strings.TrimSpace(e.Filename[strings.LastIndexAny(e.Filename, `/\`)+1:])
	switch {
	case e.Filename == "" || e.Filename == "." || e.Filename == "..":
		return &measure.FieldError{Field: "filename", Message: "is required: a file's name, not a path"}
	case strings.ContainsFunc(e.Filename, bidi):
		// Right-to-left overrides make "exe.fdp" read as "pdf.exe".
		return &measure.FieldError{Field: "filename", Message: "holds a bidirectional control character"}
	case e.Kind == "":
		return &measure.FieldError{Field: "kind", Message: "is required (for example pcap, malware_sample, log, report)"}
	case !slices.Contains(Provenances, e.Provenance):
		return &measure.FieldError{Field: "provenance", Message: fmt.Sprintf("must be one of %v", Provenances)}
	case e.Provenance == "communications_information" && e.LegalBasis == "":
		return &measure.FieldError{Field: "legal_basis", Message: "must name the approval under which communications information was acquired"}
	case !slices.Contains(TLPs, e.TLP):
		return &measure.FieldError{Field: "tlp", Message: fmt.Sprintf("must be one of %v", TLPs)}
	}
	return nil
}

// AddEvidence stores a file read from body (at most MaxEvidence bytes), content-addressed,
// with its metadata, in a draft.
func (s *Service) AddEvidence(ctx context.Context, a authz.Actor, id string, e Evidence, body io.Reader) (Evidence, error) {
	const action = "evidence.added"
	if err := e.check(); err != nil {
		return e, s.refuse(ctx, a, On{Measure: id}, action, err)
	}
	content, err := io.ReadAll(io.LimitReader(body, s.MaxEvidence+1))
	if err != nil {
		return e, s.refuse(ctx, a, On{Measure: id}, action, fmt.Errorf("read the evidence file: %w", err))
	}
	if int64(len(content)) > s.MaxEvidence {
		return e, s.refuse(ctx, a, On{Measure: id}, action, refusal.New(refusal.TooLarge, "the evidence file is over the %d-byte limit", s.MaxEvidence))
	}
	if len(content) == 0 {
		return e, s.refuse(ctx, a, On{Measure: id}, action, &measure.FieldError{Field: "body", Message: "the evidence file is empty"})
	}
	sum := sha256.Sum256(content)
	e.ID, e.SHA256, e.Size, e.AddedBy = NewID("e-"), hex.EncodeToString(sum[:]), int64(len(content)), a.ID
	_, err = s.editDraft(ctx, a, id, action, func(tx pgx.Tx, m Measure) (map[string]any, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO evidence_blobs (sha256, size, content) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			e.SHA256, e.Size, content); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO evidence (id, measure_id, version, sha256, filename, kind, provenance, legal_basis, acquirer, tool, acquired_at, tlp, added_by)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`, e.ID, m.ID, m.Version, e.SHA256, e.Filename, e.Kind, e.Provenance,
			e.LegalBasis, e.Acquirer, e.Tool, e.AcquiredAt, e.TLP, e.AddedBy); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO custody_events (id, evidence_id, event, actor_id) VALUES ($1, $2, 'collected', $3)`,
			NewID("ce-"), e.ID, e.AddedBy); err != nil {
			return nil, err
		}
		return map[string]any{"evidence": e.ID, "sha256": e.SHA256, "size": e.Size, "provenance": e.Provenance, "tlp": e.TLP}, nil
	})
	return e, err
}

// EvidenceList returns the evidence of a measure's current version.
func (s *Service) EvidenceList(ctx context.Context, a authz.Actor, id string) ([]Evidence, error) {
	m, err := s.readMeasure(ctx, a, id, "evidence")
	if err != nil {
		return nil, err
	}
	return s.evidenceOf(ctx, m)
}

func (s *Service) evidenceOf(ctx context.Context, m Measure) ([]Evidence, error) {
	return s.evidenceAt(ctx, m.ID, m.Version)
}

// evidenceAt lists the evidence of one version of a measure.
func (s *Service) evidenceAt(ctx context.Context, id string, version int) ([]Evidence, error) {
	rows, err := s.DB.Query(ctx, `SELECT e.id, e.sha256, b.size, e.filename, e.kind, e.provenance, e.legal_basis, e.acquirer, e.tool, e.acquired_at, e.tlp, e.added_by
		FROM evidence e JOIN evidence_blobs b USING (sha256)
		WHERE e.measure_id = $1 AND e.version = $2 ORDER BY e.added_at`, id, version)
	if err != nil {
		return nil, fmt.Errorf("list evidence: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Evidence, error) {
		var e Evidence
		err := row.Scan(&e.ID, &e.SHA256, &e.Size, &e.Filename, &e.Kind, &e.Provenance, &e.LegalBasis, &e.Acquirer, &e.Tool, &e.AcquiredAt, &e.TLP, &e.AddedBy)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list evidence: %w", err)
	}
	if out == nil {
		out = []Evidence{}
	}
	return out, nil
}

// EvidenceFile returns an evidence file by its SHA-256; every access is a custody event and
// an audit entry. The file is readable if one of the measures holding it is.
func (s *Service) EvidenceFile(ctx context.Context, a authz.Actor, sha string) ([]byte, error) {
	notFound := refusal.New(refusal.NotFound, "no evidence with sha256 %s", measure.Clip(sha, 64))
	if !wellFormedID(sha) {
		return nil, notFound
	}
	rows, err := s.DB.Query(ctx, `SELECT DISTINCT measure_id FROM evidence WHERE sha256 = $1`, sha)
	if err != nil {
		return nil, fmt.Errorf("find evidence: %w", err)
	}
	holders, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find evidence: %w", err)
	}
	readable := false
	for _, id := range holders {
		m, err := s.load(ctx, nil, id)
		if err != nil {
			return nil, fmt.Errorf("find evidence: %w", err)
		}
		if s.reads().CanRead(a, m.Subject()) != nil {
			continue
		}
		// Only a file the measure's records say was added to it: a row pointing at another
		// agency's file, written in SQL, gives nothing away.
		recorded, err := s.evidenceRecorded(ctx, m.ID, sha)
		if err != nil {
			return nil, err
		}
		if recorded {
			readable = true
			break
		}
	}
	if !readable {
		if len(holders) > 0 {
			s.Refused(ctx, a, On{}, "evidence.access", &authz.Denied{Rule: "need-to-know", Reason: "no measure holding " + sha + " is readable"})
		}
		return nil, notFound
	}
	var content []byte
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var evID, measureID string
		if err := tx.QueryRow(ctx, `SELECT e.id, e.measure_id, b.content FROM evidence e JOIN evidence_blobs b USING (sha256)
			WHERE e.sha256 = $1 ORDER BY e.added_at LIMIT 1`, sha).Scan(&evID, &measureID, &content); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO custody_events (id, evidence_id, event, actor_id) VALUES ($1, $2, 'accessed', $3)`,
			NewID("ce-"), evID, a.ID); err != nil {
			return err
		}
		return s.append(ctx, tx, a, "evidence.accessed/"+NewID(""), &audit.Record{Action: "evidence.accessed", Measure: measureID,
			Details: map[string]any{"evidence": evID, "sha256": sha}})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("read evidence: %w", err)
	}
	return content, nil
}

// evidenceRecorded reports whether a measure's records say a file was added to it; a row
// no record wrote raises an alert and halts the log.
func (s *Service) evidenceRecorded(ctx context.Context, measureID, sha string) (bool, error) {
	entries, err := s.Audit.Entries(ctx, s.DB, measureID)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Action == "evidence.added" && e.Details["sha256"] == sha {
			return true, nil
		}
	}
	problem := fmt.Sprintf("evidence: measure %s lists file %s, which no record of it added: the database was altered", measureID, sha)
	s.Log.ErrorContext(ctx, "ALERT: "+problem, "measure", measureID)
	if err := audit.Halt(context.WithoutCancel(ctx), s.DB, measure.Clip(problem, measure.MaxLine)); err != nil {
		s.Log.ErrorContext(ctx, "record the halt", "err", err)
	}
	return false, nil
}
