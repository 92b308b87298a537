package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/workflows"
)

// Measure is a measure request as the doors show it.
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

// Subject is the measure as the need-to-know rule sees it: the one source of the facts reads
// are authorized on.
func (m Measure) Subject() authz.Subject {
	return authz.Subject{Org: m.Org, BeforeCommission: m.BeforeCommission, NamedExecutors: m.Facts.NamedExecutors}
}

func (m Measure) on() On { return On{Measure: m.ID, Case: m.Case, Stage: string(m.Stage)} }

// wellFormedID reports whether id could be one we issued (text of at most MaxID bytes without
// control characters): anything else is not found, never a database error.
func wellFormedID(id string) bool {
	return measure.CheckLine("id", id, measure.MaxID) == nil
}

// load reads a measure; with tx, it holds the measure's row until tx ends.
func (s *Service) load(ctx context.Context, tx pgx.Tx, id string) (Measure, error) {
	var m Measure
	if !wellFormedID(id) {
		return m, pgx.ErrNoRows // no ID we issue: nothing to ask the database
	}
	var plan, facts, approval []byte
	// A sealed version's targets are counted as sealed: counting 700,000 rows at every read
	// of a botnet's measure cost more than the action read for.
	sql := `SELECT m.id, m.case_id, m.stage, m.version, m.digest, m.requester_id, m.plan, m.facts, m.approval, m.created_at, m.updated_at,
		COALESCE((SELECT (v.body->'sealed'->>'targets')::int FROM measure_versions v WHERE v.measure_id = m.id AND v.version = m.version),
			(SELECT count(*) FROM targets t WHERE t.measure_id = m.id AND t.version = m.version)),
		(SELECT count(*) FROM evidence e WHERE e.measure_id = m.id AND e.version = m.version),
		c.org_id, EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id)
		FROM measures m JOIN cases c ON c.id = m.case_id WHERE m.id = $1`
	var row pgx.Row
	if tx != nil {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM measures WHERE id = $1 FOR UPDATE`, id).Scan(&one); err != nil {
			return m, err
		}
		row = tx.QueryRow(ctx, sql, id)
	} else {
		row = s.DB.QueryRow(ctx, sql, id)
	}
	err := row.Scan(&m.ID, &m.Case, &m.Stage, &m.Version, &m.Digest, &m.Requester, &plan, &facts, &approval,
		&m.CreatedAt, &m.UpdatedAt, &m.Targets, &m.Evidence, &m.Org, &m.BeforeCommission)
	if err != nil {
		return m, err
	}
	var q querier = s.DB
	if tx != nil {
		q = tx
	}
	if err := s.holdMeasures(ctx, q, []string{m.ID}, []*string{&m.Case}, []*string{&m.Org}); err != nil {
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

// find loads a measure for the actor: one they may not read is not found, and the refusal is
// audited as an attempt at action.
func (s *Service) find(ctx context.Context, tx pgx.Tx, a authz.Actor, id, action string) (Measure, error) {
	m, err := s.load(ctx, tx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		// Audited as a hidden one is, and its creation record looked for as a found one's is,
		// so that the two answers cost alike.
		var c, o string
		var q querier = s.DB
		if tx != nil {
			q = tx
		}
		if err := s.holdMeasures(ctx, q, []string{id}, []*string{&c}, []*string{&o}); err != nil {
			return m, err
		}
		nf := refusal.New(refusal.NotFound, "no measure %s", measure.Clip(id, 64))
		s.Refused(ctx, a, On{}, action, nf)
		return m, nf
	}
	if err != nil {
		return m, fmt.Errorf("read measure: %w", err)
	}
	if err := s.reads().CanRead(a, m.Subject()); err != nil {
		// Who may not read a measure may not act on it, and learns nothing of it: the answer
		// is the one for a measure that does not exist.
		s.Refused(ctx, a, m.on(), action, err)
		return m, refusal.Hidden("measure", id)
	}
	return m, nil
}

// Measure returns a measure the actor may read.
func (s *Service) Measure(ctx context.Context, a authz.Actor, id string) (Measure, error) {
	return s.readMeasure(ctx, a, id, "measure")
}

// readMeasure loads a measure for a read of what (measure, targets, evidence, history), if the
// actor may read it. An auditor's read is audited.
func (s *Service) readMeasure(ctx context.Context, a authz.Actor, id, what string) (Measure, error) {
	m, err := s.find(ctx, nil, a, id, "read."+what)
	if err != nil {
		return m, err
	}
	return m, s.auditRead(ctx, a, what, On{Measure: m.ID, Case: m.Case})
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
	// RequesterName and OrgName name the requester and the requesting agency in words.
	RequesterName string `json:"requester_name,omitempty"`
	OrgName       string `json:"org_name,omitempty"`
}

// measureReadable is the need-to-know rule as a query over measures m of cases c, with the
// named arguments readable gives: the one SQL form of authz.ReadScope for measures.
const measureReadable = `(@all OR (@org <> '' AND c.org_id = @org)
	OR (@executor <> '' AND COALESCE(m.facts->'named_executors', '[]') ? @executor)
	OR (@commission AND EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id)))`

// readable is a read scope as the named arguments of measureReadable.
func readable(sc authz.ReadScope) pgx.NamedArgs {
	return pgx.NamedArgs{"all": sc.All, "org": sc.Org, "executor": sc.Executor, "commission": sc.Commission}
}

// measureSearch is the search part of a measure list's WHERE (m: measures, c: its case); its
// arguments are named find_*, apart from measureReadable's.
const measureSearch = `(@find_org = '' OR c.org_id = @find_org)
	AND (@find_requester = '' OR m.requester_id = @find_requester OR EXISTS (SELECT 1 FROM users u WHERE u.id = m.requester_id AND u.username = @find_requester))
	AND (@find_target = '' OR EXISTS (SELECT 1 FROM targets t WHERE t.measure_id = m.id AND t.version = m.version AND t.value LIKE @find_target))
	AND (@find_country = '' OR EXISTS (SELECT 1 FROM targets t WHERE t.measure_id = m.id AND t.version = m.version AND t.country = @find_country))
	AND (@find_emergency::boolean IS NULL OR @find_emergency::boolean = EXISTS (SELECT 1 FROM stage_history h WHERE h.measure_id = m.id AND h.stage = 'EMERGENCY_EXECUTING'))
	AND (@find_from::timestamptz IS NULL OR m.created_at >= @find_from::timestamptz) AND (@find_to::timestamptz IS NULL OR m.created_at < @find_to::timestamptz)`

// MeasureFilter narrows a measure list. Every field is optional.
type MeasureFilter struct {
	Stage, Case string
	Org         string // the requesting agency (organisation ID)
	Requester   string // user ID or username
	Target      string // a target value of the current version starts with this
	Country     string // a target of the current version is in this country (ISO 3166 alpha-2)
	Emergency   *bool  // taken on the emergency path, or not
	// From and To bound when the measure was opened: From <= created < To.
	From, To *time.Time
	Page
}

// MeasureFilterOf reads a filter from a query (stage, case, org, requester, target, country,
// emergency=true|false, from and to as dates (JST) or RFC 3339 times, limit, offset): the one
// reading of a search, for every door.
func MeasureFilterOf(q url.Values) (MeasureFilter, error) {
	f := MeasureFilter{Stage: q.Get("stage"), Case: q.Get("case"), Org: q.Get("org"), Requester: q.Get("requester"),
		Target: strings.TrimSpace(q.Get("target")), Country: strings.ToUpper(strings.TrimSpace(q.Get("country")))}
	switch q.Get("emergency") {
	case "":
	case "true", "yes":
		f.Emergency = new(true)
	case "false", "no":
		f.Emergency = new(false)
	default:
		return f, &measure.FieldError{Field: "emergency", Message: "must be true or false"}
	}
	for _, d := range []struct {
		name string
		to   **time.Time
		end  bool
	}{{"from", &f.From, false}, {"to", &f.To, true}} {
		v := strings.TrimSpace(q.Get(d.name))
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			day, err2 := time.ParseInLocation(time.DateOnly, v, JST)
			if err2 != nil {
				return f, &measure.FieldError{Field: d.name, Message: "must be a date (2026-10-01) or an RFC 3339 time"}
			}
			if t = day; d.end {
				t = day.AddDate(0, 0, 1) // a "to" date includes its day
			}
		}
		*d.to = &t
	}
	for _, k := range []string{"limit", "offset"} {
		if v := q.Get(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return f, &measure.FieldError{Field: k, Message: "must be a number"}
			}
			if k == "limit" {
				f.Limit = n
				if n == 0 {
					f.Limit = -1 // an explicit 0 is out of range, not the default
				}
			} else {
				f.Offset = n
			}
		}
	}
	return f, nil
}

// JST is Japan Standard Time: dates people type and read are days in it.
var JST = time.FixedZone("JST", 9*60*60)

// likePrefix is s as a LIKE pattern matching what starts with it.
func likePrefix(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

// Measures lists the measures the actor may read, most recently changed first, a page at a
// time. The query keeps to the need-to-know scope; each row is checked against the scope too.
func (s *Service) Measures(ctx context.Context, a authz.Actor, f MeasureFilter) ([]MeasureSummary, error) {
	out, err := s.measures(ctx, a, f)
	if err == nil && len(out) > 0 {
		err = s.auditRead(ctx, a, "measures", On{})
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// measures lists what Measures lists, without recording the read (a caller that records its
// own read uses it).
func (s *Service) measures(ctx context.Context, a authz.Actor, f MeasureFilter) ([]MeasureSummary, error) {
	if err := f.Page.Check(); err != nil {
		return nil, err
	}
	if fe := measure.CheckLine("stage", f.Stage, measure.MaxLine); fe != nil {
		return nil, fe
	}
	for _, c := range []struct{ name, v string }{{"case", f.Case}, {"org", f.Org}, {"requester", f.Requester}, {"country", f.Country}} {
		if fe := measure.CheckLine(c.name, c.v, measure.MaxLine); fe != nil {
			return nil, fe
		}
	}
	if fe := measure.CheckQuery("target", f.Target, measure.MaxTargetValue); fe != nil {
		return nil, fe
	}
	sc := s.reads().Scope(a)
	args := readable(sc)
	args["stage"], args["case"], args["limit"], args["offset"] = f.Stage, f.Case, f.Limit, f.Offset
	// Search arguments are named apart from the read scope's: a search never widens it.
	args["find_org"], args["find_requester"], args["find_country"], args["find_target"] = f.Org, f.Requester, f.Country, ""
	if f.Target != "" {
		args["find_target"] = likePrefix(measure.ASCIISearch(f.Target))
	}
	args["find_emergency"], args["find_from"], args["find_to"] = f.Emergency, f.From, f.To
	rows, err := s.DB.Query(ctx, `SELECT m.id, m.case_id, c.org_id, COALESCE(m.plan->>'title', ''), m.stage, m.version, m.digest,
			m.requester_id, m.updated_at, EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id),
			COALESCE(ARRAY(SELECT jsonb_array_elements_text(COALESCE(m.facts->'named_executors', '[]'))), '{}'),
			COALESCE((SELECT u.display_name FROM users u WHERE u.id = m.requester_id), ''),
			COALESCE((SELECT o.name FROM organisations o WHERE o.id = c.org_id), '')
		FROM measures m JOIN cases c ON c.id = m.case_id
		WHERE (@stage = '' OR m.stage = @stage) AND (@case = '' OR m.case_id = @case) AND `+measureReadable+` AND `+measureSearch+`
		ORDER BY m.updated_at DESC, m.id LIMIT @limit OFFSET @offset`, args)
	if err != nil {
		return nil, fmt.Errorf("list measures: %w", err)
	}
	defer rows.Close()
	var all []MeasureSummary
	var subjs []authz.Subject
	for rows.Next() {
		var m MeasureSummary
		var subj authz.Subject
		if err := rows.Scan(&m.ID, &m.Case, &m.Org, &m.Title, &m.Stage, &m.Version, &m.Digest, &m.Requester, &m.UpdatedAt,
			&subj.BeforeCommission, &subj.NamedExecutors, &m.RequesterName, &m.OrgName); err != nil {
			return nil, fmt.Errorf("list measures: %w", err)
		}
		all, subjs = append(all, m), append(subjs, subj)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list measures: %w", err)
	}
	rows.Close()
	// Each row's organisation as its case's creation record says (a case moved in SQL).
	ids, cases, orgs := make([]string, len(all)), make([]*string, len(all)), make([]*string, len(all))
	inTable := make([]string, len(all))
	for i := range all {
		ids[i], cases[i], orgs[i], inTable[i] = all[i].ID, &all[i].Case, &all[i].Org, all[i].Org
	}
	if err := s.holdMeasures(ctx, s.DB, ids, cases, orgs); err != nil {
		return nil, err
	}
	out := []MeasureSummary{}
	for i, m := range all {
		subjs[i].Org = m.Org
		if !sc.Allows(subjs[i]) {
			if m.Org == inTable[i] {
				s.Log.ErrorContext(ctx, "the measure list's query and the need-to-know rule disagree", "measure", m.ID, "actor", a.ID)
			}
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// CreateMeasure opens a draft measure request in a case and starts its workflow.
func (s *Service) CreateMeasure(ctx context.Context, a authz.Actor, caseID string, plan measure.Plan) (Measure, error) {
	if err := s.checkPlan(ctx, &plan); err != nil {
		return Measure{}, s.refuse(ctx, a, On{Case: caseID}, "measure.create", measure.Within("plan", err))
	}
	c, err := s.readCase(ctx, a, caseID, "case")
	if err != nil {
		return Measure{}, err
	}
	if c.Org != a.Org {
		return Measure{}, s.refuse(ctx, a, On{Case: c.ID}, "measure.create",
			&authz.Denied{Rule: "need-to-know", Reason: "measures are opened in cases of one's own organisation"})
	}
	if err := s.Authz.Check(authz.OpEditDraft, a, authz.Facts{Requester: a.ID}, time.Now()); err != nil {
		return Measure{}, s.refuse(ctx, a, On{Case: c.ID}, "measure.create", err)
	}
	id := NewID("m-")
	rawPlan, _ := json.Marshal(plan)
	facts, _ := json.Marshal(authz.Facts{Requester: a.ID})
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO measures (id, case_id, stage, version, requester_id, plan, facts)
			VALUES ($1, $2, $3, 1, $4, $5, $6)`, id, c.ID, measure.Draft, a.ID, rawPlan, facts); err != nil {
			return err
		}
		return s.append(ctx, tx, a, workflows.ID(id)+"/0", &audit.Record{Action: "measure.created",
			Case: c.ID, Measure: id, Version: 1, To: string(measure.Draft)})
	})
	if err != nil {
		return Measure{}, fmt.Errorf("open measure: %w", err)
	}
	if err := s.startWorkflow(ctx, id, c.ID, c.Org, a.ID); err != nil {
		return Measure{}, err
	}
	return s.load(ctx, nil, id)
}

