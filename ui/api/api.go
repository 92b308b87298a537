// Package api is takedown's JSON API under /api/v1, a thin adapter over the service layer
// (internal/service): it authenticates the bearer token, decodes the request, calls the
// service with the actor, and writes the result or the refusal (internal/refusal) as JSON.
// The OpenAPI document is at /api/v1/openapi.json.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/ui/signon"
)

// Server is the JSON API.
type Server struct {
	*service.Service
	// SSO, when configured, signs people in through an OpenID Connect provider.
	SSO *signon.Provider
	// BrowserSignOn, when set, finishes the sign-ons the web pages started.
	BrowserSignOn BrowserSignOn
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
	mux.HandleFunc("POST /api/v1/enrol", s.enrol)
	mux.HandleFunc("GET "+signon.LoginPath, s.ssoLogin)
	mux.HandleFunc("GET "+signon.CallbackPath, s.ssoCallback)
	mux.HandleFunc("GET "+signon.CLIKeyPath, s.SSO.CLIKeyHandler)
	mux.HandleFunc("GET /api/v1/tokens", s.auth(s.listTokens))
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.auth(s.revokeToken))
	mux.HandleFunc("GET /api/v1/me", s.auth(s.me))
	mux.HandleFunc("GET /api/v1/me/notifications", s.auth(s.myNotifications))
	mux.HandleFunc("PUT /api/v1/me/notifications", s.auth(s.setNotifications))
	mux.HandleFunc("POST /api/v1/cases", s.auth(s.createCase))
	mux.HandleFunc("GET /api/v1/cases", s.auth(s.listCases))
	mux.HandleFunc("GET /api/v1/cases/{case}", s.auth(s.getCase))
	mux.HandleFunc("POST /api/v1/cases/{case}/measures", s.auth(s.createMeasure))
	mux.HandleFunc("GET /api/v1/measures", s.auth(s.listMeasures))
	mux.HandleFunc("GET /api/v1/measures/{measure}", s.auth(s.getMeasure))
	mux.HandleFunc("PUT /api/v1/measures/{measure}/plan", s.auth(s.putPlan))
	mux.HandleFunc("POST /api/v1/measures/{measure}/targets", s.auth(s.addTargets))
	mux.HandleFunc("GET /api/v1/measures/{measure}/targets", s.auth(s.listTargets))
	mux.HandleFunc("POST /api/v1/measures/{measure}/targets/remove", s.auth(s.removeTargets))
	mux.HandleFunc("POST /api/v1/measures/{measure}/imports", s.auth(s.importFile))
	mux.HandleFunc("GET /api/v1/imports/{id}", s.auth(s.getImport))
	mux.HandleFunc("GET /api/v1/audit/stream", s.auth(s.auditStream))
	mux.HandleFunc("GET /api/v1/measures/{measure}/stix", s.auth(s.exportSTIX))
	mux.HandleFunc("POST /api/v1/imports/{id}/confirm", s.auth(s.confirmImport))
	mux.HandleFunc("POST /api/v1/measures/{measure}/evidence", s.auth(s.addEvidence))
	mux.HandleFunc("GET /api/v1/measures/{measure}/evidence", s.auth(s.listEvidence))
	mux.HandleFunc("GET /api/v1/evidence/{sha256}", s.auth(s.getEvidence))
	mux.HandleFunc("GET /api/v1/measures/{measure}/history", s.auth(s.history))
	mux.HandleFunc("GET /api/v1/measures/{measure}/history/{index}", s.auth(s.inclusion))
	mux.HandleFunc("GET /api/v1/measures/{measure}/changes", s.auth(s.changes))
	mux.HandleFunc("GET /api/v1/measures/{measure}/decisions", s.auth(s.decisions))
	mux.HandleFunc("POST /api/v1/measures/{measure}/actions/{op}", s.auth(s.act))
	mux.HandleFunc("POST /api/v1/measures/{measure}/statements/{op}", s.auth(s.statement))
	mux.HandleFunc("GET /api/v1/keys", s.auth(s.listKeys))
	mux.HandleFunc("POST /api/v1/keys", s.auth(s.proposeKey))
	mux.HandleFunc("POST /api/v1/keys/{id}/approve", s.auth(s.approveKey))
	mux.HandleFunc("POST /api/v1/keys/{id}/statement", s.auth(s.approvalStatement(authz.OpApproveKey, "id")))
	mux.HandleFunc("POST /api/v1/keys/{id}/revoke", s.auth(s.revokeKey))
	mux.HandleFunc("GET /api/v1/statistics", s.auth(s.statistics))
	mux.HandleFunc("GET /api/v1/work", s.auth(s.work))
	mux.HandleFunc("GET /api/v1/admin/users", s.auth(s.listUsers))
	mux.HandleFunc("GET /api/v1/admin/role-changes", s.auth(s.pendingChanges))
	mux.HandleFunc("POST /api/v1/admin/role-changes", s.auth(s.proposeRoleChange))
	mux.HandleFunc("POST /api/v1/admin/role-changes/{id}/approve", s.auth(s.approveRoleChange))
	mux.HandleFunc("POST /api/v1/admin/role-changes/{id}/statement", s.auth(s.approvalStatement(authz.OpApproveRoleChange, "id")))
	mux.HandleFunc("GET /api/v1/admin/policy", s.auth(s.getPolicy))
	mux.HandleFunc("POST /api/v1/admin/policy", s.auth(s.proposePolicy))
	mux.HandleFunc("GET /api/v1/admin/policy/proposals", s.auth(s.pendingPolicies))
	mux.HandleFunc("POST /api/v1/admin/policy/{version}/approve", s.auth(s.approvePolicy))
	mux.HandleFunc("POST /api/v1/admin/policy/{version}/statement", s.auth(s.approvalStatement(authz.OpApprovePolicy, "version")))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// reply writes v, or the error in the error contract.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := s.Classify(r.Context(), err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
	}
	writeJSON(w, e.Status, map[string]*refusal.Error{"error": e})
}

