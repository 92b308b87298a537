// Package api serves takedown's JSON API under /api/v1: every action a user takes, with
// per-user authentication (API tokens), refusals that name the field or the rule, and an
// OpenAPI document at /api/v1/openapi.json.
//
// The API reads PostgreSQL; it changes a measure only through its workflow's Update, except
// for draft content (plan, targets, evidence), which it writes itself while the measure is a
// draft. Every refused attempt is audited.
package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/takedown/takedown/activities"
	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/workflows"
)

// Server is the JSON API.
type Server struct {
	DB       *pgxpool.Pool
	Temporal client.Client
	// Authz decides who may act; its policy version goes into every audit record.
	Authz interface {
		Check(op authz.Op, a authz.Actor, f authz.Facts, now time.Time) error
		Version() string
		Rules() []authz.Rule
	}
	// Reads decides who may read what (authz.Reads, need-to-know, when nil); lists filter by
	// its Scope and re-check each row with its CanRead.
	Reads interface {
		CanRead(authz.Actor, authz.Subject) error
		Scope(authz.Actor) authz.ReadScope
	}
	Workflow workflows.Config // durations given to new measures
	// MaxEvidence bounds one evidence upload, in bytes.
	MaxEvidence int64
	// TokenTTL is how long an API token lives (DefaultTokenTTL when 0).
	TokenTTL time.Duration
	Log      *slog.Logger
}

// maxJSON bounds a JSON request body (a target list of a few hundred thousand lines fits).
const maxJSON = 64 << 20

// Mux is where routes are registered (an *http.ServeMux).
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register adds the API's routes to mux.
func (s *Server) Register(mux Mux) {
	mux.HandleFunc("GET /api/v1/openapi.json", s.openAPI)
	mux.HandleFunc("POST /api/v1/tokens", s.createToken)
	mux.HandleFunc("GET /api/v1/tokens", s.auth(s.listTokens))
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.auth(s.revokeToken))
	mux.HandleFunc("GET /api/v1/me", s.auth(s.me))
	mux.HandleFunc("POST /api/v1/cases", s.auth(s.createCase))
	mux.HandleFunc("GET /api/v1/cases", s.auth(s.listCases))
	mux.HandleFunc("GET /api/v1/cases/{case}", s.auth(s.getCase))
	mux.HandleFunc("POST /api/v1/cases/{case}/measures", s.auth(s.createMeasure))
	mux.HandleFunc("GET /api/v1/measures", s.auth(s.listMeasures))
	mux.HandleFunc("GET /api/v1/measures/{measure}", s.auth(s.getMeasure))
	mux.HandleFunc("PUT /api/v1/measures/{measure}/plan", s.auth(s.putPlan))
	mux.HandleFunc("POST /api/v1/measures/{measure}/targets", s.auth(s.addTargets))
	mux.HandleFunc("GET /api/v1/measures/{measure}/targets", s.auth(s.listTargets))
	mux.HandleFunc("POST /api/v1/measures/{measure}/evidence", s.auth(s.addEvidence))
	mux.HandleFunc("GET /api/v1/measures/{measure}/evidence", s.auth(s.listEvidence))
	mux.HandleFunc("GET /api/v1/evidence/{sha256}", s.auth(s.getEvidence))
	mux.HandleFunc("GET /api/v1/measures/{measure}/history", s.auth(s.history))
	mux.HandleFunc("POST /api/v1/measures/{measure}/actions/{op}", s.auth(s.act))
	s.registerAdmin(mux)
}

func (s *Server) reads() interface {
	CanRead(authz.Actor, authz.Subject) error
	Scope(authz.Actor) authz.ReadScope
} {
	if s.Reads == nil {
		return authz.Reads{}
	}
	return s.Reads
}

