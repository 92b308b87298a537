package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/intel"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// ImportPreview is an uploaded threat-intelligence file and what confirming it would do to
// the draft: recomputed from the file against the draft as it stands each time it is read.
type ImportPreview struct {
	ID         string     `json:"id"`
	Measure    string     `json:"measure"`
	FileName   string     `json:"file_name,omitempty"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ImportedAt *time.Time `json:"imported_at,omitempty"`
	intel.Preview
	// Counts cover the whole file; Targets and Skipped list one page of each.
	Counts ImportCounts `json:"counts"`
	// TargetsSHA256 names the list of targets confirming adds (measure.TargetHash): the
	// confirmation must name it, so what is imported is what the officer was shown.
	TargetsSHA256 string `json:"targets_sha256"`
	// SkippedBy counts the skipped by reason, most first.
	SkippedBy []ReasonCount `json:"skipped_by_reason"`
}

// ImportCounts are a preview's totals.
type ImportCounts struct {
	Targets     int `json:"targets"`
	Skipped     int `json:"skipped"`
	Attribution int `json:"attribution"`
	InDraft     int `json:"in_draft"` // targets the draft holds already
	Noted       int `json:"noted"`    // targets with a note to look at
}

// ReasonCount is how many were skipped for one reason.
type ReasonCount struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// attributionKey is where imported attribution is kept in a case's attribution object.
const attributionKey = "imported"

// ImportFile keeps an uploaded file as a pending import into a draft and previews it;
// nothing is added until ConfirmImport.
func (s *Service) ImportFile(ctx context.Context, a authz.Actor, measureID, format, fileName string, data []byte) (ImportPreview, error) {
	const action = "targets.import"
	m, err := s.editableDraft(ctx, a, measureID, action)
	if err != nil {
		return ImportPreview{}, err
	}
	if fe := measure.CheckLine("file_name", fileName, measure.MaxLine); fe != nil {
		return ImportPreview{}, s.refuse(ctx, a, m.on(), action, fe)
	}
	if format != "" && format != intel.STIX && format != intel.MISP {
		return ImportPreview{}, s.refuse(ctx, a, m.on(), action, refusal.New(refusal.Invalid, "format must be stix or misp (or left out to detect it), not %q", measure.Clip(format, 20)))
	}
	if len(data) > intel.MaxBytes {
		return ImportPreview{}, s.refuse(ctx, a, m.on(), action, refusal.New(refusal.TooLarge, "the file is %d bytes; at most %d are imported", len(data), intel.MaxBytes))
	}
	p, err := s.parse(ctx, format, data, time.Now())
	if err != nil {
		return ImportPreview{}, s.refuse(ctx, a, m.on(), action, importRefusal(err))
	}
	ip := ImportPreview{ID: NewID("imp-"), Measure: m.ID, FileName: fileName, CreatedBy: a.ID}
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO imports (id, measure_id, org_id, created_by, format, file_name, sha256, body)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING created_at`,
			ip.ID, m.ID, m.Org, a.ID, p.Format, fileName, p.Source.SHA256, data).Scan(&ip.CreatedAt); err != nil {
			return err
		}
		// The log holds the file's hash: the file is held to it whenever it is read again.
		return s.append(ctx, tx, a, uploadKey(ip.ID), &audit.Record{Action: "import.uploaded", Case: m.Case,
			Details: map[string]any{"import": ip.ID, "measure": m.ID, "format": p.Format, "file_sha256": p.Source.SHA256, "file_name": fileName}})
	})
	if err != nil {
		return ImportPreview{}, fmt.Errorf("keep import: %w", err)
	}
	if err := s.previewAgainst(ctx, s.DB, m, p, &ip); err != nil {
		return ImportPreview{}, err
	}
	ip.page(Page{Limit: intel.MaxListed})
	return ip, nil
}