// startWorkflow starts a measure's workflow, or finds the one already running. A closed one
// is never started again.
func (s *Service) startWorkflow(ctx context.Context, id, caseID, org, requester string) error {
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.ID(id),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.MeasureWorkflow, workflows.Input{Measure: id, Case: caseID, Org: org, Requester: requester, Config: s.Workflow})
	if err != nil {
		return fmt.Errorf("start workflow of measure %s: %w", id, err)
	}
	return nil
}

// checkPlan checks a draft plan as it is saved: well-formed, bounded text, and executors who
// are users. What a submission needs besides is checked at submission.
func (s *Service) checkPlan(ctx context.Context, p *measure.Plan) error {
	if err := p.CheckInput(); err != nil {
		return err
	}
	return s.knownUsers(ctx, "executors", p.Executors)
}

// editDraft runs fn in a transaction holding the measure's row, after checking that the measure
// is a draft the actor may edit, and appends the audit record fn describes. Refusals are
// audited.
func (s *Service) editDraft(ctx context.Context, a authz.Actor, id, action string, fn func(tx pgx.Tx, m Measure) (map[string]any, error)) (Measure, error) {
	var m Measure
	var refused error
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var err error
		if m, err = s.find(ctx, tx, a, id, action); err != nil {
			return err
		}
		if err := s.Authz.Check(authz.OpEditDraft, a, m.Facts, time.Now()); err != nil {
			refused = err
			return nil
		}
		if m.Stage != measure.Draft {
			refused = refusal.New(refusal.WrongStage, "%s is only possible in stage %s; the measure is %s", action, measure.Draft, m.Stage)
			return nil
		}
		details, err := fn(tx, m)
		if err != nil {
			return err
		}
		return s.append(ctx, tx, a, action+"/"+NewID(""), &audit.Record{Action: action,
			Case: m.Case, Measure: m.ID, Version: m.Version, Details: details})
	})
	if err == nil && refused != nil {
		return m, s.refuse(ctx, a, m.on(), action, refused)
	}
	if err != nil && !refusal.Is(err) {
		err = fmt.Errorf("%s: %w", action, err)
	}
	return m, err
}

