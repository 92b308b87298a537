package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

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

// act checks an action and sends it to the measure's workflow as an Update.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := actorOf(r)
	op := authz.Op(r.PathValue("op"))
	if op == authz.OpEditDraft || workflows.StagesFor(op) == nil {
		s.fail(w, r, &Error{Status: 404, Code: "not_found", Message: fmt.Sprintf("no action %q; see /api/v1/openapi.json", op)})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxJSON)
	var in actionBody
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.loadMeasure(ctx, nil, r.PathValue("measure"), false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" && s.done(r, m.ID, a.ID+"/"+key) {
		// A retry of an action already taken: answer as the first time, check nothing again.
		s.getMeasure(w, r)
		return
	}
	// The API's own checks, from PostgreSQL; the workflow's validator checks again.
	if !slices.Contains(workflows.StagesFor(op), m.Stage) {
		err := &Error{Status: 409, Code: "wrong_stage", Message: fmt.Sprintf("%s is not possible in stage %s (allowed in %v)", op, m.Stage, workflows.StagesFor(op))}
		s.refused(ctx, a, m.ID, m.Case, string(op), string(m.Stage), err)
		s.fail(w, r, err)
		return
	}
	if err := s.Authz.Check(op, a, m.Facts, time.Now()); err != nil {
		s.refused(ctx, a, m.ID, m.Case, string(op), string(m.Stage), err)
		s.fail(w, r, err)
		return
	}
	if op == authz.OpSubmit || op == authz.OpDeclareEmergency {
		if err := m.Plan.Validate(); err != nil {
			fe := err.(*measure.FieldError)
			s.fail(w, r, &measure.FieldError{Field: "plan." + fe.Field, Message: fe.Message})
			return
		}
		if m.Targets == 0 {
			s.fail(w, r, &measure.FieldError{Field: "targets", Message: "must not be empty: add targets before submitting"})
			return
		}
	}
	action := measure.Action{Op: op, Actor: a, Decision: in.Decision, Reason: in.Reason, Conditions: in.Conditions,
		Conflicted: in.Conflicted, Gate: in.Gate, Reference: in.Reference, Order: in.Order, Steps: in.Steps, Body: in.Body, Notices: in.Notices,
		PolicyVersion: s.Authz.Version()}

	out, err := s.update(r, m, action)
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			e := &Error{Message: app.Message()}
			switch app.Type() {
			case activities.ErrTypeWrongStage:
				e.Status, e.Code = 409, "wrong_stage"
			case activities.ErrTypeDenied, activities.ErrTypeRefused:
				var d authz.Denied
				_ = app.Details(&d)
				e.Status, e.Code, e.Rule = 403, "forbidden", d.Rule
			case activities.ErrTypeInvalid:
				var fe measure.FieldError
				_ = app.Details(&fe)
				e.Status, e.Code, e.Field = 400, "invalid", fe.Field
			default:
				s.fail(w, r, err)
				return
			}
			if app.Type() != activities.ErrTypeRefused && app.Type() != activities.ErrTypeInvalid {
				// Temporal keeps no trace of a rejected Update: the log must.
				s.refused(ctx, a, m.ID, m.Case, string(op), string(m.Stage), e)
			}
			s.fail(w, r, e)
			return
		}
		s.fail(w, r, err)
		return
	}
	s.Log.Info("action", "measure", m.ID, "op", op, "actor", a.Username, "stage", out.Stage)
	s.getMeasure(w, r)
}

// done reports whether the Update with this ID was already accepted and has completed.
func (s *Server) done(r *http.Request, measureID, updateID string) bool {
	h := s.Temporal.GetWorkflowUpdateHandle(client.GetWorkflowUpdateHandleOptions{WorkflowID: workflows.ID(measureID), UpdateID: updateID})
	var out workflows.Outcome
	return h.Get(r.Context(), &out) == nil
}

// update sends the action and waits for it to complete. A draft whose workflow never started
// (the server died between the insert and the start) gets it started here.
func (s *Server) update(r *http.Request, m Measure, a measure.Action) (workflows.Outcome, error) {
	var out workflows.Outcome
	send := func() error {
		opts := client.UpdateWorkflowOptions{
			WorkflowID: workflows.ID(m.ID), UpdateName: workflows.UpdateAct, Args: []any{a},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		}
		// A client that retries after a lost answer sends the same Idempotency-Key: Temporal
		// then returns the first outcome instead of applying the action twice.
		if k := r.Header.Get("Idempotency-Key"); k != "" {
			opts.UpdateID = a.Actor.ID + "/" + k
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
	return out, err
}
