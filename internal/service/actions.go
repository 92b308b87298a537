package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/workflows"
)

// ActionInput is what a person gives with an action; the operation, the measure and the
// actor come from elsewhere.
type ActionInput struct {
	Decision   string                 `json:"decision,omitempty"`
	Reason     string                 `json:"reason,omitempty"`
	Conditions []string               `json:"conditions,omitempty"`
	Conflicted *bool                  `json:"conflicted,omitempty"`
	Checklist  []string               `json:"checklist,omitempty"`
	Gate       string                 `json:"gate,omitempty"`
	Reference  string                 `json:"reference,omitempty"`
	Order      *measure.Order         `json:"order,omitempty"`
	Steps      []measure.Step         `json:"steps,omitempty"`
	Body       string                 `json:"body,omitempty"`
	Notices    []measure.Notification `json:"notifications,omitempty"`
	// Digest is the digest of the version the person decided on (measure.Judges).
	Digest string `json:"digest,omitempty"`
	// Signature is the person's own signature over the decision's statement (Statement).
	Signature *audit.Signature `json:"signature,omitempty"`
}

// MaxIdempotencyKey bounds an idempotency key.
const MaxIdempotencyKey = 128

// Act takes an action on a measure: authorize, validate, send it to the measure's workflow as
// an Update and wait for it to complete. key, when set, makes a retried request the same
// action (answered as the first time) and refuses another request under the same key. Every
// refusal is audited once, here or by the activity that met it.
func (s *Service) Act(ctx context.Context, a authz.Actor, id string, op authz.Op, in ActionInput, key string) (Measure, error) {
	if op == authz.OpEditDraft || workflows.StagesFor(op) == nil {
		name := string(op)
		if measure.CheckLine("op", name, 64) != nil {
			name = "unknown"
		}
		return Measure{}, s.refuse(ctx, a, On{Measure: id}, name,
			refusal.New(refusal.NotFound, "no action %q; see /api/v1/openapi.json", measure.Clip(string(op), 64)))
	}
	m, err := s.find(ctx, nil, a, id, string(op))
	if err != nil {
		return m, err // audited by find
	}
	m, audited, err := s.act(ctx, a, m, op, in, key)
	if err != nil {
		if !audited {
			err = s.refuse(ctx, a, m.on(), string(op), err)
		}
		return m, err
	}
	return s.load(ctx, nil, m.ID)
}