// decode reads a JSON body of at most limit bytes strictly: unknown fields and trailing data
// are refused. A body that does not decode is refused and audited as an attempt at action,
// on the measure named in the path if any.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, limit int64, action string, v any) error {
	err := decodeJSON(http.MaxBytesReader(w, r.Body, limit), v)
	if err != nil && action != "" {
		s.Refused(r.Context(), actorOf(r), service.On{Measure: r.PathValue("measure"), Case: r.PathValue("case")}, action, err)
	}
	return err
}

// mustBe says what a Go type reads from in JSON's words, never the type's own name.
func mustBe(field string, t reflect.Type) *measure.FieldError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return &measure.FieldError{Field: field, Message: "must be a JSON array"}
	case reflect.String:
		return &measure.FieldError{Field: field, Message: "must be a JSON string"}
	case reflect.Bool:
		return &measure.FieldError{Field: field, Message: "must be true or false"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &measure.FieldError{Field: field, Message: "must be a whole number"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &measure.FieldError{Field: field, Message: "must be a whole number, not negative"}
	case reflect.Float32, reflect.Float64:
		return &measure.FieldError{Field: field, Message: "must be a JSON number"}
	}
	return &measure.FieldError{Field: field, Message: "must be a JSON object"}
}

func decodeJSON(body io.Reader, v any) error {
	var read bytes.Buffer // what the decoder read, to say where a value does not fit
	dec := json.NewDecoder(io.TeeReader(body, &read))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		var ute *json.UnmarshalTypeError
		var pe *time.ParseError
		msg := err.Error()
		if errors.As(err, &ute) || errors.As(err, &pe) || strings.HasPrefix(msg, "Time.UnmarshalJSON") {
			// encoding/json names no array index, and passes time.Time's own error on with Go's
			// layout and no field at all: find the value in the document.
			path, t, found := locateMisfit(read.Bytes(), v)
			if !found && ute != nil {
				path, t = ute.Field, ute.Type
			}
			if t == timeType || (t == nil && ute == nil) {
				return &measure.FieldError{Field: path, Message: "a time must be a JSON string in RFC 3339, such as 2026-12-07T10:00:00Z or 2026-12-07T19:00:00+09:00"}
			}
			return mustBe(path, t)
		}
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
	// encoding/json puts U+FFFD in place of bytes that are not UTF-8: what was sent would not
	// be what is recorded.
	if b := read.Bytes(); !utf8.Valid(b) {
		at := 0
		for at < len(b) {
			r, n := utf8.DecodeRune(b[at:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			at += n
		}
		return &measure.FieldError{Field: "", Message: fmt.Sprintf("the body is not UTF-8 at byte %d: text is sent as UTF-8", at)}
	}
	return nil
}

// locateMisfit reads doc again as plain JSON and finds the first value that does not fit v.
func locateMisfit(doc []byte, v any) (string, reflect.Type, bool) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var g any
	if err := d.Decode(&g); err != nil {
		return "", nil, false
	}
	return misfit(reflect.TypeOf(v), g, "")
}

// page reads ?limit= and ?offset= (the service checks their range).
func page(r *http.Request) (service.Page, error) {
	var p service.Page
	q := r.URL.Query()
	for _, f := range []struct {
		name string
		to   *int
	}{{"limit", &p.Limit}, {"offset", &p.Offset}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return p, &measure.FieldError{Field: f.name, Message: "must be a number"}
			}
			*f.to = n
		}
	}
	if p.Limit == 0 && q.Get("limit") != "" {
		p.Limit = -1 // an explicit 0 is out of range, not the default
	}
	return p, nil
}

type actorKey struct{}

type tokenKey struct{}

func actorOf(r *http.Request) authz.Actor {
	a, _ := r.Context().Value(actorKey{}).(authz.Actor)
	return a
}

// tokenOf is the ID of the token the request came with.
func tokenOf(r *http.Request) string { id, _ := r.Context().Value(tokenKey{}).(string); return id }

// bearer is the token of the Authorization header, if any.
func bearer(r *http.Request) string {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return token
}

// auth requires a bearer token and puts its principal in the request context.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := bearer(r)
		if token == "" {
			s.fail(w, r, refusal.New(refusal.Unauthenticated, "send Authorization: Bearer <token> (POST /api/v1/tokens gives one)"))
			return
		}
		a, id, err := s.Authenticate(r.Context(), token)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), actorKey{}, a), tokenKey{}, id)
		next(w, r.WithContext(ctx))
	}
}
