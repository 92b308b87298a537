// Package activities holds every side effect of a measure's workflow. Each activity writes the
// new domain state and its audit entry in one PostgreSQL transaction and is idempotent on the
// change's key: a retried activity finds its audit entry and does nothing more.
package activities

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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// Activities holds what the activities share.
type Activities struct {
	DB *pgxpool.Pool
	// Audit authenticates the audit entries the activities write.
	Audit *audit.Appender

	seals sealCache
}

// Record persists one transition of a measure: the domain rows the change adds, the measure's
// new stage and facts, and the audit entry, in one transaction.
func (a *Activities) Record(ctx context.Context, ch Change) (Result, error) {
	var res Result
	err := pgx.BeginFunc(ctx, a.DB, func(tx pgx.Tx) error {
		var stage string
		if err := tx.QueryRow(ctx, `SELECT stage FROM measures WHERE id = $1 FOR UPDATE`, ch.Measure).Scan(&stage); err != nil {
			return fmt.Errorf("lock measure %s: %w", ch.Measure, err)
		}
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_entries WHERE id = $1)`, audit.EntryID(ch.Key)).Scan(&done); err != nil {
			return fmt.Errorf("look up change %s: %w", ch.Key, err)
		}
		if done {
			// Already committed by an earlier attempt: answer as that attempt did.
			if ch.Action.Op == authz.OpSubmit || ch.Action.Op == authz.OpDeclareEmergency {
				s, err := loadSealed(ctx, tx, ch.Measure, ch.Version)
				res.Sealed = s
				return err
			}
			return nil
		}
		if stage != string(ch.From) {
			return fmt.Errorf("measure %s is in stage %s, change %s expected %s", ch.Measure, stage, ch.Key, ch.From)
		}
		// Nothing is recorded that the log cannot sign: a halt recorded after the service's own
		// check is seen here, in the transaction that would write the entry.
		problems, err := audit.Blocked(ctx, tx)
		if err != nil {
			return err
		}
		if len(problems) > 0 {
			return &haltedErr{problems[0]}
		}
		if err := checkPolicyInForce(ctx, tx, ch.Action); err != nil {
			return err
		}
		if ch.Action.Batch != nil {
			steps, err := stagedSteps(ctx, tx, ch.Measure, ch.Action.Batch)
			if err != nil {
				return err
			}
			ch.Action.Steps = steps
		}
		details, err := a.apply(ctx, tx, ch, &res)
		if err != nil {
			return err
		}
		if res.Sealed != nil {
			// The sealed version names the executors and says whether a target is foreign: the
			// facts the API authorizes execution with must say so from this change on.
			ch.Facts.NamedExecutors, ch.Facts.Foreign = res.Sealed.Executors, res.Sealed.Foreign
		}
		version, digest := ch.Version, ch.Digest
		if res.Sealed != nil {
			digest = res.Sealed.Digest
		}
		if ch.NewVersion != 0 {
			version, digest = ch.NewVersion, ""
		}
		facts, _ := json.Marshal(ch.Facts)
		var approval []byte
		if ch.Approval != nil {
			approval, _ = json.Marshal(ch.Approval)
		}
		if _, err := tx.Exec(ctx, `UPDATE measures SET stage = $2, version = $3, digest = $4, facts = $5,
			approval = COALESCE($6, approval), updated_at = now() WHERE id = $1`,
			ch.Measure, ch.To, version, digest, facts, approval); err != nil {
			return fmt.Errorf("update measure %s: %w", ch.Measure, err)
		}
		rec := &audit.Record{
			Actor:  auditActor(ch.Action.Actor),
			Action: ch.Kind, Case: ch.Case, Measure: ch.Measure, Version: ch.Version,
			From: string(ch.From), To: string(ch.To), Reason: ch.Action.Reason, Details: details,
			PolicyVersion: ch.Action.PolicyVersion,
		}
		return a.Audit.Append(ctx, tx, ch.Key, rec)
	})
	var oos *outOfScope
	if errors.As(err, &oos) {
		return res, a.refuse(ctx, ch, &authz.Denied{Rule: "scope", Reason: oos.Error()}, nil)
	}
	var pc *policyChanged
	if errors.As(err, &pc) {
		return res, a.refuse(ctx, ch, &authz.Denied{Rule: "policy", Reason: pc.Error()}, nil)
	}
	var he *haltedErr
	if errors.As(err, &he) {
		if ch.Action.Actor.ID == authz.System.ID {
			// The workflow's own change (a deadline, a decision) waits for the halt to clear.
			return res, fmt.Errorf("record %s of measure %s: %w", ch.Kind, ch.Measure, err)
		}
		return res, temporal.NewNonRetryableApplicationError(he.Error(), refusal.TypeHalted, nil)
	}
	var eo *editedOtherwise
	if errors.As(err, &eo) {
		activity.GetLogger(ctx).Error("ALERT: a draft's target rows are not those its recorded edits made; it was not sealed",
			"measure", ch.Measure, "version", ch.Version, "change", ch.Kind, "err", eo)
		return res, a.refuse(ctx, ch, &authz.Denied{Rule: "seal", Reason: eo.Error()}, nil)
	}
	var ust *unstaged
	if errors.As(err, &ust) {
		activity.GetLogger(ctx).Error("ALERT: a stored batch of steps is gone or altered; the action was refused",
			"measure", ch.Measure, "change", ch.Kind, "err", ust)
		return res, a.refuse(ctx, ch, &authz.Denied{Rule: "seal", Reason: ust.Error()}, nil)
	}
	var us *unsealed
	if errors.As(err, &us) {
		activity.GetLogger(ctx).Error("ALERT: a sealed version as stored no longer matches its seal; the action was refused",
			"measure", ch.Measure, "version", ch.Version, "change", ch.Kind, "err", us)
		return res, a.refuse(ctx, ch, &authz.Denied{Rule: "seal", Reason: us.Error()}, nil)
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == refusal.TypeInvalid {
		var fe measure.FieldError
		_ = app.Details(&fe)
		return res, a.refuse(ctx, ch, nil, &fe)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		// The workflow never recorded this row, yet the table holds one (a vote inserted in
		// SQL ahead of the member's own): the table was altered around the service.
		activity.GetLogger(ctx).Error("ALERT: a row the workflow never recorded stands in the way of a change", "measure", ch.Measure,
			"change", ch.Kind, "table", pg.TableName, "constraint", pg.ConstraintName)
		return res, a.refuse(ctx, ch, &authz.Denied{Rule: "seal", Reason: fmt.Sprintf(
			"the table %s already holds a row this %s would write (%s): the database was altered; nothing was recorded (tell an auditor)",
			pg.TableName, ch.Kind, pg.ConstraintName)}, nil)
	}
	if fe := refusal.Permanent(err); fe != nil {
		return res, a.refuse(ctx, ch, nil, fe)
	}
	if refusal.Misconfigured(err) {
		// Retrying cannot heal it and the client did nothing wrong: fail for an operator to see.
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("record %s of measure %s: %v", ch.Kind, ch.Measure, err), refusal.TypeServerFault, err)
	}
	if err != nil {
		if app != nil {
			return res, app
		}
		if activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt >= 5 {
			// Retried in vain for a while: someone must look (the database, or a bug).
			activity.GetLogger(ctx).Error("ALERT: a measure's change keeps failing to record", "measure", ch.Measure,
				"change", ch.Kind, "attempt", activity.GetInfo(ctx).Attempt, "err", err)
		}
		return res, fmt.Errorf("record %s of measure %s: %w", ch.Kind, ch.Measure, err)
	}
	return res, nil
}

// refuse audits an attempt refused while it was being recorded, as denied (d) or invalid (fe),
// and returns the non-retryable error that carries the refusal to the API. Each attempt is
// audited, a repeated one too: the key names this activity execution, which a retry shares and
// a new attempt does not.
func (a *Activities) refuse(ctx context.Context, ch Change, d *authz.Denied, fe *measure.FieldError) error {
	rule, reason := "invalid", ""
	var out error
	if d != nil {
		rule, reason = d.Rule, d.Error()
		out = temporal.NewNonRetryableApplicationError(d.Error(), refusal.TypeRefused, nil, *d)
	} else {
		reason = fe.Error()
		out = temporal.NewNonRetryableApplicationError(fe.Error(), refusal.TypeRejected, nil, *fe)
	}
	key := ch.Key + "/refused"
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		key += "/" + info.WorkflowExecution.RunID + "/" + info.ActivityID
	}
	err := pgx.BeginFunc(ctx, a.DB, func(tx pgx.Tx) error {
		return a.Audit.Append(ctx, tx, key, &audit.Record{
			Actor: auditActor(ch.Action.Actor), Action: "refused." + ch.Kind, Case: ch.Case, Measure: ch.Measure,
			Version: ch.Version, From: string(ch.From), To: string(ch.From), Reason: measure.Clip(reason, measure.MaxText),
			Details: map[string]any{"rule": rule}, PolicyVersion: ch.Action.PolicyVersion,
		})
	})
	if err != nil && !errors.Is(err, audit.ErrDuplicate) {
		return fmt.Errorf("audit refusal of %s: %w", ch.Kind, err)
	}
	return out
}

func auditActor(a authz.Actor) audit.Actor {
	roles := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		roles[i] = string(r)
	}
	return audit.Actor{ID: a.ID, Roles: roles, Org: a.Org}
}

// apply writes the rows particular to the change and returns the audit details.
func (a *Activities) apply(ctx context.Context, tx pgx.Tx, ch Change, res *Result) (map[string]any, error) {
	act := ch.Action
	d := map[string]any{}
	for k, v := range ch.Details { // what the workflow alone knows (gates, deadlines)
		d[k] = v
	}
	if ch.Digest != "" {
		d["digest"] = ch.Digest
	}
	if act.Digest != "" {
		// The digest the person decided on; the workflow refused it unless it is the current one.
		d["digest"] = act.Digest
	}
	if act.Signature != nil {
		d["signature"] = act.Signature // the person's own, checked by the service and by auditors
	}
	exec := func(sql string, args ...any) error {
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%s: %w", ch.Kind, err)
		}
		return nil
	}
	var err error
	var known []string // the steps' targets that are targets of the sealed version
	if heldToSeal[authz.Op(ch.Kind)] {
		var only map[string]bool
		if ch.Kind == string(authz.OpLogSteps) {
			only = make(map[string]bool, len(act.Steps))
			for _, st := range act.Steps {
				only[st.Target] = true
			}
		}
		if known, err = a.checkSeal(ctx, tx, ch, only); err != nil {
			return nil, err
		}
	}
	switch ch.Kind {
	case string(authz.OpSubmit), string(authz.OpDeclareEmergency):
		var values []string
		var sum string
		res.Sealed, values, sum, err = seal(ctx, tx, a.Audit, ch, act.Actor.ID)
		if err != nil {
			return nil, err
		}
		if sum != "" {
			d["targets_sum"] = sum
		}
		d["digest"] = res.Sealed.Digest
		d["targets"] = res.Sealed.Targets
		d["foreign"] = res.Sealed.Foreign
		d["executors"] = res.Sealed.Executors
		d["kind"] = res.Sealed.Kind
		// What the replay needs to judge the gates and deadlines from the log alone.
		d["legal_basis"] = res.Sealed.LegalBasis
		if res.Sealed.Urgent {
			d["urgent"] = true
		}
		if res.Sealed.RequestedWindow > 0 {
			d["requested_window_ms"] = res.Sealed.RequestedWindow.Milliseconds()
		}
		if values != nil {
			d["target_values"] = values // for auditors replaying scope; the workflow does not need them
		}
		if ch.Kind == string(authz.OpDeclareEmergency) {
			d["emergency"] = true
		}
	case string(authz.OpLegalReview), string(authz.OpCommandReview):
		kind := strings.TrimSuffix(ch.Kind, "_review")
		d["decision"] = act.Decision
		if len(act.Checklist) > 0 {
			d["checklist"] = act.Checklist
		}
		err = exec(`INSERT INTO reviews (measure_id, version, kind, reviewer_id, decision, reason) VALUES ($1,$2,$3,$4,$5,$6)`,
			ch.Measure, ch.Version, kind, act.Actor.ID, act.Decision, act.Reason)
	case string(authz.OpRecordGate):
		d["gate"], d["reference"] = act.Gate, act.Reference
		err = exec(`INSERT INTO gates (measure_id, version, kind, reference, recorded_by) VALUES ($1,$2,$3,$4,$5)`,
			ch.Measure, ch.Version, act.Gate, act.Reference, act.Actor.ID)
	case string(authz.OpDeclareConflict):
		d["conflicted"] = act.Conflicted
		err = exec(`INSERT INTO conflict_declarations (measure_id, version, member_id, conflicted, reason) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT (measure_id, version, member_id) DO UPDATE SET conflicted = EXCLUDED.conflicted, reason = EXCLUDED.reason, at = now()`,
			ch.Measure, ch.Version, act.Actor.ID, act.Conflicted, act.Reason)
	case string(authz.OpVote):
		d["vote"], d["conditions"] = act.Decision, act.Conditions
		conds, _ := json.Marshal(orEmpty(act.Conditions))
		err = exec(`INSERT INTO votes (measure_id, version, digest, member_id, vote, reason, conditions) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
			ch.Measure, ch.Version, ch.Digest, act.Actor.ID, act.Decision, act.Reason, conds)
	case "decide":
		t := ch.Tally
		d["tally"] = t
		var ws, we any
		conds := []byte("[]")
		if ch.Approval != nil {
			d["approval"] = ch.Approval
			ws, we = ch.Approval.WindowStart, ch.Approval.WindowEnd
			conds, _ = json.Marshal(orEmpty(ch.Approval.Conditions))
		}
		tally, _ := json.Marshal(t)
		err = exec(`INSERT INTO decisions (measure_id, version, digest, outcome, conditions, window_start, window_end, tally)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`, ch.Measure, ch.Version, ch.Digest, t.Outcome, conds, ws, we, tally)
	case string(authz.OpRequestInfo), string(authz.OpRespondInfo):
		if act.Body != "" {
			d["body"] = act.Body
		}
	case string(authz.OpIssueOrder):
		o := act.Order
		d["order"] = o
		err = exec(`INSERT INTO orders (measure_id, addressee, content, deadline, issued_by, proof) VALUES ($1,$2,$3,$4,$5,$6)`,
			ch.Measure, o.Addressee, o.Content, o.Deadline, act.Actor.ID, o.Proof)
	case string(authz.OpOrderOutcome):
		d["outcome"] = act.Decision
		err = exec(`UPDATE orders SET outcome = $2 WHERE measure_id = $1`, ch.Measure, act.Decision)
	case string(authz.OpLogSteps):
		err = logSteps(ctx, tx, ch, d, known)
	case string(authz.OpNotifyCommission), string(authz.OpReport):
		kind := "post_execution"
		if ch.Kind == string(authz.OpNotifyCommission) {
			kind = "commission_notification"
		}
		d["body_sha256"] = sha(act.Body)
		err = exec(`INSERT INTO reports (measure_id, kind, author_id, body) VALUES ($1,$2,$3,$4)`, ch.Measure, kind, act.Actor.ID, act.Body)
	case string(authz.OpPostHocDecision):
		d["decision"] = act.Decision
		if act.Body != "" {
			d["remediation"] = act.Body
		}
		err = exec(`INSERT INTO reviews (measure_id, version, kind, reviewer_id, decision, reason) VALUES ($1,$2,'post_hoc',$3,$4,$5)`,
			ch.Measure, ch.Version, act.Actor.ID, act.Decision, strings.TrimSpace(act.Reason+"\n"+act.Body))
	case string(authz.OpVerifyReport):
		d["report_author"] = ch.Facts.ReportAuthor
		err = exec(`UPDATE reports SET verified_by = $2 WHERE measure_id = $1 AND kind = 'post_execution'`, ch.Measure, act.Actor.ID)
	case string(authz.OpNotify):
		d["notifications"] = act.Notices
		for _, n := range act.Notices {
			if err = exec(`INSERT INTO notifications (measure_id, seq, addressee, status, reason, recorded_by)
				SELECT $1, COALESCE(max(seq), 0) + 1, $2, $3, $4, $5 FROM notifications WHERE measure_id = $1`,
				ch.Measure, n.Addressee, n.Status, n.Reason, act.Actor.ID); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if ch.NewVersion != 0 {
		d["new_version"] = ch.NewVersion
		if err := copyDraft(ctx, tx, ch.Measure, ch.Version, ch.NewVersion); err != nil {
			return nil, err
		}
	}
	if len(d) == 0 {
		return nil, nil
	}
	return d, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// copyDraft opens version to as a copy of version from, so the officer edits from where the
// returned request stood.
func copyDraft(ctx context.Context, tx pgx.Tx, measureID string, from, to int) error {
	if _, err := tx.Exec(ctx, `INSERT INTO targets (measure_id, version, seq, kind, value, port, location, country, role, ownership, hosting_provider, registrar, source)
		SELECT measure_id, $3, seq, kind, value, port, location, country, role, ownership, hosting_provider, registrar, source
		FROM targets WHERE measure_id = $1 AND version = $2`, measureID, from, to); err != nil {
		return fmt.Errorf("copy targets to version %d: %w", to, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO evidence (id, measure_id, version, sha256, filename, kind, provenance, legal_basis, acquirer, tool, acquired_at, tlp, added_by, added_at)
		SELECT gen_random_uuid()::text, measure_id, $3, sha256, filename, kind, provenance, legal_basis, acquirer, tool, acquired_at, tlp, added_by, added_at
		FROM evidence WHERE measure_id = $1 AND version = $2`, measureID, from, to); err != nil {
		return fmt.Errorf("copy evidence to version %d: %w", to, err)
	}
	return nil
}

// invalid is a refusal of the measure's content that retrying cannot fix.
func invalid(fe *measure.FieldError) error {
	return temporal.NewNonRetryableApplicationError(fe.Error(), refusal.TypeInvalid, nil, *fe)
}

// seal fixes the current version: its digest binds the plan, every target, every evidence
// hash and the reviews so far.
func seal(ctx context.Context, tx pgx.Tx, app *audit.Appender, ch Change, by string) (_ *measure.Sealed, _ []string, sum string, _ error) {
	// A version already sealed (submitted, then declared an emergency) keeps its seal: nothing
	// could change it since.
	if s, err := loadSealed(ctx, tx, ch.Measure, ch.Version); err == nil {
		values, err := listedValues(ctx, tx, ch.Measure, ch.Version)
		return s, values, "", err
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, "", err
	}
	var planRaw []byte
	if err := tx.QueryRow(ctx, `SELECT plan FROM measures WHERE id = $1`, ch.Measure).Scan(&planRaw); err != nil {
		return nil, nil, "", fmt.Errorf("read plan of %s: %w", ch.Measure, err)
	}
	var plan measure.Plan
	if err := json.Unmarshal(planRaw, &plan); err != nil {
		return nil, nil, "", fmt.Errorf("decode plan of %s: %w", ch.Measure, err)
	}
	if err := plan.Validate(); err != nil {
		var fe *measure.FieldError
		if !errors.As(measure.Within("plan", err), &fe) {
			return nil, nil, "", err
		}
		return nil, nil, "", invalid(fe)
	}
	tl, err := readTargets(ctx, tx, ch.Measure, ch.Version, nil)
	if err != nil {
		return nil, nil, "", err
	}
	if err := checkDraftEdits(ctx, tx, app, ch, tl.sum); err != nil {
		return nil, nil, "", err
	}
	n, foreign, values := tl.n, tl.foreign, tl.values
	if n == 0 {
		return nil, nil, "", invalid(&measure.FieldError{Field: "targets", Message: "must not be empty"})
	}
	var evidence []string
	if err := tx.QueryRow(ctx, `SELECT COALESCE(array_agg(sha256 ORDER BY sha256), '{}') FROM evidence WHERE measure_id = $1 AND version = $2`,
		ch.Measure, ch.Version).Scan(&evidence); err != nil {
		return nil, nil, "", fmt.Errorf("read evidence of %s: %w", ch.Measure, err)
	}
	var reviews []map[string]any
	rrows, err := tx.Query(ctx, `SELECT version, kind, reviewer_id, decision, reason FROM reviews WHERE measure_id = $1 ORDER BY at, kind`, ch.Measure)
	if err != nil {
		return nil, nil, "", fmt.Errorf("read reviews of %s: %w", ch.Measure, err)
	}
	for rrows.Next() {
		var v int
		var k, r, dec, reason string
		if err := rrows.Scan(&v, &k, &r, &dec, &reason); err != nil {
			rrows.Close()
			return nil, nil, "", err
		}
		reviews = append(reviews, map[string]any{"version": v, "kind": k, "reviewer": r, "decision": dec, "reason": reason})
	}
	rrows.Close()
	// The case as the reviewers read it: its attribution may grow later (an import into
	// another measure of the case), and what was judged must stay what the digest covers.
	var caseTitle, caseSummary string
	var attribution, harm json.RawMessage
	if err := tx.QueryRow(ctx, `SELECT c.title, c.summary, c.attribution, c.harm FROM cases c JOIN measures m ON m.case_id = c.id WHERE m.id = $1`,
		ch.Measure).Scan(&caseTitle, &caseSummary, &attribution, &harm); err != nil {
		return nil, nil, "", fmt.Errorf("read the case of %s: %w", ch.Measure, err)
	}
	body := map[string]any{
		"case":    map[string]any{"title": caseTitle, "summary": caseSummary, "attribution": attribution, "harm": harm},
		"measure": ch.Measure, "version": ch.Version, "plan": plan,
		"targets": n, "targets_sha256": tl.sha256,
		"evidence_sha256": evidence, "reviews": reviews, "foreign": foreign,
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, "", err
	}
	digest, err := measure.Digest(raw)
	if err != nil {
		return nil, nil, "", fmt.Errorf("canonicalise version body: %w", err)
	}
	s := &measure.Sealed{
		Version: ch.Version, Digest: digest, Kind: plan.Kind, LegalBasis: plan.LegalBasis,
		SelfExecutionFallback: plan.SelfExecutionFallback, RequestedWindow: time.Duration(plan.RequestedWindow), Urgent: plan.Urgent,
		Executors: plan.Executors, Foreign: foreign, Targets: n, Technique: plan.Technique,
	}
	sealed, _ := json.Marshal(s)
	if _, err := tx.Exec(ctx, `INSERT INTO measure_versions (measure_id, version, digest, body, sealed_by) VALUES ($1,$2,$3,$4,$5)`,
		ch.Measure, ch.Version, s.Digest, map[string]json.RawMessage{"sealed": sealed, "content": raw}, by); err != nil {
		return nil, nil, "", fmt.Errorf("seal version %d of %s: %w", ch.Version, ch.Measure, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO custody_events (id, evidence_id, event, actor_id)
		SELECT gen_random_uuid()::text, id, 'sealed', $3 FROM evidence WHERE measure_id = $1 AND version = $2`, ch.Measure, ch.Version, by); err != nil {
		return nil, nil, "", fmt.Errorf("record evidence sealing: %w", err)
	}
	return s, values, tl.sum.String(), nil
}

// editedOtherwise refuses to seal a draft whose target rows are not those its recorded edits
// made: rows inserted, removed or rewritten in SQL while it was a draft.
type editedOtherwise struct {
	version       int
	rows, records string
}

func (e *editedOtherwise) Error() string {
	return fmt.Sprintf("the target rows of version %d are not those its recorded edits made (rows sum to %s, the records to %s): the database was altered; it is not sealed (tell an auditor)",
		e.version, e.rows, e.records)
}

// checkDraftEdits compares the multiset hash of a draft's target rows with what its audit
// records say they must be: the sum the previous version's seal recorded, plus the targets
// added to this version, minus those removed. A measure whose records predate the sums is not
// checked.
func checkDraftEdits(ctx context.Context, tx pgx.Tx, app *audit.Appender, ch Change, rows measure.TargetSum) error {
	entries, err := app.Entries(ctx, tx, ch.Measure)
	if err != nil {
		return err
	}
	var want measure.TargetSum
	based := ch.Version == 1
	for _, e := range entries {
		field, add := "", true
		switch {
		case (e.Action == string(authz.OpSubmit) || e.Action == string(authz.OpDeclareEmergency)) && e.Version == ch.Version-1:
			if v, ok := e.Details["targets_sum"].(string); ok {
				base, err := measure.ParseTargetSum(v)
				if err != nil {
					return err
				}
				want, based = base, true
			}
			continue
		case e.Action == "targets.added" && e.Version == ch.Version:
			field = "targets_sum_added"
		case e.Action == "targets.removed" && e.Version == ch.Version:
			field, add = "targets_sum_removed", false
		default:
			continue
		}
		v, ok := e.Details[field].(string)
		if !ok {
			return nil // an edit recorded before sums were
		}
		d, err := measure.ParseTargetSum(v)
		if err != nil {
			return err
		}
		if add {
			want.Plus(d)
		} else {
			want.Minus(d)
		}
	}
	if based && want != rows {
		return &editedOtherwise{ch.Version, rows.String(), want.String()}
	}
	return nil
}

// listedValues returns the target values a seal's audit record lists: all of them (a large
// list moves to companion data).
func listedValues(ctx context.Context, tx pgx.Tx, measureID string, version int) ([]string, error) {
	var values []string
	if err := tx.QueryRow(ctx, `SELECT COALESCE(array_agg(value ORDER BY seq), '{}') FROM targets WHERE measure_id = $1 AND version = $2`,
		measureID, version).Scan(&values); err != nil {
		return nil, fmt.Errorf("read targets of %s: %w", measureID, err)
	}
	return values, nil
}

// targetList is what one read of a version's target rows gives: how many, their hash as the
// seal computes it, whether any is foreign, and their values (all of them, or only those
// asked for).
type targetList struct {
	n       int
	sha256  string
	sum     measure.TargetSum
	foreign bool
	values  []string
}

// readTargets reads a version's target rows once, hashing them as the seal does. Every value
// goes into keep when it is given, into the list of values otherwise.
func readTargets(ctx context.Context, tx pgx.Tx, measureID string, version int, keep map[string]bool) (targetList, error) {
	var tl targetList
	th := measure.NewTargetHash()
	rows, err := tx.Query(ctx, `SELECT `+measure.TargetColumns+` FROM targets WHERE measure_id = $1 AND version = $2 ORDER BY seq`, measureID, version)
	if err != nil {
		return tl, fmt.Errorf("read targets of %s: %w", measureID, err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := measure.ScanTarget(rows)
		if err != nil {
			return tl, fmt.Errorf("read targets of %s: %w", measureID, err)
		}
		th.Add(t)
		tl.sum.Add(t)
		tl.n++
		tl.foreign = tl.foreign || t.Foreign()
		if keep != nil {
			keep[t.Value] = true
		} else {
			tl.values = append(tl.values, t.Value)
		}
	}
	if err := rows.Err(); err != nil {
		return tl, fmt.Errorf("read targets of %s: %w", measureID, err)
	}
	tl.sha256 = th.Sum()
	return tl, nil
}

// haltedErr stops a change while a halt of the audit log stands.
type haltedErr struct{ problem string }

func (e *haltedErr) Error() string {
	if e.problem == audit.StartupCheck {
		return refusal.StartupCheck
	}
	return fmt.Sprintf("the audit log has stopped signing (%s): nothing is accepted that it cannot sign; an operator must investigate",
		measure.Clip(e.problem, measure.MaxLine))
}

// heldToSeal are the operations that judge or carry out a sealed version: each is refused when
// the version as stored no longer matches its seal.
var heldToSeal = map[authz.Op]bool{
	authz.OpLegalReview: true, authz.OpCommandReview: true, authz.OpRecordGate: true, authz.OpDeclareConflict: true,
	authz.OpVote: true, authz.OpRequestInfo: true, authz.OpIssueOrder: true, authz.OpOrderOutcome: true,
	authz.OpStartExecution: true, authz.OpLogSteps: true, authz.OpFinishExecution: true,
	authz.OpPostHocDecision: true, authz.OpVerifyReport: true,
}

// unsealed refuses a change on a version whose stored rows no longer agree with its seal.
type unsealed struct {
	version int
	what    string
}

func (e *unsealed) Error() string {
	return fmt.Sprintf("version %d as stored no longer matches its seal (%s): the database was altered; nothing is taken on it (tell an auditor)", e.version, e.what)
}

// checkSeal holds a change on a sealed version to what was sealed, not to tables an operator
// can edit: the version's stored body must hash to the digest the workflow holds, and its
// target rows to the body's target hash. It returns the target values among only (for the
// scope of execution steps), read in the same pass.
func (a *Activities) checkSeal(ctx context.Context, tx pgx.Tx, ch Change, only map[string]bool) ([]string, error) {
	var content []byte
	err := tx.QueryRow(ctx, `SELECT body->'content' FROM measure_versions WHERE measure_id = $1 AND version = $2`, ch.Measure, ch.Version).Scan(&content)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &unsealed{ch.Version, "its sealed body is missing"}
	}
	if err != nil {
		return nil, fmt.Errorf("read sealed version %d of %s: %w", ch.Version, ch.Measure, err)
	}
	digest, err := measure.Digest(content)
	if err != nil {
		return nil, &unsealed{ch.Version, "its sealed body is not JSON"}
	}
	if digest != ch.Digest {
		return nil, &unsealed{ch.Version, "its sealed body does not hash to " + ch.Digest}
	}
	var body struct {
		Targets  int      `json:"targets"`
		SHA256   string   `json:"targets_sha256"`
		Evidence []string `json:"evidence_sha256"`
	}
	if err := json.Unmarshal(content, &body); err != nil {
		return nil, &unsealed{ch.Version, "its sealed body does not decode"}
	}
	var evidence []string
	if err := tx.QueryRow(ctx, `SELECT COALESCE(array_agg(sha256 ORDER BY sha256), '{}') FROM evidence WHERE measure_id = $1 AND version = $2`,
		ch.Measure, ch.Version).Scan(&evidence); err != nil {
		return nil, fmt.Errorf("read evidence of %s: %w", ch.Measure, err)
	}
	if !slices.Equal(evidence, body.Evidence) && !(len(evidence) == 0 && len(body.Evidence) == 0) {
		return nil, &unsealed{ch.Version, fmt.Sprintf("its %d evidence files are not the %d sealed", len(evidence), len(body.Evidence))}
	}
	key := sealKey{ch.Measure, ch.Version, ch.Digest}
	if only != nil {
		if known, ok := a.seals.judge(key, body.Targets, only); ok {
			return known, nil
		}
	}
	var keep map[string]bool
	if only != nil {
		keep = map[string]bool{} // every value, for the batches that follow
	}
	tl, err := readTargets(ctx, tx, ch.Measure, ch.Version, keep)
	if err != nil {
		return nil, err
	}
	if tl.n != body.Targets || tl.sha256 != body.SHA256 {
		a.seals.forget(key)
		return nil, &unsealed{ch.Version, fmt.Sprintf("its %d target rows do not hash to the %d targets sealed", tl.n, body.Targets)}
	}
	if only == nil {
		return tl.values, nil
	}
	a.seals.keep(key, keep, tl.n)
	var known []string
	for v := range only {
		if keep[v] {
			known = append(known, v)
		}
	}
	return known, nil
}

func loadSealed(ctx context.Context, tx pgx.Tx, measureID string, version int) (*measure.Sealed, error) {
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT body->'sealed' FROM measure_versions WHERE measure_id = $1 AND version = $2`, measureID, version).Scan(&raw); err != nil {
		return nil, fmt.Errorf("read sealed version %d of %s: %w", version, measureID, err)
	}
	var s measure.Sealed
	return &s, json.Unmarshal(raw, &s)
}

// logSteps stores a batch of execution steps after checking every step's target against the
// targets of the approved (or, in an emergency, declared) version: known, the steps' targets
// found among the version's rows as checkSeal read them against the seal. A batch with any step out
// of scope is refused whole, and the refusal is audited in its own transaction.
func logSteps(ctx context.Context, tx pgx.Tx, ch Change, d map[string]any, known []string) error {
	act := ch.Action
	in := make(map[string]bool, len(known))
	for _, t := range known {
		in[t] = true
	}
	// Each target outside, named by the first step that names it.
	var targets, outside []string
	more := 0
	named := make(map[string]bool)
	for i, s := range act.Steps {
		if named[s.Target] {
			continue
		}
		named[s.Target] = true
		targets = append(targets, s.Target)
		if in[s.Target] {
			continue
		}
		if len(outside) < maxNamedOutside {
			outside = append(outside, fmt.Sprintf("steps[%d] %s", i, s.Target))
		} else {
			more++
		}
	}
	if len(outside) > 0 {
		return &outOfScope{targets: outside, more: more}
	}
	var seq int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(seq), 0) FROM execution_steps WHERE measure_id = $1`, ch.Measure).Scan(&seq); err != nil {
		return fmt.Errorf("number steps: %w", err)
	}
	rows := make([][]any, len(act.Steps))
	h := sha256.New()
	for i, s := range act.Steps {
		rows[i] = []any{ch.Measure, seq + i + 1, act.Actor.ID, s.Witness, s.Target, s.Technique, s.Action, s.Result, s.At}
		line, _ := json.Marshal(s)
		h.Write(line)
		h.Write([]byte{'\n'})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"execution_steps"},
		[]string{"measure_id", "seq", "executor_id", "witness_id", "target", "technique", "action", "result", "at"},
		pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("store %d steps: %w", len(rows), err)
	}
	if act.Batch != nil {
		if _, err := tx.Exec(ctx, `DELETE FROM step_batches WHERE id = $1`, act.Batch.Stored); err != nil {
			return fmt.Errorf("remove the stored batch of steps: %w", err)
		}
	}
	d["steps"] = len(rows)
	d["first_seq"] = seq + 1
	d["steps_sha256"] = hex.EncodeToString(h.Sum(nil))
	d["targets"] = targets
	// Every step, however many: a record too large for the log moves the list to companion
	// data it commits to by hash, and the verifier reads it back to check each step.
	d["step_list"] = act.Steps
	return nil
}

// stagedSteps reads the steps the service stored for batch b and checks they are the steps
// the workflow judged: the ones that hash to the batch's digest.
func stagedSteps(ctx context.Context, tx pgx.Tx, measureID string, b *measure.StepBatch) ([]measure.Step, error) {
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT steps FROM step_batches WHERE id = $1 AND measure_id = $2`, b.Stored, measureID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &unstaged{b.Digest, "is not stored"}
	}
	if err != nil {
		return nil, fmt.Errorf("read the stored batch of steps %s: %w", b.Digest, err)
	}
	var steps []measure.Step
	if err := json.Unmarshal(raw, &steps); err != nil {
		return nil, &unstaged{b.Digest, "does not decode"}
	}
	sum, err := audit.ContentDigest(steps)
	if err != nil || sum != b.Digest || len(steps) != b.Count {
		return nil, &unstaged{b.Digest, "does not hash to its digest"}
	}
	return steps, nil
}

// unstaged is a batch of steps whose stored copy is gone or altered.
type unstaged struct{ digest, what string }

func (e *unstaged) Error() string {
	return fmt.Sprintf("the batch of steps %s, stored when it was sent, %s: the database was altered; nothing was recorded (send the steps again, and tell an auditor)", e.digest, e.what)
}

// outOfScope names the targets of a batch outside the approved version, each by the first
// step naming it; past maxNamedOutside it counts the rest (the refusal is an audit record of
// at most 64 KiB, and 10,000 wrong targets would not fit).
type outOfScope struct {
	targets []string
	more    int
}

const maxNamedOutside = 20

func (e *outOfScope) Error() string {
	if e.more > 0 {
		return fmt.Sprintf("targets outside the approved version: %s and %d more", strings.Join(e.targets, ", "), e.more)
	}
	return fmt.Sprintf("targets outside the approved version: %s", strings.Join(e.targets, ", "))
}

// policyChanged is a person's action checked under a policy version that another replaced
// before it was recorded.
type policyChanged struct{ checked, now string }

func (e *policyChanged) Error() string {
	return fmt.Sprintf("the authorization policy became %s while this was sent (it was checked under %s): nothing was recorded; send it again", e.now, e.checked)
}

// checkPolicyInForce refuses a person's action checked under a policy version older than the
// newest approved one: what a record says it was checked under is then always the version in
// force when it was written, and the auditor's replay holds every record to that.
func checkPolicyInForce(ctx context.Context, tx pgx.Tx, act measure.Action) error {
	if act.Actor.ID == authz.System.ID || act.PolicyVersion == "" {
		return nil
	}
	checked := policyNumber(act.PolicyVersion)
	if checked == 0 {
		return nil
	}
	var newest int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 1) FROM authz_policy_versions WHERE approved_by IS NOT NULL`).Scan(&newest); err != nil {
		return fmt.Errorf("read the policy in force: %w", err)
	}
	if newest > checked {
		return &policyChanged{checked: act.PolicyVersion, now: fmt.Sprintf("v%d", newest)}
	}
	return nil
}

// policyNumber reads "v3" as 3, and the names of the built-in first version as 1.
func policyNumber(name string) int {
	switch name {
	case "v1", "default", audit.PolicyVersion:
		return 1
	}
	var n int
	if _, err := fmt.Sscanf(name, "v%d", &n); err != nil || n < 1 {
		return 0
	}
	return n
}