// PutPlan replaces a draft's plan.
func (s *Service) PutPlan(ctx context.Context, a authz.Actor, id string, plan measure.Plan) (Measure, error) {
	if err := s.checkPlan(ctx, &plan); err != nil {
		return Measure{}, s.refuse(ctx, a, On{Measure: id}, "plan.updated", err)
	}
	raw, _ := json.Marshal(plan)
	sum := sha256.Sum256(raw)
	if _, err := s.editDraft(ctx, a, id, "plan.updated", func(tx pgx.Tx, m Measure) (map[string]any, error) {
		_, err := tx.Exec(ctx, `UPDATE measures SET plan = $2, updated_at = now() WHERE id = $1`, m.ID, raw)
		return map[string]any{"plan_sha256": hex.EncodeToString(sum[:])}, err
	}); err != nil {
		return Measure{}, err
	}
	return s.load(ctx, nil, id)
}

// AddTargets appends targets to a draft.
func (s *Service) AddTargets(ctx context.Context, a authz.Actor, id string, targets []measure.Target) (Measure, error) {
	if err := measure.ValidateTargets(targets); err != nil {
		return Measure{}, s.refuse(ctx, a, On{Measure: id}, "targets.added", err)
	}
	_, err := s.editDraft(ctx, a, id, "targets.added", func(tx pgx.Tx, m Measure) (map[string]any, error) {
		return s.insertTargets(ctx, tx, m, targets)
	})
	if err != nil {
		return Measure{}, err
	}
	return s.load(ctx, nil, id)
}

