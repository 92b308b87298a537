package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/workflows"
)

// Measure is a measure request as the API shows it.
type Measure struct {
	ID        string            `json:"id"`
	Case      string            `json:"case"`
	Stage     measure.Stage     `json:"stage"`
	Version   int               `json:"version"`
	Digest    string            `json:"digest,omitempty"`
	Requester string            `json:"requester"`
	Plan      measure.Plan      `json:"plan"`
	Facts     authz.Facts       `json:"facts"`
	Approval  *measure.Approval `json:"approval,omitempty"`
	Targets   int               `json:"targets"`
	Evidence  int               `json:"evidence"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Org owns the measure's case; BeforeCommission is true once a version was sealed.
	Org              string `json:"org"`
	BeforeCommission bool   `json:"before_commission"`
}

// subject is the measure as the need-to-know rule sees it.
func (m Measure) subject() authz.Subject {
	return authz.Subject{Org: m.Org, BeforeCommission: m.BeforeCommission, NamedExecutors: m.Facts.NamedExecutors}
}

func (s *Server) loadMeasure(ctx context.Context, q pgx.Tx, id string, lock bool) (Measure, error) {
	var m Measure
	var plan, facts, approval []byte
	sql := `SELECT m.id, m.case_id, m.stage, m.version, m.digest, m.requester_id, m.plan, m.facts, m.approval, m.created_at, m.updated_at,
		(SELECT count(*) FROM targets t WHERE t.measure_id = m.id AND t.version = m.version),
		(SELECT count(*) FROM evidence e WHERE e.measure_id = m.id AND e.version = m.version),
		c.org_id, EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id)
		FROM measures m JOIN cases c ON c.id = m.case_id WHERE m.id = $1`
	var row pgx.Row
	if lock {
		row = q.QueryRow(ctx, `SELECT 1 FROM measures WHERE id = $1 FOR UPDATE`, id)
		var one int
		if err := row.Scan(&one); err != nil {
			return m, err
		}
		row = q.QueryRow(ctx, sql, id)
	} else {
		row = s.DB.QueryRow(ctx, sql, id)
	}
	err := row.Scan(&m.ID, &m.Case, &m.Stage, &m.Version, &m.Digest, &m.Requester, &plan, &facts, &approval,
		&m.CreatedAt, &m.UpdatedAt, &m.Targets, &m.Evidence, &m.Org, &m.BeforeCommission)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(plan, &m.Plan); err != nil {
		return m, fmt.Errorf("decode plan of %s: %w", id, err)
	}
	if err := json.Unmarshal(facts, &m.Facts); err != nil {
		return m, fmt.Errorf("decode facts of %s: %w", id, err)
	}
	if approval != nil {
		m.Approval = new(measure.Approval)
		if err := json.Unmarshal(approval, m.Approval); err != nil {
			return m, fmt.Errorf("decode approval of %s: %w", id, err)
		}
	}
	return m, nil
}

func (s *Server) getMeasure(w http.ResponseWriter, r *http.Request) {
	m, err := s.readMeasure(r, "measure")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// MeasureSummary is one row of a measure list.
type MeasureSummary struct {
	ID        string        `json:"id"`
	Case      string        `json:"case"`
	Org       string        `json:"org"`
	Title     string        `json:"title"`
	Stage     measure.Stage `json:"stage"`
	Version   int           `json:"version"`
	Digest    string        `json:"digest,omitempty"`
	Requester string        `json:"requester"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// listMeasures lists the measures the actor may read, most recently changed first, a page at
