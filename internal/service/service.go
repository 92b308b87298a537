// Package service is takedown's one door: every action and every read, whichever HTTP
// adapter it came through (the JSON API in ui/api, the web pages in ui/web), is a method here
// that takes the authenticated actor, authorizes (Casbin for actions, need-to-know for reads),
// validates, reads the store or sends the workflow its Update, audits refusals, and returns
// typed results or a *refusal.Error.
//
// It changes a measure only through its workflow's Update, except for draft content (plan,
// targets, evidence), which it writes itself while the measure is a draft.
package service

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/workflows"
)

// Authorizer decides who may act; its policy version goes into every audit record.
type Authorizer interface {
	Check(op authz.Op, a authz.Actor, f authz.Facts, now time.Time) error
	Version() string
	Rules() []authz.Rule
}

// Readers decides who may read what.
type Readers interface {
	CanRead(authz.Actor, authz.Subject) error
	Scope(authz.Actor) authz.ReadScope
}

// Service does the work of every door.
type Service struct {
	DB       *pgxpool.Pool
	Temporal client.Client
	Authz    Authorizer
	// Audit authenticates the audit entries the service writes.
	Audit *audit.Appender
	// Reads decides who may read what (when nil, Authz if it can, else the default policy);
	// lists filter by its Scope, in the query and again on each row.
	Reads    Readers
	Workflow workflows.Config // durations given to new measures
	// MaxEvidence bounds one evidence upload, in bytes.
	MaxEvidence int64
	// TokenTTL is how long an API token lives (DefaultTokenTTL when 0).
	TokenTTL time.Duration
	// PasswordCost is the bcrypt cost of passwords set by enrolment (0: bcrypt's default).
	PasswordCost int
	// LogKeys are the audit log's note verifier keys, for the server's own check of inclusion
	// proofs (when empty, the key history in the database).
	LogKeys []string
	// WitnessKeys are the cosignature verifier keys of the witnesses the log asks, for the
	// policy the audit page offers auditors.
	WitnessKeys []string
	Log         *slog.Logger
	// Now, when set, is the clock login throttling reads (tests); time.Now otherwise.
	Now func() time.Time
	// Refusals, when set, is told the rule of each refusal (for metrics).
	Refusals func(rule string)

	grants grantLog // the roles and designations the log records
	// parsing admits one threat-intelligence file read at a time.
	parsing sync.Mutex
}

// reads is Reads, else the authorizer when it also decides reads (an *authz.Authorizer
// does), else the default policy.
func (s *Service) reads() Readers {
	if s.Reads != nil {
		return s.Reads
	}
	if r, ok := s.Authz.(Readers); ok {
		return r
	}
	return authz.Static()
}

// Classify sorts err into the error contract (refusal.Of), logging what is not the client's
// doing.
func (s *Service) Classify(ctx context.Context, err error) *refusal.Error {
	e := refusal.Of(ctx, err)
	switch {
	case e.Status >= 500 && e.Code != refusal.Timeout:
		s.Log.ErrorContext(ctx, "request failed", "err", err)
	case refusal.Permanent(err) != nil:
		s.Log.WarnContext(ctx, "input refused by the database", "err", err)
	}
	return e
}

// NewID returns a random identifier: IDs are not sequential, so they leak no volumes.
func NewID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// On names what a refused attempt was aimed at, for its audit entry.
type On struct {
	Measure, Case, Stage string
}