// MaxRemove bounds the targets one removal names.
const MaxRemove = 10000

// RemoveTargets takes targets out of a draft by their values; a value the draft does not hold
// is refused, naming it, and nothing is removed.
func (s *Service) RemoveTargets(ctx context.Context, a authz.Actor, id string, values []string) (Measure, error) {
	check := func() error {
		if len(values) == 0 {
			return &measure.FieldError{Field: "values", Message: "must name at least one target"}
		}
		if len(values) > MaxRemove {
			return &measure.FieldError{Field: "values", Message: fmt.Sprintf("names %d targets, over the limit of %d per call", len(values), MaxRemove)}
		}
		for i, v := range values {
			if fe := measure.CheckLine(fmt.Sprintf("values[%d]", i), v, measure.MaxTargetValue); fe != nil {
				return fe
			}
			values[i] = measure.NormalValue(v) // as typed when added: 例え.jp is held as xn--r8jz45g.jp
		}
		return nil
	}
	if err := check(); err != nil {
		return Measure{}, s.refuse(ctx, a, On{Measure: id}, "targets.removed", err)
	}
	_, err := s.editDraft(ctx, a, id, "targets.removed", func(tx pgx.Tx, m Measure) (map[string]any, error) {
		var missing []string
		if err := tx.QueryRow(ctx, `SELECT COALESCE(array_agg(v ORDER BY v), '{}') FROM unnest($3::text[]) v
			WHERE NOT EXISTS (SELECT 1 FROM targets t WHERE t.measure_id = $1 AND t.version = $2 AND t.value = v)`,
			m.ID, m.Version, values).Scan(&missing); err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			return nil, &measure.FieldError{Field: "values", Message: fmt.Sprintf("the draft holds no target %s", measure.Clip(strings.Join(missing, ", "), 200))}
		}
		gone, err := tx.Query(ctx, `DELETE FROM targets WHERE measure_id = $1 AND version = $2 AND value = ANY($3)
			RETURNING `+measure.TargetColumns, m.ID, m.Version, values)
		if err != nil {
			return nil, err
		}
		var removed measure.TargetSum
		var count int64
		for gone.Next() {
			t, err := measure.ScanTarget(gone)
			if err != nil {
				gone.Close()
				return nil, err
			}
			removed.Add(t)
			count++
		}
		if err := gone.Err(); err != nil {
			return nil, err
		}
		h := sha256.New()
		for _, v := range values {
			h.Write([]byte(v))
			h.Write([]byte{'\n'})
		}
		d := map[string]any{"count": count, "sha256": hex.EncodeToString(h.Sum(nil)), "targets_sum_removed": removed.String()}
		if len(values) <= 100 {
			d["values"] = values
		}
		return d, nil
	})
	if fe := (*measure.FieldError)(nil); errors.As(err, &fe) {
		return Measure{}, s.refuse(ctx, a, On{Measure: id}, "targets.removed", err)
	}
	if err != nil {
		return Measure{}, err
	}
	return s.load(ctx, nil, id)
}

