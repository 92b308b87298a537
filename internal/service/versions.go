package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/reconcile"
)

// Decision is one review, vote, conflict declaration or gate recorded on a measure, with the
// version and digest it was given on: a decision on an older version is void.
type Decision struct {
	Kind       string    `json:"kind"` // legal, command, post_hoc, report_verification, vote, conflict, gate
	Version    int       `json:"version"`
	Digest     string    `json:"digest,omitempty"`
	By         string    `json:"by"`
	Decision   string    `json:"decision"`
	Reason     string    `json:"reason,omitempty"`
	Conditions []string  `json:"conditions,omitempty"`
	At         time.Time `json:"at"`
}

// Decisions returns every decision recorded on a measure, oldest first.
func (s *Service) Decisions(ctx context.Context, a authz.Actor, id string) ([]Decision, error) {
	m, err := s.readMeasure(ctx, a, id, "decisions")
	if err != nil {
		return nil, err
	}
	return s.decisionsOf(ctx, m)
}

func (s *Service) decisionsOf(ctx context.Context, m Measure) ([]Decision, error) {
	rows, err := s.DB.Query(ctx, `
		SELECT kind, version, '' AS digest, reviewer_id, decision, reason, '[]'::jsonb, at FROM reviews WHERE measure_id = $1
		UNION ALL SELECT 'vote', version, digest, member_id, vote, reason, conditions, at FROM votes WHERE measure_id = $1
		UNION ALL SELECT 'conflict', version, '', member_id, CASE WHEN conflicted THEN 'recused' ELSE 'no_conflict' END, reason, '[]'::jsonb, at
			FROM conflict_declarations WHERE measure_id = $1
		UNION ALL SELECT 'gate', version, '', recorded_by, kind, reference, '[]'::jsonb, at FROM gates WHERE measure_id = $1
		ORDER BY at, kind`, m.ID)
	if err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", m.ID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Decision, error) {
		var d Decision
		err := row.Scan(&d.Kind, &d.Version, &d.Digest, &d.By, &d.Decision, &d.Reason, &d.Conditions, &d.At)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", m.ID, err)
	}
	return out, nil
}

// FieldChange is one plan field that differs between two versions, each side as text.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Diff is what changed between two versions: the plan field by field on canonical values, the
// targets and evidence added and removed (the first MaxDiffTargets of each, with counts).
// From is, by default, the version the body deciding now last returned (the one it decided
// on), else the version before the current one; Versions lists every earlier sealed version a
// reader may compare with instead.
type Diff struct {
	From            int              `json:"from"`
	FromDigest      string           `json:"from_digest"`
	To              int              `json:"to"`
	Returned        bool             `json:"from_returned,omitempty"` // From is the version the deciding body returned
	Fields          []FieldChange    `json:"fields"`
	Added           []measure.Target `json:"added"`
	Removed         []measure.Target `json:"removed"`
	AddedN          int              `json:"added_count"`
	RemovedN        int              `json:"removed_count"`
	EvidenceAdded   []Evidence       `json:"evidence_added"`
	EvidenceRemoved []Evidence       `json:"evidence_removed"`
	Versions        []int            `json:"versions"`
}

// MaxDiffTargets bounds the targets a diff lists on each side.
const MaxDiffTargets = 100

// Changes returns what changed since an earlier version (from; 0 for the default of Diff), or
// nil when the measure has only one.
func (s *Service) Changes(ctx context.Context, a authz.Actor, id string, from int) (*Diff, error) {
	m, err := s.readMeasure(ctx, a, id, "changes")
	if err != nil {
		return nil, err
	}
	return s.changesOf(ctx, m, from)
}

// returnedBy names, for each stage where a body decides, the body's returns: a review kind, or
// the Commission's decision.
var returnedBy = map[measure.Stage]string{measure.LegalReview: "legal", measure.CommandReview: "command",
	measure.CommissionReview: "commission", measure.InfoRequested: "commission"}