// a time, optionally of one stage or case. The query keeps to the need-to-know scope; each
// row is checked against the rule as well.
func (s *Server) listMeasures(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	limit, offset, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	stage, caseID := q.Get("stage"), q.Get("case")
	if fe := measure.CheckLine("stage", stage, measure.MaxLine); fe != nil {
		s.fail(w, r, fe)
		return
	}
	if fe := measure.CheckLine("case", caseID, measure.MaxLine); fe != nil {
		s.fail(w, r, fe)
		return
	}
	sc := s.reads().Scope(a)
	rows, err := s.DB.Query(r.Context(), `SELECT m.id, m.case_id, c.org_id, COALESCE(m.plan->>'title', ''), m.stage, m.version, m.digest,
			m.requester_id, m.updated_at, EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id),
			COALESCE(ARRAY(SELECT jsonb_array_elements_text(COALESCE(m.facts->'named_executors', '[]'))), '{}')
		FROM measures m JOIN cases c ON c.id = m.case_id
		WHERE ($1 = '' OR m.stage = $1) AND ($2 = '' OR m.case_id = $2)
			AND ($3 OR ($4 <> '' AND c.org_id = $4)
				OR ($5 <> '' AND COALESCE(m.facts->'named_executors', '[]') ? $5)
				OR ($6 AND EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id)))
		ORDER BY m.updated_at DESC, m.id LIMIT $7 OFFSET $8`,
		stage, caseID, sc.All, sc.Org, sc.Executor, sc.Commission, limit, offset)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rows.Close()
	out := []MeasureSummary{}
	for rows.Next() {
		var m MeasureSummary
		var subj authz.Subject
		if err := rows.Scan(&m.ID, &m.Case, &m.Org, &m.Title, &m.Stage, &m.Version, &m.Digest, &m.Requester, &m.UpdatedAt,
			&subj.BeforeCommission, &subj.NamedExecutors); err != nil {
			s.fail(w, r, err)
			return
		}
		subj.Org = m.Org
		if err := s.reads().CanRead(a, subj); err != nil {
			s.Log.Error("the measure list's query and the need-to-know rule disagree", "measure", m.ID, "actor", a.ID)
			continue
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		s.fail(w, r, err)
		return
	}
	if a.Has(authz.Auditor) && len(out) > 0 {
		if err := s.mayRead(r, authz.Subject{}, "measures", "", ""); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"measures": out})
}

// readMeasure loads the measure named in the path for a read of what (measure, targets,
// evidence, history), if the actor may read it: otherwise it is not found, and the refusal is
// audited. An auditor's read of case content is itself audited.
func (s *Server) readMeasure(r *http.Request, what string) (Measure, error) {
	m, err := s.loadMeasure(r.Context(), nil, r.PathValue("measure"), false)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, &Error{Status: 404, Code: "not_found", Message: "no measure " + measure.Clip(r.PathValue("measure"), 64)}
	}
	if err != nil {
		return m, err
	}
	return m, s.mayRead(r, m.subject(), what, m.Case, m.ID)
}

// mayRead applies the need-to-know rule: a refusal is audited and answered as not found (the
// reader learns nothing of what exists); an auditor's read is audited.
func (s *Server) mayRead(r *http.Request, subj authz.Subject, what, caseID, measureID string) error {
	a := actorOf(r)
	if err := s.reads().CanRead(a, subj); err != nil {
		s.refused(r.Context(), a, measureID, caseID, "read."+what, "", err)
		return &Error{Status: 404, Code: "not_found", Message: "no " + what + " here for you"}
	}
	if !a.Has(authz.Auditor) {
		return nil
	}
	err := pgx.BeginFunc(r.Context(), s.DB, func(tx pgx.Tx) error {
		return audit.Append(r.Context(), tx, "read/"+newID(""), &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "read." + what, Case: caseID, Measure: measureID})
	})
	if err != nil {
		return fmt.Errorf("audit the read of %s: %w", what, err)
	}
	return nil
}