// Targets returns a version's targets (0: the current version).
func (s *Service) Targets(ctx context.Context, a authz.Actor, id string, version int) ([]measure.Target, error) {
	m, err := s.readMeasure(ctx, a, id, "targets")
	if err != nil {
		return nil, err
	}
	rows, err := s.DB.Query(ctx, `SELECT `+measure.TargetColumns+`
		FROM targets WHERE measure_id = $1 AND version = COALESCE(NULLIF($2, 0), $3) ORDER BY seq`, m.ID, version, m.Version)
	if err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanTarget)
	if err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	if ts == nil {
		ts = []measure.Target{}
	}
	return ts, nil
}

// History returns a measure's audit records in the order they were appended.
func (s *Service) History(ctx context.Context, a authz.Actor, id string) ([]audit.Entry, error) {
	m, err := s.readMeasure(ctx, a, id, "history")
	if err != nil {
		return nil, err
	}
	return s.historyOf(ctx, m)
}

func (s *Service) historyOf(ctx context.Context, m Measure) ([]audit.Entry, error) {
	recs, err := s.Audit.Entries(ctx, s.DB, m.ID)
	if err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []audit.Entry{}
	}
	return recs, nil
}

// TargetQuery selects a page of a version's targets: those whose value contains Search (all
// when empty), in their order.
type TargetQuery struct {
	Version int // 0: the current version
	Search  string
	Page
	// ChangesFrom is the earlier version a dossier's changes are shown against (0: Diff's default).
	ChangesFrom int
	// Steps picks the page of execution steps a dossier shows.
	Steps StepQuery
}