func (s *Service) changesOf(ctx context.Context, m Measure, from int) (*Diff, error) {
	d := Diff{To: m.Version}
	rows, err := s.DB.Query(ctx, `SELECT version FROM measure_versions WHERE measure_id = $1 AND version < $2 ORDER BY version`, m.ID, m.Version)
	if err != nil {
		return nil, fmt.Errorf("list the versions of %s: %w", m.ID, err)
	}
	if d.Versions, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil {
		return nil, fmt.Errorf("list the versions of %s: %w", m.ID, err)
	}
	if len(d.Versions) == 0 {
		if from != 0 {
			return nil, &measure.FieldError{Field: "from", Message: "this measure has no earlier sealed version"}
		}
		return nil, nil
	}
	switch {
	case from != 0 && !slices.Contains(d.Versions, from):
		return nil, &measure.FieldError{Field: "from", Message: fmt.Sprintf("must be an earlier sealed version, one of %v", d.Versions)}
	case from != 0:
		d.From = from
	default:
		d.From = d.Versions[len(d.Versions)-1]
		if body, ok := returnedBy[m.Stage]; ok {
			var v int
			err := s.DB.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM (
				SELECT version FROM reviews WHERE measure_id = $1 AND kind = $2 AND decision = 'return' AND version < $3
				UNION ALL SELECT version FROM decisions WHERE measure_id = $1 AND $2 = 'commission' AND outcome = 'returned' AND version < $3) r`,
				m.ID, body, m.Version).Scan(&v)
			if err == nil && v > 0 {
				d.From, d.Returned = v, true
			} else if err != nil {
				return nil, fmt.Errorf("find the version returned of %s: %w", m.ID, err)
			}
		}
	}
	var oldPlan, newPlan []byte
	if err := s.DB.QueryRow(ctx, `SELECT digest, COALESCE(body->'content'->'plan', '{}') FROM measure_versions WHERE measure_id = $1 AND version = $2`,
		m.ID, d.From).Scan(&d.FromDigest, &oldPlan); err != nil {
		return nil, fmt.Errorf("read version %d of %s: %w", d.From, m.ID, err)
	}
	// The current version as sealed when it is; a draft's plan as it stands.
	err = s.DB.QueryRow(ctx, `SELECT COALESCE(body->'content'->'plan', '{}') FROM measure_versions WHERE measure_id = $1 AND version = $2`,
		m.ID, m.Version).Scan(&newPlan)
	if errors.Is(err, pgx.ErrNoRows) {
		newPlan, err = json.Marshal(m.Plan)
	}
	if err != nil {
		return nil, fmt.Errorf("read version %d of %s: %w", m.Version, m.ID, err)
	}
	if d.Fields, err = fieldChanges(oldPlan, newPlan); err != nil {
		return nil, fmt.Errorf("compare versions of %s: %w", m.ID, err)
	}
	const cols = measure.TargetColumns
	side := func(from, to int) ([]measure.Target, int, error) {
		q := `SELECT ` + cols + ` FROM targets WHERE measure_id = $1 AND version = $2 EXCEPT SELECT ` + cols + ` FROM targets WHERE measure_id = $1 AND version = $3`
		var n int
		if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM (`+q+`) d`, m.ID, to, from).Scan(&n); err != nil {
			return nil, 0, err
		}
		rows, err := s.DB.Query(ctx, q+` ORDER BY 2, 1 LIMIT `+fmt.Sprint(MaxDiffTargets), m.ID, to, from)
		if err != nil {
			return nil, 0, err
		}
		ts, err := pgx.CollectRows(rows, scanTarget)
		return ts, n, err
	}
	if d.Added, d.AddedN, err = side(d.From, d.To); err != nil {
		return nil, fmt.Errorf("compare targets of %s: %w", m.ID, err)
	}
	if d.Removed, d.RemovedN, err = side(d.To, d.From); err != nil {
		return nil, fmt.Errorf("compare targets of %s: %w", m.ID, err)
	}
	// Each side's evidence read once; what one holds and the other lacks is added or removed.
	before, err := s.evidenceAt(ctx, m.ID, d.From)
	if err != nil {
		return nil, fmt.Errorf("compare evidence of %s: %w", m.ID, err)
	}
	after, err := s.evidenceAt(ctx, m.ID, d.To)
	if err != nil {
		return nil, fmt.Errorf("compare evidence of %s: %w", m.ID, err)
	}
	d.EvidenceAdded, d.EvidenceRemoved = evidenceNotIn(after, before), evidenceNotIn(before, after)
	return &d, nil
}

// evidenceNotIn lists the evidence of list whose hash other lacks.
func evidenceNotIn(list, other []Evidence) []Evidence {
	var out []Evidence
	for _, e := range list {
		if !slices.ContainsFunc(other, func(b Evidence) bool { return b.SHA256 == e.SHA256 }) {
			out = append(out, e)
		}
	}
	return out
}

