// Package refusal is the one error contract of takedown's doors. Whichever door a request came
// through (the JSON API, the web pages, a workflow Update), a refusal is an *Error with the
// same code, field and rule, and the same HTTP status; Of sorts any error into it.
//
// Rules are named where they are decided (authz.Denied: SoD-1 … SoD-8, scope, window,
// need-to-know, two-person, role); fields by measure.FieldError. This package adds the kinds
// and the failure types that carry refusals out of Temporal.
package refusal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// Error is a refusal or failure as every door reports it.
type Error struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`            // see the Code constants
	Field   string `json:"field,omitempty"` // JSON path of the offending input
	Rule    string `json:"rule,omitempty"`  // the authorization rule that refused
	Message string `json:"message"`
	// Seen and Current name, for a stale_version refusal, the version decided on (0: none of
	// this measure's) and the measure's version now.
	Seen    int `json:"seen_version,omitempty"`
	Current int `json:"current_version,omitempty"`
	// RetryAfter, when set, is how long the client should wait (too_many_attempts).
	RetryAfter time.Duration `json:"-"`
	hidden     bool          // a need-to-know refusal answered as not found (Hidden)
}

func (e *Error) Error() string { return e.Message }

// Codes, each with its status.
const (
	Invalid         = "invalid"                // 400
	Unauthenticated = "unauthenticated"        // 401
	Forbidden       = "forbidden"              // 403
	NotFound        = "not_found"              // 404
	WrongStage      = "wrong_stage"            // 409
	Conflict        = "conflict"               // 409
	KeyReused       = "idempotency_key_reused" // 409
	Stale           = "stale_version"          // 409: decided on a version that is no longer current
	TooLarge        = "too_large"              // 413
	TooMany         = "too_many_attempts"      // 429
	Internal        = "internal"               // 500
	Unavailable     = "unavailable"            // 503: the audit log cannot sign
	Timeout         = "timeout"                // 504
)

var status = map[string]int{Invalid: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, WrongStage: 409, Conflict: 409,
	KeyReused: 409, Stale: 409, TooLarge: 413, TooMany: 429, Internal: 500, Unavailable: 503, Timeout: 504}

// New returns a refusal of the given code.
func New(code, format string, args ...any) *Error {
	return &Error{Status: status[code], Code: code, Message: fmt.Sprintf(format, args...)}
}

// Hidden is the answer to someone who may not know that the thing exists: byte for byte the
// answer for a thing that does not exist ("no measure m-…", no rule), while the audit entry
// records the need-to-know rule.
func Hidden(what, id string) *Error {
	return &Error{Status: 404, Code: NotFound, Message: fmt.Sprintf("no %s %s", what, measure.Clip(id, 64)), hidden: true}
}

// Failure types carry refusals out of a workflow's Update through Temporal.
const (
	TypeWrongStage = "WrongStage" // 409
	TypeStale      = "Stale"      // 409: the digest decided on is not the measure's current one
	TypeDenied     = "Denied"     // 403, not yet audited
	TypeRefused    = "Refused"    // 403, already audited by the activity
	TypeInvalid    = "Invalid"    // 400, not yet audited
	TypeRejected   = "Rejected"   // 400, already audited by the activity
	// TypeServerFault is a fault of the deployment (a missing privilege or table): not
	// retried, not the client's doing (500), logged for an operator.
	TypeServerFault = "ServerFault"
	// TypeHalted refuses a person's action because a halt of the audit log stands, or its
	// start-up check runs (503).
	TypeHalted = "Halted"
)

// StartupCheck is the refusal of an action while a sequencer's start-up check of the audit
// log runs: it ends in seconds, and the same request, with the same Idempotency-Key, may be
// sent again.
const StartupCheck = "the audit log is being checked at start-up against what it signed and what its witnesses cosigned: nothing is accepted until it is; try again in a moment"

// Carried turns a failure of a workflow's Update into the refusal it carries; audited says the
// activity that refused it already wrote the audit entry. ok is false for other errors.
func Carried(err error) (e *Error, audited, ok bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return nil, false, false
	}
	e = &Error{Message: app.Message()}
	switch app.Type() {
	case TypeWrongStage:
		e.Status, e.Code = 409, WrongStage
	case TypeHalted:
		e.Status, e.Code = 503, Unavailable
		if e.Message == StartupCheck {
			e.RetryAfter = 2 * time.Second
		}
	case TypeStale:
		e.Status, e.Code, e.Field = 409, Stale, "digest"
	case TypeDenied, TypeRefused:
		var d authz.Denied
		_ = app.Details(&d)
		e.Status, e.Code, e.Rule = 403, Forbidden, d.Rule
	case TypeInvalid, TypeRejected:
		var fe measure.FieldError
		_ = app.Details(&fe)
		e.Status, e.Code, e.Field = 400, Invalid, fe.Field
	default:
		return nil, false, false
	}
	return e, app.Type() == TypeRefused || app.Type() == TypeRejected, true
}

// Permanent reports, as a refusal of the input, an error that retrying cannot heal: PostgreSQL
// refusing the data itself (a data exception, a constraint, a value over a limit) or an audit
// record over its size. It returns nil for everything else.
func Permanent(err error) *measure.FieldError {
	var pg *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, audit.ErrTooLarge):
		return &measure.FieldError{Message: "the change is too large to record in the audit log: " + err.Error()}
	case errors.As(err, &pg):
		switch pg.Code[:2] {
		case "22", "23", "54":
			// Data exception, integrity constraint, program limit: the same data fails the
			// same way every time.
			return &measure.FieldError{Field: pg.ColumnName, Message: "the database refused this input: " + pg.Message}
		}
	}
	return nil
}

// Misconfigured reports a database error that retrying cannot heal and that no input causes:
// a missing table or privilege, an invalid transaction or routine state (a deployment fault).
func Misconfigured(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	switch pg.Code[:2] {
	case "42", "2B", "2F":
		return true
	}
	return false
}

// Of sorts any error into the contract. Client input never earns a 500: what the database
// refuses as data is a 400, a lost race a 409, a passed deadline a 504. ctx is the request's:
// once it is done, a failure is the deadline's.
func Of(ctx context.Context, err error) *Error {
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
		return &Error{Status: 400, Code: Invalid, Field: fe.Field, Message: fe.Error()}
	case errors.As(err, &d):
		return &Error{Status: 403, Code: Forbidden, Rule: d.Rule, Message: d.Error()}
	case errors.As(err, &mbe):
		return New(TooLarge, "request body is over the %d-byte limit", mbe.Limit)
	case errors.Is(err, pgx.ErrNoRows):
		return New(NotFound, "not found")
	case errors.Is(err, audit.ErrDuplicate):
		return New(Conflict, "this was already done by another request")
	case errors.As(err, &pg) && (pg.Code == "23505" || pg.Code == "40001" || pg.Code == "40P01"):
		return New(Conflict, "another request changed this at the same time; read it again")
	case Permanent(err) != nil:
		fe := Permanent(err)
		return &Error{Status: 400, Code: Invalid, Field: fe.Field, Message: fe.Message}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &dl) || ctx.Err() != nil:
		return New(Timeout, "no answer before the request's deadline; what was asked may still take effect: read it again before retrying")
	}
	return New(Internal, "internal error; the server log has the details")
}

// Is reports whether err refuses the request (a 4xx), as opposed to failing it.
func Is(err error) bool {
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

// RuleOf is the rule an audit entry records for a refusal: the authorization rule, or
// "invalid" for bad input.
func RuleOf(err error) string {
	var d *authz.Denied
	var e *Error
	var fe *measure.FieldError
	switch {
	case errors.As(err, &d):
		return d.Rule
	case errors.As(err, &e) && e.hidden:
		return "need-to-know"
	case errors.As(err, &e) && e.Rule != "":
		return e.Rule
	case errors.As(err, &fe):
		return "invalid"
	}
	return ""
}