// parse reads a file, one at a time (Service.parsing): a large file's preview holds hundreds
// of megabytes while it is read, and several at once would hold that many times over.
func (s *Service) parse(ctx context.Context, format string, data []byte, now time.Time) (*intel.Preview, error) {
	for !s.parsing.TryLock() {
		select {
		case <-ctx.Done():
			return nil, refusal.New(refusal.Unavailable, "other imports are being read: try again in a moment")
		case <-time.After(20 * time.Millisecond):
		}
	}
	defer s.parsing.Unlock()
	return intel.Parse(format, data, now)
}

func importRefusal(err error) error {
	var ie *intel.Error
	if errors.As(err, &ie) {
		return refusal.New(refusal.Invalid, "the file cannot be imported: %s", ie.Error())
	}
	return err
}

// editableDraft is a measure the actor may edit now, read without holding it.
func (s *Service) editableDraft(ctx context.Context, a authz.Actor, id, action string) (Measure, error) {
	m, err := s.find(ctx, nil, a, id, action)
	if err != nil {
		return m, err
	}
	if err := s.Authz.Check(authz.OpEditDraft, a, m.Facts, time.Now()); err != nil {
		return m, s.refuse(ctx, a, m.on(), action, err)
	}
	if m.Stage != measure.Draft {
		return m, s.refuse(ctx, a, m.on(), action, refusal.New(refusal.WrongStage, "%s is only possible in stage %s; the measure is %s", action, measure.Draft, m.Stage))
	}
	return m, nil
}

// Import reads a pending or finished import the actor may see: its creator, or whoever may
// edit its draft.
func (s *Service) Import(ctx context.Context, a authz.Actor, id string, q Page) (ImportPreview, error) {
	ip, data, format, err := s.loadImport(ctx, s.DB, a, id, "read.import", false)
	if err != nil {
		return ip, err
	}
	m, err := s.find(ctx, nil, a, ip.Measure, "read.import")
	if err != nil {
		return ip, err
	}
	if err := q.Check(); err != nil {
		return ip, err
	}
	if err := s.checkFile(ctx, s.DB, ip.ID, data); err != nil {
		return ip, err
	}
	p, err := s.parse(ctx, format, data, ip.CreatedAt)
	if err != nil {
		return ip, importRefusal(err)
	}
	if err := s.previewAgainst(ctx, s.DB, m, p, &ip); err != nil {
		return ip, err
	}
	ip.page(q)
	return ip, nil
}

// querier is what previewAgainst reads through: the pool, or a transaction.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func uploadKey(id string) string { return "import/" + id }

// checkFile holds a stored file to the hash its upload's audit record names: a file
// rewritten in the database is not previewed or imported.
func (s *Service) checkFile(ctx context.Context, q rowQuerier, id string, data []byte) error {
	var raw []byte
	if err := q.QueryRow(ctx, `SELECT record FROM audit_entries WHERE key = $1`, uploadKey(id)).Scan(&raw); err != nil {
		return fmt.Errorf("read the upload record of import %s: %w", id, err)
	}
	var rec struct {
		Details struct {
			SHA256 string `json:"file_sha256"`
		} `json:"details"`
	}
	sum := sha256.Sum256(data)
	if json.Unmarshal(raw, &rec) != nil || rec.Details.SHA256 != hex.EncodeToString(sum[:]) {
		s.Log.ErrorContext(ctx, "ALERT: a stored import file does not hash to what its upload recorded", "import", id)
		return refusal.New(refusal.Conflict, "the stored file of import %s is not the file uploaded (its hash differs from the one the log recorded): the database was altered; upload the file again and tell an auditor", id)
	}
	return nil
}