// act does the work of Act; audited reports a refusal the activity already audited.
func (s *Service) act(ctx context.Context, a authz.Actor, m Measure, op authz.Op, in ActionInput, key string) (_ Measure, audited bool, err error) {
	action := measure.Action{Op: op, Actor: a, Decision: in.Decision, Reason: in.Reason, Conditions: in.Conditions, Checklist: in.Checklist,
		Conflicted: in.Conflicted != nil && *in.Conflicted, Digest: in.Digest, Gate: in.Gate, Reference: in.Reference, Order: in.Order, Steps: in.Steps, Body: in.Body, Notices: in.Notices,
		PolicyVersion: s.Authz.Version()}
	if err := action.CheckInput(); err != nil {
		return m, false, err
	}
	updateID, retry := "", false
	if key != "" {
		if fe := measure.CheckLine("Idempotency-Key", key, MaxIdempotencyKey); fe != nil {
			return m, false, fe
		}
		fresh, err := s.claimKey(ctx, a, key, m.ID, op, in)
		if err != nil {
			return m, false, err
		}
		updateID, retry = a.ID+"/"+key, !fresh
		if !fresh {
			var done bool
			if updateID, done = s.attempt(ctx, m.ID, updateID); done {
				// A retry of an action already taken: answer as the first time, check nothing again.
				return m, false, nil
			}
		}
	}
	// The service's own checks, from PostgreSQL; the workflow's validator checks again.
	if !slices.Contains(workflows.StagesFor(op), m.Stage) {
		return m, false, refusal.New(refusal.WrongStage, "%s is not possible in stage %s (allowed in %v)", op, m.Stage, workflows.StagesFor(op))
	}
	if err := s.Authz.Check(op, a, m.Facts, time.Now()); err != nil {
		return m, false, err
	}
	if err := s.checkSeen(ctx, m, op, in); err != nil {
		return m, false, err
	}
	if action.Signature, err = s.checkSignature(ctx, a, m, op, in, retry); err != nil {
		return m, false, err
	}
	if err := s.checkReferences(ctx, &action); err != nil {
		return m, false, err
	}
	// The checklist is judged with the decision it goes with, after the key and the stage.
	if op == authz.OpLegalReview {
		if err := measure.CheckChecklist(in.Decision, in.Checklist); err != nil {
			return m, false, err
		}
	} else if len(in.Checklist) > 0 {
		return m, false, &measure.FieldError{Field: "checklist", Message: "belongs to a legal review only"}
	}
	if op == authz.OpSubmit || op == authz.OpDeclareEmergency {
		if err := m.Plan.Validate(); err != nil {
			return m, false, measure.Within("plan", err)
		}
		if err := s.knownUsers(ctx, "plan.executors", m.Plan.Executors); err != nil {
			return m, false, err
		}
		if m.Targets == 0 {
			return m, false, &measure.FieldError{Field: "targets", Message: "must not be empty: add targets before submitting"}
		}
	}
	if err := s.logSigns(ctx, s.DB); err != nil {
		return m, false, err
	}
	if len(action.Steps) > 0 {
		if action.Batch, err = s.stageSteps(ctx, a, m.ID, action.Steps); err != nil {
			return m, false, err
		}
		action.Steps = nil
	}
	out, err := s.update(ctx, m, action, updateID)
	if err != nil {
		if e, audited, ok := refusal.Carried(err); ok {
			// Temporal keeps no trace of a rejected Update: the log must, unless the activity wrote it.
			return m, audited, e
		}
		return m, false, err
	}
	s.Log.InfoContext(ctx, "action", "measure", m.ID, "op", op, "actor", a.Username, "stage", out.Stage)
	return m, false, nil
}

// stageSteps stores a batch of execution steps for the activity that records it, in a row of
// its own, and returns the summary the workflow judges it by (measure.StepBatch). Batches left
// behind by an action refused or lost are removed after a day.
func (s *Service) stageSteps(ctx context.Context, a authz.Actor, measureID string, steps []measure.Step) (*measure.StepBatch, error) {
	digest, err := audit.ContentDigest(steps)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(steps)
	if err != nil {
		return nil, fmt.Errorf("encode the steps: %w", err)
	}
	if _, err := s.DB.Exec(ctx, `DELETE FROM step_batches WHERE created_at < now() - interval '1 day'`); err != nil {
		return nil, fmt.Errorf("remove stale batches of steps: %w", err)
	}
	stored := "sb-" + rand.Text()
	if _, err := s.DB.Exec(ctx, `INSERT INTO step_batches (id, measure_id, digest, actor_id, steps) VALUES ($1, $2, $3, $4, $5)`,
		stored, measureID, digest, a.ID, body); err != nil {
		return nil, fmt.Errorf("store the batch of steps: %w", err)
	}
	b := measure.Summarise(digest, steps)
	b.Stored = stored
	return b, nil
}

