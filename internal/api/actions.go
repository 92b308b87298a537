package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/takedown/takedown/activities"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/workflows"
)

// actionBody is what a client sends for an action; the operation comes from the path and the
// actor from the token.
type actionBody struct {
	Decision   string                 `json:"decision,omitempty"`
	Reason     string                 `json:"reason,omitempty"`
	Conditions []string               `json:"conditions,omitempty"`
	Conflicted bool                   `json:"conflicted,omitempty"`
	Gate       string                 `json:"gate,omitempty"`
	Reference  string                 `json:"reference,omitempty"`
	Order      *measure.Order         `json:"order,omitempty"`
	Steps      []measure.Step         `json:"steps,omitempty"`
	Body       string                 `json:"body,omitempty"`
	Notices    []measure.Notification `json:"notifications,omitempty"`
}

// MaxIdempotencyKey bounds the Idempotency-Key header.
const MaxIdempotencyKey = 128

// act checks an action and sends it to the measure's workflow as an Update. Every refusal is
// audited here, once, unless the activity that refused it already did.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	op := authz.Op(r.PathValue("op"))
	m, audited, err := s.takeAction(w, r, a, op)
	if err != nil {
		if !audited && refusal(err) {
			s.refused(r.Context(), a, m.ID, m.Case, string(op), string(m.Stage), err)
		}
		s.fail(w, r, err)
		return
	}
	s.getMeasure(w, r)
}

// takeAction does the work of act; audited reports a refusal the activity already audited.
func (s *Server) takeAction(w http.ResponseWriter, r *http.Request, a authz.Actor, op authz.Op) (m Measure, audited bool, err error) {
	ctx := r.Context()
	if op == authz.OpEditDraft || workflows.StagesFor(op) == nil {
		return m, false, &Error{Status: 404, Code: "not_found", Message: fmt.Sprintf("no action %q; see /api/v1/openapi.json", measure.Clip(string(op), 64))}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSON))
	if err != nil {
		return m, false, err
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var in actionBody
	if err := decode(r, &in); err != nil {
		return m, false, err
	}
	if m, err = s.loadMeasure(ctx, nil, r.PathValue("measure"), false); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			err = &Error{Status: 404, Code: "not_found", Message: "no measure " + measure.Clip(r.PathValue("measure"), 64)}
		}
		return m, false, err
	}
	if err := s.reads().CanRead(a, m.subject()); err != nil {
		// Who may not read a measure may not act on it, and learns nothing of it.
		return m, false, &Error{Status: 404, Code: "not_found", Rule: "need-to-know", Message: "no measure here for you"}
	}
	action := measure.Action{Op: op, Actor: a, Decision: in.Decision, Reason: in.Reason, Conditions: in.Conditions,
		Conflicted: in.Conflicted, Gate: in.Gate, Reference: in.Reference, Order: in.Order, Steps: in.Steps, Body: in.Body, Notices: in.Notices,
		PolicyVersion: s.Authz.Version()}
	if err := action.CheckInput(); err != nil {
		return m, false, err
	}
	updateID := ""
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if fe := measure.CheckLine("Idempotency-Key", key, MaxIdempotencyKey); fe != nil {
			return m, false, fe
		}
		fresh, err := s.claimKey(ctx, a, key, m.ID, op, raw)
		if err != nil {
			return m, false, err
		}
		updateID = a.ID + "/" + key
		if !fresh && s.done(r, m.ID, updateID) {
			// A retry of an action already taken: answer as the first time, check nothing again.
			return m, false, nil
		}
	}
	// The API's own checks, from PostgreSQL; the workflow's validator checks again.
	if !slices.Contains(workflows.StagesFor(op), m.Stage) {
		return m, false, &Error{Status: 409, Code: "wrong_stage", Message: fmt.Sprintf("%s is not possible in stage %s (allowed in %v)", op, m.Stage, workflows.StagesFor(op))}
	}
	if err := s.Authz.Check(op, a, m.Facts, time.Now()); err != nil {
		return m, false, err
	}
	if err := s.checkReferences(ctx, &action); err != nil {
		return m, false, err
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

	out, err := s.update(r, m, action, updateID)
	if err != nil {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) {
			return m, false, err
		}
		e := &Error{Message: app.Message()}
		switch app.Type() {
		case activities.ErrTypeWrongStage:
			e.Status, e.Code = 409, "wrong_stage"
		case activities.ErrTypeDenied, activities.ErrTypeRefused:
			var d authz.Denied
			_ = app.Details(&d)
			e.Status, e.Code, e.Rule = 403, "forbidden", d.Rule
		case activities.ErrTypeInvalid, activities.ErrTypeRejected:
			var fe measure.FieldError
			_ = app.Details(&fe)
			e.Status, e.Code, e.Field = 400, "invalid", fe.Field
		default:
			return m, false, err
		}
		// Temporal keeps no trace of a rejected Update: the log must, unless the activity wrote it.
		return m, app.Type() == activities.ErrTypeRefused || app.Type() == activities.ErrTypeRejected, e
	}
	s.Log.Info("action", "measure", m.ID, "op", op, "actor", a.Username, "stage", out.Stage)
	return m, false, nil
}