// loadImport reads an import row; only its creator or an editor of its measure's
// organisation may read it, and anyone else is told it does not exist.
func (s *Service) loadImport(ctx context.Context, q rowQuerier, a authz.Actor, id, action string, lock bool) (ImportPreview, []byte, string, error) {
	var ip ImportPreview
	var data []byte
	var format, org string
	sql := `SELECT id, measure_id, file_name, created_by, created_at, imported_at, format, body, org_id FROM imports WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	err := pgx.ErrNoRows
	if wellFormedID(id) {
		err = q.QueryRow(ctx, sql, id).Scan(&ip.ID, &ip.Measure, &ip.FileName, &ip.CreatedBy, &ip.CreatedAt, &ip.ImportedAt, &format, &data, &org)
	}
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && ip.CreatedBy != a.ID && (org != a.Org || !a.Has(authz.Officer))) {
		nf := refusal.New(refusal.NotFound, "no import %s", measure.Clip(id, 64))
		if action != "" {
			s.Refused(ctx, a, On{}, action, nf)
		}
		return ip, nil, "", nf
	}
	if err != nil {
		return ip, nil, "", fmt.Errorf("read import: %w", err)
	}
	return ip, data, format, nil
}

// previewAgainst fills ip from p as confirming it would act on m now: targets the draft holds
// already are skipped, and attribution the case holds already is left out.
func (s *Service) previewAgainst(ctx context.Context, q rowQuerier, m Measure, p *intel.Preview, ip *ImportPreview) error {
	want := make(map[string]bool, len(p.Targets))
	for _, c := range p.Targets {
		want[intel.Key(c.Target)] = true
	}
	// The draft's rows read in one pass, by the measure's index: a lookup of each candidate's
	// value (value = ANY) took the planner tens of seconds at a hundred thousand.
	have := map[string]bool{}
	rows, err := q.Query(ctx, `SELECT kind, value, COALESCE(port, 0) FROM targets WHERE measure_id = $1 AND version = $2`, m.ID, m.Version)
	if err != nil {
		return fmt.Errorf("read the draft's targets: %w", err)
	}
	for rows.Next() {
		var t measure.Target
		if err := rows.Scan(&t.Kind, &t.Value, &t.Port); err != nil {
			rows.Close()
			return err
		}
		if k := intel.Key(t); want[k] {
			have[k] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the draft's targets: %w", err)
	}
	kept := p.Targets[:0]
	for _, c := range p.Targets {
		if have[intel.Key(c.Target)] {
			p.Skipped = append(p.Skipped, intel.Skip{Ref: c.Target.Source, Type: c.Target.Kind, Reason: "the draft holds this target already"})
			ip.Counts.InDraft++
			continue
		}
		kept = append(kept, c)
	}
	p.Targets = kept
	var attribution json.RawMessage
	if err := q.QueryRow(ctx, `SELECT attribution FROM cases WHERE id = $1`, m.Case).Scan(&attribution); err != nil {
		return fmt.Errorf("read the case's attribution: %w", err)
	}
	known := map[string]bool{}
	for _, e := range importedAttribution(attribution) {
		// By its source's id, and by kind and name: another file's id for the same actor.
		known[e.Ref] = true
		known[e.Kind+"\x00"+strings.ToLower(e.Name)] = true
	}
	p.Attribution = slices.DeleteFunc(p.Attribution, func(a intel.Attribution) bool {
		if known[a.Ref] || known[a.Kind+"\x00"+strings.ToLower(a.Name)] {
			// Said, not dropped: the file may give it other aliases or another marking, and
			// the case keeps the entry it holds.
			p.Skipped = append(p.Skipped, intel.Skip{Ref: a.Ref, Type: a.Kind, Reason: "the case's attribution holds it already; kept as it is there"})
			return true
		}
		return false
	})
	h := measure.NewTargetHash()
	for _, c := range p.Targets {
		h.Add(c.Target)
		if len(c.Notes) > 0 {
			ip.Counts.Noted++
		}
	}
	ip.Preview = *p
	ip.TargetsSHA256 = h.Sum()
	ip.Counts.Targets, ip.Counts.Skipped, ip.Counts.Attribution = len(p.Targets), len(p.Skipped), len(p.Attribution)
	by := map[[2]string]int{}
	for _, sk := range p.Skipped {
		by[[2]string{sk.Type, sk.Reason}]++
	}
	ip.SkippedBy = make([]ReasonCount, 0, len(by))
	for k, n := range by {
		ip.SkippedBy = append(ip.SkippedBy, ReasonCount{Type: k[0], Reason: k[1], Count: n})
	}
	slices.SortFunc(ip.SkippedBy, func(a, b ReasonCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if a.Type != b.Type {
			return map[bool]int{true: -1, false: 1}[a.Type < b.Type]
		}
		return map[bool]int{true: -1, false: 1}[a.Reason < b.Reason]
	})
	return nil
}

// page keeps one page of targets (and the first of the skipped).
func (ip *ImportPreview) page(q Page) {
	if q.Limit == 0 {
		q.Limit = intel.MaxListed
	}
	from := min(q.Offset, len(ip.Targets))
	ip.Targets = ip.Targets[from:min(from+q.Limit, len(ip.Targets))]
	ip.Skipped = ip.Skipped[:min(len(ip.Skipped), intel.MaxListed)]
}

// importedAttribution reads the attribution earlier imports added to a case.
func importedAttribution(raw json.RawMessage) []intel.Attribution {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil
	}
	var out []intel.Attribution
	_ = json.Unmarshal(obj[attributionKey], &out)
	return out
}

// ConfirmImport adds what the import's preview listed to its draft, in one transaction with
// its audit record: the targets, each with the object it came from, and the attribution, to
// the case. targetsSHA256 must name the targets the officer was shown; if the draft or the
// case changed since, the preview differs and the import is refused.
func (s *Service) ConfirmImport(ctx context.Context, a authz.Actor, id, targetsSHA256 string) (Measure, error) {
	const action = "targets.added"
	var measureID string
	{
		ip, _, _, err := s.loadImport(ctx, s.DB, a, id, action, false)
		if err != nil {
			return Measure{}, err
		}
		measureID = ip.Measure
	}
	var refused error // a refusal of the import itself, audited once below
	_, err := s.editDraft(ctx, a, measureID, action, func(tx pgx.Tx, m Measure) (details map[string]any, err error) {
		defer func() {
			if refusal.Is(err) {
				refused = err
			}
		}()
		ip, data, format, err := s.loadImport(ctx, tx, a, id, "", true)
		if err != nil {
			return nil, err
		}
		if ip.ImportedAt != nil {
			return nil, refusal.New(refusal.Conflict, "import %s was confirmed already, at %s", id, ip.ImportedAt.UTC().Format(time.RFC3339))
		}
		if err := s.checkFile(ctx, tx, ip.ID, data); err != nil {
			return nil, err
		}
		p, err := s.parse(ctx, format, data, ip.CreatedAt)
		if err != nil {
			return nil, importRefusal(err)
		}
		if err := s.previewAgainst(ctx, tx, m, p, &ip); err != nil {
			return nil, err
		}
		switch {
		case targetsSHA256 == "":
			return nil, refusal.New(refusal.Invalid, "targets_sha256 is required: the one of the preview the officer confirms")
		case targetsSHA256 != ip.TargetsSHA256:
			return nil, refusal.New(refusal.Conflict, "targets_sha256 does not name what importing adds now (%d targets, %s): the draft or the case changed since the preview, or the hash was mistyped; look at the preview again",
				ip.Counts.Targets, ip.TargetsSHA256)
		case len(ip.Targets) == 0 && len(ip.Attribution) == 0:
			return nil, refusal.New(refusal.Invalid, "the file names no target the draft does not hold already and no attribution the case does not: nothing to import")
		}
		targets := make([]measure.Target, len(ip.Targets))
		for i, c := range ip.Targets {
			targets[i] = c.Target
		}
		details = map[string]any{"targets": 0}
		if len(targets) > 0 {
			if details, err = s.insertTargets(ctx, tx, m, targets); err != nil {
				return nil, err
			}
		}
		// Each entry keeps its file's marking: the export of a measure will not share it
		// under a weaker one.
		for i := range ip.Attribution {
			ip.Attribution[i].TLP = ip.Source.TLP
		}
		added, err := s.addAttribution(ctx, tx, m.Case, ip.Attribution)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE imports SET imported_at = now() WHERE id = $1`, id); err != nil {
			return nil, fmt.Errorf("mark import: %w", err)
		}
		details["import"] = map[string]any{"id": id, "format": format, "file_sha256": ip.Source.SHA256, "source": ip.Source.ID,
			"producer": ip.Source.Producer, "tlp": ip.Source.TLP, "skipped": ip.Counts.Skipped, "attribution": added}
		return details, nil
	})
	if refused != nil {
		return Measure{}, s.refuse(ctx, a, On{Measure: measureID}, action, refused)
	}
	if err != nil {
		return Measure{}, err // editDraft audited its own refusals
	}
	return s.load(ctx, nil, measureID)
}