// createMeasure opens a draft measure request in a case and starts its workflow.
func (s *Server) createMeasure(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	var in struct {
		Plan measure.Plan `json:"plan"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPlan(ctx, &in.Plan); err != nil {
		s.fail(w, r, measure.Within("plan", err))
		return
	}
	c, err := s.readCase(r, "case")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if c.Org != a.Org {
		err := &authz.Denied{Rule: "need-to-know", Reason: "measures are opened in cases of one's own organisation"}
		s.refused(ctx, a, "", c.ID, "measure.create", "", err)
		s.fail(w, r, err)
		return
	}
	if err := s.Authz.Check(authz.OpEditDraft, a, authz.Facts{Requester: a.ID}, time.Now()); err != nil {
		s.refused(ctx, a, "", c.ID, "measure.create", "", err)
		s.fail(w, r, err)
		return
	}
	id := newID("m-")
	plan, _ := json.Marshal(in.Plan)
	facts, _ := json.Marshal(authz.Facts{Requester: a.ID})
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO measures (id, case_id, stage, version, requester_id, plan, facts)
			VALUES ($1, $2, $3, 1, $4, $5, $6)`, id, c.ID, measure.Draft, a.ID, plan, facts); err != nil {
			return err
		}
		return audit.Append(ctx, tx, workflows.ID(id)+"/0", &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "measure.created",
			Case: c.ID, Measure: id, Version: 1, To: string(measure.Draft),
		})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.startWorkflow(ctx, id, c.ID, a.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.loadMeasure(ctx, nil, id, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

// startWorkflow starts a measure's workflow, or finds the one already running. A closed one
// is never started again.
func (s *Server) startWorkflow(ctx context.Context, id, caseID, requester string) error {
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.ID(id),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.MeasureWorkflow, workflows.Input{Measure: id, Case: caseID, Requester: requester, Config: s.Workflow})
	if err != nil {
		return fmt.Errorf("start workflow of measure %s: %w", id, err)
	}
	return nil
}

// checkPlan checks a draft plan as it is saved: well-formed, bounded text, and executors who
// are users. What a submission needs besides is checked at submission.
func (s *Server) checkPlan(ctx context.Context, p *measure.Plan) error {
	if err := p.CheckInput(); err != nil {
		return err
	}
	return s.knownUsers(ctx, "executors", p.Executors)
}

// refuseEdit answers a draft edit refused before it reached the draft (bad input), auditing
// the refusal against the measure named in the path.
func (s *Server) refuseEdit(w http.ResponseWriter, r *http.Request, action string, err error) {
	if refusal(err) {
		id := r.PathValue("measure")
		if measure.CheckLine("measure", id, measure.MaxID) != nil {
			id = "" // not an ID we issued: the reason says what was refused
		}
		s.refused(r.Context(), actorOf(r), id, "", action, "", err)
	}
	s.fail(w, r, err)
}

// editDraft runs fn in a transaction holding the measure's row, after checking that the measure
// is a draft and the actor its requester. Refusals are audited.
func (s *Server) editDraft(r *http.Request, action string, fn func(tx pgx.Tx, m Measure) (map[string]any, error)) (Measure, error) {
	a := actorOf(r)
	ctx := r.Context()
	var m Measure
	var refusal error
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var err error
		m, err = s.loadMeasure(ctx, tx, r.PathValue("measure"), true)
		if errors.Is(err, pgx.ErrNoRows) {
			return &Error{Status: 404, Code: "not_found", Message: "no measure " + measure.Clip(r.PathValue("measure"), 64)}
		}
		if err != nil {
			return err
		}
		if err := s.reads().CanRead(a, m.subject()); err != nil {
			refusal = &Error{Status: 404, Code: "not_found", Rule: "need-to-know", Message: "no measure here for you"}
			return nil
		}
		if err := s.Authz.Check(authz.OpEditDraft, a, m.Facts, time.Now()); err != nil {
			refusal = err
			return nil
		}
		if m.Stage != measure.Draft {
			refusal = &Error{Status: 409, Code: "wrong_stage", Message: fmt.Sprintf("%s is only possible in stage DRAFT; the measure is %s", action, m.Stage)}
			return nil
		}
		details, err := fn(tx, m)
		if err != nil {
			return err
		}
		return audit.Append(ctx, tx, action+"/"+newID(""), &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: action,
			Case: m.Case, Measure: m.ID, Version: m.Version, Details: details,
		})
	})
	if err == nil && refusal != nil {
		s.refused(ctx, a, m.ID, m.Case, action, string(m.Stage), refusal)
		return m, refusal
	}
	return m, err
}