// claimKey binds an Idempotency-Key to one request (measure, operation and body); fresh
// reports its first use. The same request again may proceed (Temporal answers it with the
// first outcome); another request under the same key is refused.
func (s *Server) claimKey(ctx context.Context, a authz.Actor, key, measureID string, op authz.Op, body []byte) (fresh bool, err error) {
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
		return false, &Error{Status: 409, Code: "idempotency_key_reused", Field: "Idempotency-Key",
			Message: fmt.Sprintf("this Idempotency-Key was used for another request (%s on %s); use a new key for a new request", prevOp, prevMeasure)}
	}
	return false, nil
}

// checkReferences refuses an action that names someone who is not a user.
func (s *Server) checkReferences(ctx context.Context, a *measure.Action) error {
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
func (s *Server) knownUsers(ctx context.Context, field string, ids []string) error {
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

func (s *Server) unknownUsers(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var missing []string
	err := s.DB.QueryRow(ctx, `SELECT COALESCE(array_agg(x), '{}') FROM unnest($1::text[]) x WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = x)`,
		ids).Scan(&missing)
	if err != nil {
		return nil, fmt.Errorf("look up users: %w", err)
	}
	return missing, nil
}

// done reports whether the Update with this ID was already accepted and has completed.
func (s *Server) done(r *http.Request, measureID, updateID string) bool {
	h := s.Temporal.GetWorkflowUpdateHandle(client.GetWorkflowUpdateHandleOptions{WorkflowID: workflows.ID(measureID), UpdateID: updateID})
	var out workflows.Outcome
	return h.Get(r.Context(), &out) == nil
}

// update sends the action and waits for it to complete. A draft whose workflow never started
// (the server died between the insert and the start) gets it started here. updateID, when
// set, makes a retried request the same Update.
func (s *Server) update(r *http.Request, m Measure, a measure.Action, updateID string) (workflows.Outcome, error) {
	var out workflows.Outcome
	send := func() error {
		opts := client.UpdateWorkflowOptions{
			WorkflowID: workflows.ID(m.ID), UpdateName: workflows.UpdateAct, Args: []any{a},
			WaitForStage: client.WorkflowUpdateStageCompleted, UpdateID: updateID,
		}
		h, err := s.Temporal.UpdateWorkflow(r.Context(), opts)
		if err != nil {
			return err
		}
		return h.Get(r.Context(), &out)
	}
	err := send()
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) && m.Stage == measure.Draft {
		if err := s.startWorkflow(r.Context(), m.ID, m.Case, m.Requester); err != nil {
			return out, err
		}
		err = send()
	}
	if err != nil && r.Context().Err() != nil {
		return out, &Error{Status: 504, Code: "timeout", Message: fmt.Sprintf(
			"%s on %s was sent but not confirmed before the request's deadline: it may still take effect; "+
				"GET the measure to see its stage, or retry with the same Idempotency-Key", a.Op, m.ID)}
	}
	return out, err
}