// TargetPage returns a page of a version's targets and how many match in all.
func (s *Service) TargetPage(ctx context.Context, a authz.Actor, id string, q TargetQuery) ([]measure.Target, int, error) {
	m, err := s.readMeasure(ctx, a, id, "targets")
	if err != nil {
		return nil, 0, err
	}
	return s.targetPage(ctx, m, q)
}

func (s *Service) targetPage(ctx context.Context, m Measure, q TargetQuery) ([]measure.Target, int, error) {
	if fe := measure.CheckQuery("q", q.Search, measure.MaxTargetValue); fe != nil {
		return nil, 0, fe
	}
	if err := q.Page.Check(); err != nil {
		return nil, 0, err
	}
	// Targets are held as A-labels: a name searched for in Unicode is searched for as stored.
	args := pgx.NamedArgs{"m": m.ID, "v": q.Version, "cur": m.Version, "q": measure.ASCIISearch(q.Search), "limit": q.Limit, "offset": q.Offset}
	const where = `measure_id = @m AND version = COALESCE(NULLIF(@v::int, 0), @cur) AND (@q = '' OR strpos(lower(value), lower(@q)) > 0)`
	n := m.Targets // counted when the measure was read; a search or another version counts again
	if q.Search != "" || (q.Version != 0 && q.Version != m.Version) {
		if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM targets WHERE `+where, args).Scan(&n); err != nil {
			return nil, 0, fmt.Errorf("count targets: %w", err)
		}
	}
	rows, err := s.DB.Query(ctx, `SELECT `+measure.TargetColumns+`
		FROM targets WHERE `+where+` ORDER BY seq LIMIT @limit OFFSET @offset`, args)
	if err != nil {
		return nil, 0, fmt.Errorf("read targets: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanTarget)
	if err != nil {
		return nil, 0, fmt.Errorf("read targets: %w", err)
	}
	if ts == nil {
		ts = []measure.Target{}
	}
	return ts, n, nil
}