// Error is the body of every refusal.
type Error struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`            // invalid | unauthenticated | forbidden | not_found | wrong_stage | conflict | too_large | too_many_attempts | timeout | internal
	Field   string `json:"field,omitempty"` // JSON path of the offending input
	Rule    string `json:"rule,omitempty"`  // the authorization rule that refused
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := s.classify(r, err)
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// classify turns any error into the error contract. Client input never earns a 500: what the
// database refuses as data is a 400, a lost race a 409, a passed deadline a 504.
func (s *Server) classify(r *http.Request, err error) *Error {
	var e *Error
	var fe *measure.FieldError
	var d *authz.Denied
	var mbe *http.MaxBytesError
	var pg *pgconn.PgError
	var dl *serviceerror.DeadlineExceeded
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &fe):
		return &Error{Status: 400, Code: "invalid", Field: fe.Field, Message: fe.Error()}
	case errors.As(err, &d):
		return &Error{Status: 403, Code: "forbidden", Rule: d.Rule, Message: d.Error()}
	case errors.As(err, &mbe):
		return &Error{Status: 413, Code: "too_large", Message: fmt.Sprintf("request body is over the %d-byte limit", mbe.Limit)}
	case errors.Is(err, pgx.ErrNoRows):
		return &Error{Status: 404, Code: "not_found", Message: "not found"}
	case errors.Is(err, audit.ErrDuplicate):
		return &Error{Status: 409, Code: "conflict", Message: "this was already done by another request"}
	case errors.As(err, &pg) && (pg.Code == "23505" || pg.Code == "40001" || pg.Code == "40P01"):
		return &Error{Status: 409, Code: "conflict", Message: "another request changed this at the same time; read it again"}
	case activities.Permanent(err) != nil:
		fe := activities.Permanent(err)
		s.Log.Warn("input refused by the database", "method", r.Method, "path", r.URL.Path, "err", err)
		return &Error{Status: 400, Code: "invalid", Field: fe.Field, Message: fe.Message}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &dl) || r.Context().Err() != nil:
		return &Error{Status: 504, Code: "timeout", Message: "no answer before the request's deadline; what was asked may still take effect: read it again before retrying"}
	}
	s.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return &Error{Status: 500, Code: "internal", Message: "internal error; the server log has the details"}
}

// refusal reports whether err refuses the request (a 4xx), as opposed to failing it.
func refusal(err error) bool {
	var e *Error
	var fe *measure.FieldError
	var d *authz.Denied
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e.Status >= 400 && e.Status < 500
	case errors.As(err, &fe), errors.As(err, &d), errors.As(err, &mbe), errors.Is(err, pgx.ErrNoRows):
		return true
	}
	return false
}

// decode reads a JSON body strictly: unknown fields and trailing data are refused.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return &measure.FieldError{Field: ute.Field, Message: fmt.Sprintf("must be a JSON %s", ute.Type)}
		}
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return &measure.FieldError{Field: strings.Trim(f, `"`), Message: "unknown field"}
		}
		if errors.Is(err, io.EOF) {
			return &measure.FieldError{Field: "", Message: "request body is empty"}
		}
		return &measure.FieldError{Field: "", Message: "malformed JSON: " + msg}
	}
	if dec.More() {
		return &measure.FieldError{Field: "", Message: "trailing data after the JSON value"}
	}
	return nil
}

// newID returns a random identifier: IDs are not sequential, so they leak no volumes.
func newID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// refused audits an attempt the API refused before it reached the workflow.
func (s *Server) refused(ctx context.Context, a authz.Actor, measureID, caseID, action, stage string, err error) {
	var rule string
	var d *authz.Denied
	var e *Error
	switch {
	case errors.As(err, &d):
		rule = d.Rule
	case errors.As(err, &e):
		rule = e.Rule
	}
	var fe *measure.FieldError
	if rule == "" && errors.As(err, &fe) {
		rule = "invalid"
	}
	rec := &audit.Record{PolicyVersion: s.Authz.Version(),
		Actor:  audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org},
		Action: "refused." + action, Case: caseID, Measure: measureID, From: stage, To: stage,
		Reason: measure.Clip(strings.ToValidUTF8(err.Error(), "\uFFFD"), measure.MaxText), Details: map[string]any{"rule": rule},
	}
	// The refusal is logged even when the request's own deadline has passed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	txErr := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error { return audit.Append(ctx, tx, "refused/"+newID(""), rec) })
	if txErr != nil {
		s.Log.Error("audit refusal", "action", action, "measure", measureID, "err", txErr)
	}
}

func rolesOf(a authz.Actor) []string {
	out := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		out[i] = string(r)
	}
	return out
}