// checkSeen refuses a decision that does not name the version it judges, or names one the
// measure has moved on from: nothing is recorded against a version the person did not see.
func (s *Service) checkSeen(ctx context.Context, m Measure, op authz.Op, in ActionInput) error {
	if op == authz.OpDeclareConflict && in.Conflicted == nil {
		return &measure.FieldError{Field: "conflicted", Message: "is required: true when you have a conflict and step aside, false when you have none"}
	}
	if !measure.Judges(op) {
		if in.Digest != "" {
			return &measure.FieldError{Field: "digest", Message: fmt.Sprintf("belongs to a decision on a version; %s judges none", op)}
		}
		return nil
	}
	if in.Digest == "" {
		return &measure.FieldError{Field: "digest", Message: fmt.Sprintf("is required: the digest of the version you decided on (version %d is %s)", m.Version, orNone(m.Digest))}
	}
	if in.Digest == m.Digest {
		sv, err := s.sealedOf(ctx, m.ID, m.Version, m.Digest)
		if err != nil {
			return err
		}
		if sv != nil && sv.Broken {
			return refusal.New(refusal.Conflict, "version %d as stored does not hash to its digest %s: the database was altered; no decision is taken on it (tell an auditor)", m.Version, m.Digest)
		}
		return nil
	}
	seen := 0
	if err := s.DB.QueryRow(ctx, `SELECT version FROM measure_versions WHERE measure_id = $1 AND digest = $2`, m.ID, in.Digest).Scan(&seen); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look up the version decided on: %w", err)
	}
	e := refusal.New(refusal.Stale, "%s was decided on %s, but the measure is now at version %d (%s) in stage %s: nothing was recorded; read what changed (%s) and decide again",
		op, seenVersion(seen, in.Digest), m.Version, orNone(m.Digest), m.Stage, changesLink(m.ID, seen))
	e.Field, e.Seen, e.Current = "digest", seen, m.Version
	return e
}

func orNone(digest string) string {
	if digest == "" {
		return "not sealed"
	}
	return digest
}

func seenVersion(v int, digest string) string {
	if v == 0 {
		return fmt.Sprintf("digest %s, which is no version of this measure", measure.Clip(digest, 80))
	}
	return fmt.Sprintf("version %d (%s)", v, digest)
}

// changesLink is where the API shows what changed since the version a person saw.
func changesLink(id string, from int) string {
	if from == 0 {
		return "GET /api/v1/measures/" + id
	}
	return fmt.Sprintf("GET /api/v1/measures/%s/changes?from=%d", id, from)
}