// Refused audits an attempt refused before it changed anything: the one place refusals are
// written (activities write the ones they meet themselves). Adapters call it for input they
// could not decode; the service calls it for everything else.
func (s *Service) Refused(ctx context.Context, a authz.Actor, on On, action string, err error) {
	if s.Refusals != nil {
		// Counted by rule, or, for refusals no rule makes (a reused key, a wrong stage), by kind.
		label := refusal.RuleOf(err)
		var e *refusal.Error
		if label == "" && errors.As(err, &e) {
			label = e.Code
		}
		s.Refusals(label)
	}
	if measure.CheckLine("measure", on.Measure, measure.MaxID) != nil {
		on.Measure = "" // not an ID we issued: the reason says what was refused
	}
	if measure.CheckLine("case", on.Case, measure.MaxID) != nil {
		on.Case = ""
	}
	rec := &audit.Record{PolicyVersion: s.Authz.Version(),
		Actor:  auditActor(a),
		Action: "refused." + action, Case: on.Case, Measure: on.Measure, From: on.Stage, To: on.Stage,
		Reason: measure.Clip(strings.ToValidUTF8(err.Error(), "\uFFFD"), measure.MaxText), Details: map[string]any{"rule": refusal.RuleOf(err)},
	}
	// The refusal is logged even when the request's own deadline has passed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	txErr := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error { return s.Audit.Append(ctx, tx, "refused/"+NewID(""), rec) })
	if txErr != nil {
		s.Log.ErrorContext(ctx, "audit refusal", "action", action, "measure", on.Measure, "err", txErr)
	}
}

// refuse audits err when it is a refusal and returns it.
func (s *Service) refuse(ctx context.Context, a authz.Actor, on On, action string, err error) error {
	if err != nil && refusal.Is(err) {
		s.Refused(ctx, a, on, action, err)
	}
	return err
}

// append writes one audit record by a in tx.
func (s *Service) append(ctx context.Context, tx pgx.Tx, a authz.Actor, key string, r *audit.Record) error {
	// Nothing is accepted that the log cannot sign. Reads and refusals are still recorded,
	// to be signed once the log is trusted again: auditors must be able to look.
	if !strings.HasPrefix(r.Action, "read.") && !strings.HasPrefix(r.Action, "refused.") {
		if err := s.logSigns(ctx, tx); err != nil { // in tx: no second connection while it is held
			return err
		}
	}
	r.PolicyVersion = s.Authz.Version()
	r.Actor = auditActor(a)
	return s.Audit.Append(ctx, tx, key, r)
}

func auditActor(a authz.Actor) audit.Actor {
	roles := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		roles[i] = string(r)
	}
	return audit.Actor{ID: a.ID, Roles: roles, Org: a.Org}
}

// logSigns refuses (503) while a halt of the audit log stands: the database disagrees with
// what it signed, or a witness refused its checkpoint. It reads the halts afresh for every
// action (an index of the standing ones makes that cheap), and the activity that records the
// action reads them again in its transaction: nothing is accepted from the instant a halt is
// recorded, and everything again from the instant it is cleared. Nor is anything accepted
// while a sequencer's start-up check runs.
func (s *Service) logSigns(ctx context.Context, q audit.Querier) error {
	problems, err := audit.Blocked(ctx, q)
	if err != nil {
		return err
	}
	if len(problems) > 0 && problems[0] == audit.StartupCheck {
		e := refusal.New(refusal.Unavailable, refusal.StartupCheck)
		e.RetryAfter = 2 * time.Second
		return e
	}
	if len(problems) > 0 {
		return refusal.New(refusal.Unavailable, "the audit log has stopped signing (%s): nothing is accepted that it cannot sign; an operator must investigate",
			measure.Clip(problems[0], measure.MaxLine))
	}
	return nil
}

// MaxPage bounds one page of a list.
const MaxPage = 500

// Page is which part of a list to return.
type Page struct {
	Limit, Offset int
}

// Check fills the default limit (50) and refuses what is out of range.
func (p *Page) Check() error {
	if p.Limit == 0 {
		p.Limit = 50
	}
	if p.Limit < 1 || p.Limit > MaxPage {
		return &measure.FieldError{Field: "limit", Message: fmt.Sprintf("must be a number from 1 to %d", MaxPage)}
	}
	if p.Offset < 0 {
		return &measure.FieldError{Field: "offset", Message: "must be a number from 0"}
	}
	return nil
}