// addAttribution appends imported attribution to a case's, as far as the case's attribution
// has room; it returns what it added, for the log's record to hold in full.
func (s *Service) addAttribution(ctx context.Context, tx pgx.Tx, caseID string, add []intel.Attribution) ([]intel.Attribution, error) {
	if len(add) == 0 {
		return []intel.Attribution{}, nil
	}
	var raw json.RawMessage
	if err := tx.QueryRow(ctx, `SELECT attribution FROM cases WHERE id = $1 FOR UPDATE`, caseID).Scan(&raw); err != nil {
		return nil, fmt.Errorf("read the case's attribution: %w", err)
	}
	obj := map[string]any{}
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		obj = map[string]any{}
	}
	list := importedAttribution(raw)
	added := []intel.Attribution{}
	for _, e := range add {
		next := append(slices.Clone(list), e)
		obj[attributionKey] = next
		b, _ := json.Marshal(obj)
		if measure.CheckObject("attribution", b) != nil {
			break // the case's attribution is full; the rest stays in the file and the log's record names it
		}
		list, added = next, append(added, e)
	}
	obj[attributionKey] = list
	b, _ := json.Marshal(obj)
	if _, err := tx.Exec(ctx, `UPDATE cases SET attribution = $2 WHERE id = $1`, caseID, b); err != nil {
		return nil, fmt.Errorf("add attribution: %w", err)
	}
	return added, nil
}