func (s *Server) putPlan(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	var plan measure.Plan
	if err := decode(r, &plan); err != nil {
		s.refuseEdit(w, r, "plan.updated", err)
		return
	}
	if err := s.checkPlan(r.Context(), &plan); err != nil {
		s.refuseEdit(w, r, "plan.updated", err)
		return
	}
	raw, _ := json.Marshal(plan)
	sum := sha256.Sum256(raw)
	_, err := s.editDraft(r, "plan.updated", func(tx pgx.Tx, m Measure) (map[string]any, error) {
		_, err := tx.Exec(r.Context(), `UPDATE measures SET plan = $2, updated_at = now() WHERE id = $1`, m.ID, raw)
		return map[string]any{"plan_sha256": hex.EncodeToString(sum[:])}, err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.getMeasure(w, r)
}

func (s *Server) addTargets(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSON)
	var in struct {
		Targets []measure.Target `json:"targets"`
	}
	if err := decode(r, &in); err != nil {
		s.refuseEdit(w, r, "targets.added", err)
		return
	}
	if err := measure.ValidateTargets(in.Targets); err != nil {
		s.refuseEdit(w, r, "targets.added", err)
		return
	}
	_, err := s.editDraft(r, "targets.added", func(tx pgx.Tx, m Measure) (map[string]any, error) {
		ctx := r.Context()
		var seq int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max(seq), 0) FROM targets WHERE measure_id = $1 AND version = $2`, m.ID, m.Version).Scan(&seq); err != nil {
			return nil, err
		}
		h := sha256.New()
		rows := make([][]any, len(in.Targets))
		for i, t := range in.Targets {
			var port any
			if t.Port != 0 {
				port = t.Port
			}
			rows[i] = []any{m.ID, m.Version, seq + i + 1, t.Kind, t.Value, port, t.Location, t.Country, t.Role, t.Ownership, t.HostingProvider, t.Registrar}
			line, _ := json.Marshal(t)
			h.Write(line)
			h.Write([]byte{'\n'})
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"targets"},
			[]string{"measure_id", "version", "seq", "kind", "value", "port", "location", "country", "role", "ownership", "hosting_provider", "registrar"},
			pgx.CopyFromRows(rows))
		return map[string]any{"count": len(rows), "first_seq": seq + 1, "sha256": hex.EncodeToString(h.Sum(nil))}, err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.getMeasure(w, r)
}

func (s *Server) listTargets(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	m, err := s.readMeasure(r, "targets")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := m.ID
	version, _ := strconv.Atoi(r.URL.Query().Get("version"))
	rows, err := s.DB.Query(ctx, `SELECT kind, value, COALESCE(port, 0), location, country, role, ownership, hosting_provider, registrar
		FROM targets WHERE measure_id = $1 AND version = COALESCE(NULLIF($2, 0), (SELECT version FROM measures WHERE id = $1)) ORDER BY seq`, id, version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (measure.Target, error) {
		var t measure.Target
		err := row.Scan(&t.Kind, &t.Value, &t.Port, &t.Location, &t.Country, &t.Role, &t.Ownership, &t.HostingProvider, &t.Registrar)
		return t, err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"targets": orEmptyTargets(ts)})
}

func orEmptyTargets(ts []measure.Target) []measure.Target {
	if ts == nil {
		return []measure.Target{}
	}
	return ts
}

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

var (
	provenances = []string{"own_investigation", "partner_report", "victim_report", "communications_information", "osint"}
	tlps        = []string{"clear", "green", "amber", "amber+strict", "red"}
)

// addEvidence stores an uploaded file, content-addressed, with its metadata from the query.
func (s *Server) addEvidence(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e := Evidence{ID: newID("e-"), Filename: q.Get("filename"), Kind: q.Get("kind"), Provenance: q.Get("provenance"),
		LegalBasis: q.Get("legal_basis"), Acquirer: q.Get("acquirer"), Tool: q.Get("tool"), TLP: q.Get("tlp")}
	if e.TLP == "" {
		e.TLP = "amber"
	}
	for _, f := range []struct{ name, value string }{{"filename", e.Filename}, {"kind", e.Kind}, {"provenance", e.Provenance},
		{"legal_basis", e.LegalBasis}, {"acquirer", e.Acquirer}, {"tool", e.Tool}, {"tlp", e.TLP}} {
		if fe := measure.CheckLine(f.name, f.value, measure.MaxLine); fe != nil {
			s.refuseEdit(w, r, "evidence.added", fe)
			return
		}
	}
	switch {
	case e.Filename == "":
		s.refuseEdit(w, r, "evidence.added", &measure.FieldError{Field: "filename", Message: "is required"})
		return
	case e.Kind == "":
		s.refuseEdit(w, r, "evidence.added", &measure.FieldError{Field: "kind", Message: "is required (for example pcap, malware_sample, log, report)"})
		return
	case !slices.Contains(provenances, e.Provenance):
		s.refuseEdit(w, r, "evidence.added", &measure.FieldError{Field: "provenance", Message: fmt.Sprintf("must be one of %v", provenances)})
		return
	case e.Provenance == "communications_information" && e.LegalBasis == "":
		s.refuseEdit(w, r, "evidence.added", &measure.FieldError{Field: "legal_basis", Message: "must name the approval under which communications information was acquired"})
		return
	case !slices.Contains(tlps, e.TLP):
		s.refuseEdit(w, r, "evidence.added", &measure.FieldError{Field: "tlp", Message: fmt.Sprintf("must be one of %v", tlps)})
		return
	}
	if v := q.Get("acquired_at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			s.refuseEdit(w, r, "evidence.added", &measure.FieldError{Field: "acquired_at", Message: "must be an RFC 3339 time"})
			return
		}
		e.AcquiredAt = &t
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxEvidence))
	if err != nil {
		s.refuseEdit(w, r, "evidence.added", err)
		return
	}
	if len(body) == 0 {
		s.refuseEdit(w, r, "evidence.added", &measure.FieldError{Field: "body", Message: "the evidence file is empty"})
		return
	}
	sum := sha256.Sum256(body)
	e.SHA256, e.Size, e.AddedBy = hex.EncodeToString(sum[:]), int64(len(body)), actorOf(r).ID
	_, err = s.editDraft(r, "evidence.added", func(tx pgx.Tx, m Measure) (map[string]any, error) {
		ctx := r.Context()
		if _, err := tx.Exec(ctx, `INSERT INTO evidence_blobs (sha256, size, content) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			e.SHA256, e.Size, body); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO evidence (id, measure_id, version, sha256, filename, kind, provenance, legal_basis, acquirer, tool, acquired_at, tlp, added_by)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`, e.ID, m.ID, m.Version, e.SHA256, e.Filename, e.Kind, e.Provenance,
			e.LegalBasis, e.Acquirer, e.Tool, e.AcquiredAt, e.TLP, e.AddedBy); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO custody_events (id, evidence_id, event, actor_id) VALUES ($1, $2, 'collected', $3)`,
			newID("ce-"), e.ID, e.AddedBy); err != nil {
			return nil, err
		}
		return map[string]any{"evidence": e.ID, "sha256": e.SHA256, "size": e.Size, "provenance": e.Provenance, "tlp": e.TLP}, nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, e)
}

