package service

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/intel"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// ExportSTIX writes a closed measure as a STIX 2.1 bundle for partners, marked with tlp: the
// approved version's targets, the case's imported attribution, the course of action, the
// execution and the post-execution report. Sharing is the requesting agency's decision: its
// officers and commanders export; the read is audited.
func (s *Service) ExportSTIX(ctx context.Context, a authz.Actor, id, tlp string, w io.Writer) error {
	const action = "stix_export"
	name := intel.TLPName(tlp)
	if name == "" {
		return s.refuse(ctx, a, On{Measure: id}, "read."+action, &measure.FieldError{Field: "tlp", Message: "must be TLP:CLEAR (white), TLP:GREEN, TLP:AMBER or TLP:RED"})
	}
	m, err := s.readMeasure(ctx, a, id, action)
	if err != nil {
		return err
	}
	if !(a.Has(authz.Officer) || a.Has(authz.Commander)) || a.Org != m.Org {
		return s.refuse(ctx, a, m.on(), "read."+action, &authz.Denied{Rule: "role", Reason: "a measure is shared with partners by the officers and commanders of its agency"})
	}
	if m.Stage != measure.Closed {
		return s.refuse(ctx, a, m.on(), "read."+action, refusal.New(refusal.WrongStage, "a measure is exported once it is %s; it is %s", measure.Closed, m.Stage))
	}
	in := intel.ExportInput{Measure: m.ID, Title: m.Plan.Title, Org: m.Org, Kind: string(m.Plan.Kind), Technique: m.Plan.Technique,
		Operations: m.Plan.Operations, Closed: m.UpdatedAt, TLP: name}
	// The attribution as the version executed sealed it: the case's may have grown since (an
	// import into another of its measures), and an export says what this measure was.
	var attribution []byte
	if err := s.DB.QueryRow(ctx, `SELECT COALESCE(v.body->'content'->'case'->'attribution', c.attribution), COALESCE(o.name, '')
		FROM measures m JOIN cases c ON c.id = m.case_id LEFT JOIN organisations o ON o.id = c.org_id
		LEFT JOIN measure_versions v ON v.measure_id = m.id AND v.version = m.version WHERE m.id = $1`, m.ID).
		Scan(&attribution, &in.OrgName); err != nil {
		return fmt.Errorf("read the case of %s: %w", m.ID, err)
	}
	in.Attribution = importedAttribution(attribution)
	// What a source marked is not shared under a weaker marking than its own.
	strictest, from := -1, ""
	for _, e := range in.Attribution {
		if r := intel.TLPRank(e.TLP); r > strictest {
			strictest, from = r, e.Ref
		}
	}
	// Each import's marking as the log recorded it (the imports table is the database's
	// to edit; the log's records are not).
	rows, err := s.DB.Query(ctx, `SELECT record FROM audit_entries WHERE measure_id = $1 AND key LIKE 'targets.added/%' ORDER BY created_at`, m.ID)
	if err != nil {
		return fmt.Errorf("read the imports of %s: %w", m.ID, err)
	}
	var raw []byte
	if _, err := pgx.ForEachRow(rows, []any{&raw}, func() error {
		var rec struct {
			Action  string `json:"action"`
			Details struct {
				Import struct {
					ID  string `json:"id"`
					TLP string `json:"tlp"`
				} `json:"import"`
			} `json:"details"`
		}
		if json.Unmarshal(raw, &rec) != nil || rec.Action != "targets.added" {
			return nil
		}
		if r := intel.TLPRank(rec.Details.Import.TLP); r > strictest {
			strictest, from = r, "import "+rec.Details.Import.ID
		}
		return nil
	}); err != nil {
		return fmt.Errorf("read the imports of %s: %w", m.ID, err)
	}
	if strictest > intel.TLPRank(name) {
		// TLP 1.0, which STIX 2.1 defines markings for, has no AMBER+STRICT: RED is next.
		need := []string{"TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:RED", "TLP:RED"}[strictest]
		return s.refuse(ctx, a, m.on(), "read."+action, &measure.FieldError{Field: "tlp",
			Message: fmt.Sprintf("the measure holds material its source marked stricter than %s (%s): share it at %s", cmp.Or(map[string]string{"white": "TLP:CLEAR"}[name], "TLP:"+strings.ToUpper(name)), from, need)})
	}
	// Case data leaving for partners: recorded, whoever exports it, before a byte is written.
	if err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		return s.append(ctx, tx, a, "read/"+NewID(""), &audit.Record{Action: "read." + action, Case: m.Case, Measure: m.ID,
			Details: map[string]any{"tlp": name}})
	}); err != nil {
		return fmt.Errorf("record the export of %s: %w", m.ID, err)
	}
	if m.Approval != nil {
		in.WindowStart, in.WindowEnd = m.Approval.WindowStart, m.Approval.WindowEnd
	}
	ss, err := s.stepSummary(ctx, m.ID)
	if err != nil {
		return err
	}
	in.StepsByResult = ss.ByResult
	if ss.First != nil {
		in.ExecutedFrom, in.ExecutedUntil = *ss.First, *ss.Last
	}
	if err := s.DB.QueryRow(ctx, `SELECT body FROM reports WHERE measure_id = $1 AND kind = 'post_execution' ORDER BY at DESC LIMIT 1`, m.ID).
		Scan(&in.Report); err != nil && err != pgx.ErrNoRows {
		return fmt.Errorf("read the report of %s: %w", m.ID, err)
	}
	// The targets are streamed from the version executed, as the bundle is written.
	var scanErr error
	in.Targets = func(yield func(measure.Target) bool) {
		rows, err := s.DB.Query(ctx, `SELECT `+measure.TargetColumns+` FROM targets WHERE measure_id = $1 AND version = $2 ORDER BY seq`, m.ID, m.Version)
		if err != nil {
			scanErr = err
			return
		}
		defer rows.Close()
		for rows.Next() {
			t, err := measure.ScanTarget(rows)
			if err != nil {
				scanErr = err
				return
			}
			if !yield(t) {
				return
			}
		}
		scanErr = rows.Err()
	}
	err = intel.ExportSTIX(w, in)
	if scanErr != nil {
		return fmt.Errorf("read the targets of %s: %w", m.ID, scanErr)
	}
	if err != nil {
		return fmt.Errorf("export %s as STIX: %w", m.ID, err)
	}
	return nil
}