// claimKey binds an idempotency key to one request (measure, operation and input); fresh
// reports its first use. The same request again may proceed (Temporal answers it with the
// first outcome); another request under the same key is refused.
func (s *Service) claimKey(ctx context.Context, a authz.Actor, key, measureID string, op authz.Op, in ActionInput) (fresh bool, err error) {
	body, _ := json.Marshal(in)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", measureID, op)
	h.Write(body)
	sum := hex.EncodeToString(h.Sum(nil))
	tag, err := s.DB.Exec(ctx, `INSERT INTO idempotency_keys (actor_id, key, measure_id, op, request_hash)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, a.ID, key, measureID, op, sum)
	if err != nil {
		return false, fmt.Errorf("claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var prevMeasure, prevOp, prevSum string
	if err := s.DB.QueryRow(ctx, `SELECT measure_id, op, request_hash FROM idempotency_keys WHERE actor_id = $1 AND key = $2`,
		a.ID, key).Scan(&prevMeasure, &prevOp, &prevSum); err != nil {
		return false, fmt.Errorf("read idempotency key: %w", err)
	}
	if prevSum != sum {
		e := refusal.New(refusal.KeyReused, "this Idempotency-Key was used for another request (%s on %s); use a new key for a new request", prevOp, prevMeasure)
		e.Field = "Idempotency-Key"
		return false, e
	}
	return false, nil
}

// checkReferences refuses an action that names someone who is not a user.
func (s *Service) checkReferences(ctx context.Context, a *measure.Action) error {
	if len(a.Steps) == 0 {
		return nil
	}
	var ids []string
	for _, st := range a.Steps {
		if !slices.Contains(ids, st.Witness) {
			ids = append(ids, st.Witness)
		}
	}
	missing, err := s.unknownUsers(ctx, ids)
	if err != nil || len(missing) == 0 {
		return err
	}
	for i, st := range a.Steps {
		if slices.Contains(missing, st.Witness) {
			return &measure.FieldError{Field: fmt.Sprintf("steps[%d].witness", i), Message: fmt.Sprintf("%q is not a known user", st.Witness)}
		}
	}
	return nil
}

// knownUsers refuses a list of user IDs holding one that is not a user.
func (s *Service) knownUsers(ctx context.Context, field string, ids []string) error {
	missing, err := s.unknownUsers(ctx, ids)
	if err != nil {
		return err
	}
	for i, id := range ids {
		if slices.Contains(missing, id) {
			return &measure.FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Message: fmt.Sprintf("%q is not a known user", id)}
		}
	}
	return nil
}

func (s *Service) unknownUsers(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var missing []string
	err := s.DB.QueryRow(ctx, `SELECT COALESCE(array_agg(x), '{}') FROM unnest($1::text[]) x WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = x AND u.retired_at IS NULL)`,
		ids).Scan(&missing)
	if err != nil {
		return nil, fmt.Errorf("look up users: %w", err)
	}
	return missing, nil
}

// maxAttempts bounds the fresh attempts one idempotency key makes after halts.
const maxAttempts = 100

// attempt returns the Update ID a retried request is sent as, and whether that Update has
// completed. A key's first attempt has the key's own ID; an attempt a halt of the audit log
// refused (the activity wrote nothing) is followed by a fresh one (ID#2, #3, …), so a retry
// once the halt is cleared is carried out rather than answered with the old refusal. Every
// other outcome, a success or a refusal, is the key's for good.
func (s *Service) attempt(ctx context.Context, measureID, base string) (string, bool) {
	id := base
	for n := 2; ; n++ {
		h := s.Temporal.GetWorkflowUpdateHandle(client.GetWorkflowUpdateHandleOptions{WorkflowID: workflows.ID(measureID), UpdateID: id})
		var out workflows.Outcome
		err := h.Get(ctx, &out)
		if err == nil {
			return id, true
		}
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != refusal.TypeHalted || n > maxAttempts {
			return id, false
		}
		id = base + "#" + strconv.Itoa(n)
	}
}

// ran reports whether the measure's workflow was ever started, running or not.
func (s *Service) ran(ctx context.Context, measureID string) bool {
	_, err := s.Temporal.DescribeWorkflowExecution(ctx, workflows.ID(measureID), "")
	var nf *serviceerror.NotFound
	return !errors.As(err, &nf)
}

// update sends the action and waits for it to complete. A draft whose workflow never started
// (the server died between the insert and the start) gets it started here. updateID, when
// set, makes a retried request the same Update.
func (s *Service) update(ctx context.Context, m Measure, a measure.Action, updateID string) (workflows.Outcome, error) {
	var out workflows.Outcome
	send := func() error {
		opts := client.UpdateWorkflowOptions{
			WorkflowID: workflows.ID(m.ID), UpdateName: workflows.UpdateAct, Args: []any{a},
			WaitForStage: client.WorkflowUpdateStageCompleted, UpdateID: updateID,
		}
		h, err := s.Temporal.UpdateWorkflow(ctx, opts)
		if err != nil {
			return err
		}
		return h.Get(ctx, &out)
	}
	err := send()
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// No running workflow. Either a concurrent action closed it since the measure was read,
		// or this is a draft whose workflow never started (the server died between the insert
		// and the start). Only the latter may be started: a closed lifecycle is not reopened.
		now, lerr := s.load(ctx, nil, m.ID)
		if lerr != nil {
			return out, lerr
		}
		if now.Stage != m.Stage {
			return out, refusal.New(refusal.WrongStage, "%s is not possible: the measure became %s while this was sent", a.Op, now.Stage)
		}
		if m.Stage != measure.Draft || s.ran(ctx, m.ID) {
			// Ended, though its stage as read has not caught up yet: still no place for an action.
			return out, refusal.New(refusal.WrongStage, "%s is not possible: the measure's lifecycle has ended (last seen in stage %s)", a.Op, m.Stage)
		}
		if err := s.startWorkflow(ctx, m.ID, m.Case, m.Org, m.Requester); err != nil {
			return out, err
		}
		err = send()
	}
	if err != nil && ctx.Err() != nil {
		return out, refusal.New(refusal.Timeout,
			"%s on %s was sent but not confirmed before the request's deadline: it may still take effect; "+
				"GET the measure to see its stage, or retry with the same Idempotency-Key", a.Op, m.ID)
	}
	return out, err
}