func (s *Server) listEvidence(w http.ResponseWriter, r *http.Request) {
	if _, err := s.readMeasure(r, "evidence"); err != nil {
		s.fail(w, r, err)
		return
	}
	rows, err := s.DB.Query(r.Context(), `SELECT e.id, e.sha256, b.size, e.filename, e.kind, e.provenance, e.legal_basis, e.acquirer, e.tool, e.acquired_at, e.tlp, e.added_by
		FROM evidence e JOIN evidence_blobs b USING (sha256) JOIN measures m ON m.id = e.measure_id AND m.version = e.version
		WHERE e.measure_id = $1 ORDER BY e.added_at`, r.PathValue("measure"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Evidence, error) {
		var e Evidence
		err := row.Scan(&e.ID, &e.SHA256, &e.Size, &e.Filename, &e.Kind, &e.Provenance, &e.LegalBasis, &e.Acquirer, &e.Tool, &e.AcquiredAt, &e.TLP, &e.AddedBy)
		return e, err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if out == nil {
		out = []Evidence{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"evidence": out})
}

// getEvidence returns an evidence file; every access is a custody event and an audit entry.
func (s *Server) getEvidence(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ctx := r.Context()
	sha := r.PathValue("sha256")
	// The file is readable if one of the measures holding it is.
	rows, err := s.DB.Query(ctx, `SELECT DISTINCT measure_id FROM evidence WHERE sha256 = $1`, sha)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	holders, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	readable := false
	for _, id := range holders {
		m, err := s.loadMeasure(ctx, nil, id, false)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if s.reads().CanRead(a, m.subject()) == nil {
			readable = true
			break
		}
	}
	if !readable {
		if len(holders) > 0 {
			s.refused(ctx, a, "", "", "evidence.access", "", &authz.Denied{Rule: "need-to-know", Reason: "no measure holding " + sha + " is readable"})
		}
		s.fail(w, r, &Error{Status: 404, Code: "not_found", Message: "no evidence with sha256 " + measure.Clip(sha, 64)})
		return
	}
	var content []byte
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var evID, measureID string
		if err := tx.QueryRow(ctx, `SELECT e.id, e.measure_id, b.content FROM evidence e JOIN evidence_blobs b USING (sha256)
			WHERE e.sha256 = $1 ORDER BY e.added_at LIMIT 1`, sha).Scan(&evID, &measureID, &content); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO custody_events (id, evidence_id, event, actor_id) VALUES ($1, $2, 'accessed', $3)`,
			newID("ce-"), evID, a.ID); err != nil {
			return err
		}
		return audit.Append(ctx, tx, "evidence.accessed/"+newID(""), &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "evidence.accessed", Measure: measureID,
			Details: map[string]any{"evidence": evID, "sha256": sha},
		})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		s.fail(w, r, &Error{Status: 404, Code: "not_found", Message: "no evidence with sha256 " + sha})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(content)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	if _, err := s.readMeasure(r, "history"); err != nil {
		s.fail(w, r, err)
		return
	}
	recs, err := audit.Entries(r.Context(), s.DB, r.PathValue("measure"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": recs})
}