// Empty reports whether the two versions are the same to a reader.
func (d *Diff) Empty() bool {
	return len(d.Fields) == 0 && d.AddedN == 0 && d.RemovedN == 0 && len(d.EvidenceAdded) == 0 && len(d.EvidenceRemoved) == 0
}

func scanTarget(row pgx.CollectableRow) (measure.Target, error) { return measure.ScanTarget(row) }

// fieldChanges compares two plans' top-level fields on canonical values (key order and
// escaping make no change), in name order.
func fieldChanges(oldPlan, newPlan []byte) ([]FieldChange, error) {
	var o, n map[string]any
	if err := json.Unmarshal(oldPlan, &o); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(newPlan, &n); err != nil {
		return nil, err
	}
	var names []string
	for k := range o {
		names = append(names, k)
	}
	for k := range n {
		if _, ok := o[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	out := []FieldChange{}
	for _, k := range names {
		ov, nv := shown(o[k]), shown(n[k])
		if ov != nv {
			out = append(out, FieldChange{Field: k, Old: ov, New: nv})
		}
	}
	return out, nil
}

// shown is a plan value as a person reads it: strings as they are, empty values as nothing,
// the rest as canonical JSON (object keys sorted, nothing escaped that need not be).
func shown(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if !x {
			return ""
		}
	case float64:
		if x == 0 {
			return ""
		}
	case []any:
		if len(x) == 0 {
			return ""
		}
	case map[string]any:
		if len(x) == 0 {
			return ""
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// SealedCase is the case as a version's seal holds it.
type SealedCase struct {
	Title       string          `json:"title"`
	Summary     string          `json:"summary"`
	Attribution json.RawMessage `json:"attribution"`
	Harm        json.RawMessage `json:"harm"`
}

// Sealed is what a version's digest covers, as sealed: the digest is SHA-256 over the RFC 8785
// form of this document (activities' seal writes it; DESIGN section 4 names it).
type Sealed struct {
	// Case is the case as sealed with the version (nil in versions sealed before the seal
	// covered it: pages then show the case as it is now, and say so).
	Case           *SealedCase      `json:"case,omitempty"`
	Measure        string           `json:"measure"`
	Version        int              `json:"version"`
	Plan           measure.Plan     `json:"plan"`
	Targets        int              `json:"targets"`
	TargetsSHA256  string           `json:"targets_sha256"`
	EvidenceSHA256 []string         `json:"evidence_sha256"`
	Reviews        []map[string]any `json:"reviews"`
	Foreign        bool             `json:"foreign"`
	// Broken is true when the stored document no longer hashes to the version's digest, or (in
	// a dossier) its target rows to the document: someone changed them in the database. The
	// pages show it and take no decision on it.
	Broken bool `json:"seal_broken,omitempty"`
}

// sealedOf reads what version v of a measure sealed, or nil while it is a draft.
func (s *Service) sealedOf(ctx context.Context, id string, v int, current string) (*Sealed, error) {
	var raw []byte
	var digest string
	err := s.DB.QueryRow(ctx, `SELECT body->'content', digest FROM measure_versions WHERE measure_id = $1 AND version = $2`, id, v).Scan(&raw, &digest)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read version %d of %s: %w", v, id, err)
	}
	var sv Sealed
	if err := json.Unmarshal(raw, &sv); err != nil {
		return nil, fmt.Errorf("decode version %d of %s: %w", v, id, err)
	}
	// What is shown as sealed must be what was sealed: the digest is SHA-256 over the RFC 8785
	// form of this document.
	got, err := measure.Digest(raw)
	sv.Broken = err != nil || got != digest || (current != "" && digest != current)
	if sv.Broken {
		s.Log.ErrorContext(ctx, "a sealed version does not hash to its digest", "measure", id, "version", v)
	}
	return &sv, nil
}

// Dossier is all a reviewer sees of a measure on one screen. Sealed, once the version is
// sealed, is what a decision on it judges: the pages draw the plan from it.
type Dossier struct {
	Measure   Measure           `json:"measure"`
	Sealed    *Sealed           `json:"sealed,omitempty"`
	Case      Case              `json:"case"`
	People    map[string]Person `json:"people"`
	After     Aftermath         `json:"after"`
	Targets   []measure.Target  `json:"targets"`
	TargetsN  int               `json:"targets_matching"`
	Evidence  []Evidence        `json:"evidence"`
	Decisions []Decision        `json:"decisions"`
	Changes   *Diff             `json:"changes"`
	History   []audit.Entry     `json:"history"`
}

// Dossier reads a measure with a page of its targets, its evidence, decisions, changes since
// the previous version and its timeline: one read check, and for an auditor one audited read.
func (s *Service) Dossier(ctx context.Context, a authz.Actor, id string, q TargetQuery) (Dossier, error) {
	m, err := s.readMeasure(ctx, a, id, "dossier")
	if err != nil {
		return Dossier{}, err
	}
	d := Dossier{Measure: m}
	if d.Sealed, err = s.sealedOf(ctx, m.ID, m.Version, m.Digest); err != nil {
		return d, err
	}
	if d.Sealed != nil && !d.Sealed.Broken {
		// The rows listed must be those sealed: a target rewritten in SQL is shown as such.
		th, err := reconcile.HashTargets(ctx, s.DB, m.ID, m.Version)
		if err != nil {
			return d, err
		}
		if th.Len() != d.Sealed.Targets || th.Sum() != d.Sealed.TargetsSHA256 {
			d.Sealed.Broken = true
			s.Log.ErrorContext(ctx, "ALERT: a sealed version's target rows do not hash to its seal", "measure", m.ID, "version", m.Version)
		}
	}
	// The case as the measure's reader may see it: its need-to-know follows the measure's.
	if d.Case, _, err = scanCase(s.DB.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases c WHERE c.id = $1`, m.Case)); err != nil {
		return d, fmt.Errorf("read the case of %s: %w", m.ID, err)
	}
	// What reviewers judge is the case as sealed with the version, not as it has grown since.
	if d.Sealed != nil && d.Sealed.Case != nil {
		sc := d.Sealed.Case
		d.Case.Title, d.Case.Summary, d.Case.Attribution, d.Case.Harm = sc.Title, sc.Summary, sc.Attribution, sc.Harm
	}
	if d.Targets, d.TargetsN, err = s.targetPage(ctx, m, q); err != nil {
		return d, err
	}
	if d.Evidence, err = s.evidenceOf(ctx, m); err != nil {
		return d, err
	}
	if d.Decisions, err = s.decisionsOf(ctx, m); err != nil {
		return d, err
	}
	if d.Changes, err = s.changesOf(ctx, m, q.ChangesFrom); err != nil {
		return d, err
	}
	if d.History, err = s.historyOf(ctx, m); err != nil {
		return d, err
	}
	if d.After, err = s.aftermathOf(ctx, m, q.Steps); err != nil {
		return d, err
	}
	d.People, err = s.people(ctx, d)
	return d, err
}

// Plan is the plan a reader judges: the sealed one once sealed, the draft's until then.
func (d Dossier) Plan() measure.Plan {
	if d.Sealed != nil {
		return d.Sealed.Plan
	}
	return d.Measure.Plan
}

// Person is someone a page names: by name and organisation, not by account ID.
type Person struct {
	Name string `json:"name"`
	Org  string `json:"org"`
}

// people names everyone the dossier mentions.
func (s *Service) people(ctx context.Context, d Dossier) (map[string]Person, error) {
	ids := []string{d.Measure.Requester, d.Case.CreatedBy}
	ids = append(ids, d.Plan().Executors...)
	for _, x := range d.Decisions {
		ids = append(ids, x.By)
	}
	for _, r := range d.History {
		ids = append(ids, r.Actor.ID)
	}
	for _, st := range d.After.Steps {
		ids = append(ids, st.Executor, st.Witness)
	}
	for _, r := range d.After.Reports {
		ids = append(ids, r.Author, r.VerifiedBy)
	}
	for _, n := range d.After.Notifications {
		ids = append(ids, n.RecordedBy)
	}
	if o := d.After.Order; o != nil {
		ids = append(ids, o.IssuedBy)
	}
	out, err := s.names(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("name the people of %s: %w", d.Measure.ID, err)
	}
	return out, nil
}

// names names users by display name and organisation; an unknown ID is left out.
func (s *Service) names(ctx context.Context, ids []string) (map[string]Person, error) {
	rows, err := s.DB.Query(ctx, `SELECT u.id, u.display_name, COALESCE(o.name, u.org_id) FROM users u LEFT JOIN organisations o ON o.id = u.org_id
		WHERE u.id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]Person{}
	for rows.Next() {
		var id string
		var p Person
		if err := rows.Scan(&id, &p.Name, &p.Org); err != nil {
			rows.Close()
			return nil, err
		}
		out[id] = p
	}
	rows.Close()
	return out, rows.Err()
}