// insertTargets appends targets to a draft's rows and returns what its audit record says of
// them. The sum lets the seal check that the draft's rows are those its recorded edits made.
func (s *Service) insertTargets(ctx context.Context, tx pgx.Tx, m Measure, targets []measure.Target) (map[string]any, error) {
	var seq int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(seq), 0) FROM targets WHERE measure_id = $1 AND version = $2`, m.ID, m.Version).Scan(&seq); err != nil {
		return nil, err
	}
	h := measure.NewTargetHash()
	var sum measure.TargetSum
	rows := make([][]any, len(targets))
	for i, t := range targets {
		var port any
		if t.Port != 0 {
			port = t.Port
		}
		rows[i] = []any{m.ID, m.Version, seq + i + 1, t.Kind, t.Value, port, t.Location, t.Country, t.Role, t.Ownership, t.HostingProvider, t.Registrar, t.Source}
		h.Add(t)
		sum.Add(t)
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"targets"},
		[]string{"measure_id", "version", "seq", "kind", "value", "port", "location", "country", "role", "ownership", "hosting_provider", "registrar", "source"},
		pgx.CopyFromRows(rows))
	return map[string]any{"count": len(rows), "first_seq": seq + 1, "sha256": h.Sum(), "targets_sum_added": sum.String()}, err
}
