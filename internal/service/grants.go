package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/workflows"
)

// Roles and designations are honoured only as the signed log records them. The tables
// role_grants and executor_designations are what an operator with the database's credentials
// can edit (grant themselves a Commission role, widen a prefectural designation to NPA scope,
// undo a revocation); so every principal's roles and designations, as the tables hold them,
// are compared with the authenticated records that granted and revoked them before the
// principal acts or reads. A difference refuses the request, halts the log and raises an alert.
// Records not signed yet count when the service wrote them (their authenticator is its own): a
// role granted a moment ago is honoured at once.

// signedDesignation is a designation as its signed records say.
type signedDesignation struct {
	user, scope string
	from, until time.Time
	revoked     bool
	index       int64 // the entry that issued it
}

// grantLog holds the roles and designations the log records, read incrementally in log
// order: each refresh reads only the entries signed since the last.
type grantLog struct {
	mu           sync.Mutex
	next         int64
	roles        map[string]map[string]bool // user → role → granted
	designations map[string]*signedDesignation
}

// grantRecord is what a grant's or designation's record holds.
type grantRecord struct {
	Action  string `json:"action"`
	Details struct {
		User        string    `json:"user"`
		Role        string    `json:"role"`
		Designation string    `json:"designation"`
		Scope       string    `json:"scope"`
		From        time.Time `json:"valid_from"`
		Until       time.Time `json:"valid_until"`
	} `json:"details"`
}

// grantActions mark, in a record's bytes, what fold reads; other records are not decoded.
var grantActions = [][]byte{[]byte(`"role.`), []byte(`"designation.`), []byte(`"user.created"`), []byte(`"user.bootstrapped"`)}

// fold applies one authenticated record: the same rules reconcile folds role_grants and
// executor_designations with.
func (l *grantLog) fold(idx int64, raw []byte) {
	if !slices.ContainsFunc(grantActions, func(m []byte) bool { return bytes.Contains(raw, m) }) {
		return
	}
	var r grantRecord
	if json.Unmarshal(raw, &r) != nil {
		return
	}
	d := r.Details
	grant := func(role string, on bool) {
		if d.User == "" || role == "" {
			return
		}
		if l.roles[d.User] == nil {
			l.roles[d.User] = map[string]bool{}
		}
		l.roles[d.User][role] = on
	}
	switch r.Action {
	case "role.granted", "user.created":
		grant(d.Role, true)
	case "user.bootstrapped":
		grant(string(authz.Admin), true)
	case "role.revoked":
		grant(d.Role, false)
	case "designation.issued":
		if d.Designation != "" {
			l.designations[d.Designation] = &signedDesignation{user: d.User, scope: d.Scope, from: d.From, until: d.Until, index: idx}
		}
	case "designation.revoked":
		if s := l.designations[d.Designation]; s != nil {
			s.revoked = true
		}
	}
}

// refresh reads the entries signed since the last refresh. An entry the service did not write
// (its authenticator is not the service's) is not believed.
func (l *grantLog) refresh(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, app *audit.Appender) error {
	if l.roles == nil {
		l.roles, l.designations = map[string]map[string]bool{}, map[string]*signedDesignation{}
	}
	rows, err := q.Query(ctx, `SELECT l.idx, e.id, e.record, e.auth FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id
		WHERE l.idx >= $1 AND e.measure_id IS NULL ORDER BY l.idx`, l.next)
	if err != nil {
		return fmt.Errorf("read the signed grants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var id string
		var raw, auth []byte
		if err := rows.Scan(&idx, &id, &raw, &auth); err != nil {
			return fmt.Errorf("read the signed grants: %w", err)
		}
		l.next = idx + 1
		if trusted(app, id, raw, auth, true) {
			l.fold(idx, raw)
		}
	}
	return rows.Err()
}

// trusted reports whether an entry is the service's: its authenticator holds, or it was
// signed before entries carried one (migration 018; the sequencer re-hashes signed entries
// against the tree it signed, at every start and every -log-recheck).
func trusted(app *audit.Appender, id string, raw, auth []byte, signed bool) bool {
	return app.Authentic(id, raw, auth) || signed && auth == nil
}

// withPending returns a copy of l with the authenticated entries not signed yet (and any
// signed since the last refresh) folded on top: a role granted a moment ago is the service's
// own doing, not an edit around it.
func (l *grantLog) withPending(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, app *audit.Appender) (*grantLog, error) {
	c := &grantLog{roles: map[string]map[string]bool{}, designations: map[string]*signedDesignation{}}
	for u, rs := range l.roles {
		c.roles[u] = map[string]bool{}
		for r, on := range rs {
			c.roles[u][r] = on
		}
	}
	for id, d := range l.designations {
		x := *d
		c.designations[id] = &x
	}
	// One statement reads what refresh has not folded: entries not signed yet, and those
	// signed since it ran (an entry signed between the two reads would be in neither).
	rows, err := q.Query(ctx, `SELECT e.id, e.record, e.auth, l.idx FROM audit_entries e LEFT JOIN audit_log l ON l.entry_id = e.id
		WHERE e.measure_id IS NULL AND (l.idx IS NULL OR l.idx >= $1) ORDER BY l.idx NULLS LAST, e.tx, e.id`, l.next)
	if err != nil {
		return nil, fmt.Errorf("read the grants not signed yet: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var raw, auth []byte
		var idx *int64
		if err := rows.Scan(&id, &raw, &auth, &idx); err != nil {
			return nil, fmt.Errorf("read the grants not signed yet: %w", err)
		}
		if trusted(app, id, raw, auth, idx != nil) {
			at := int64(-1)
			if idx != nil {
				at = *idx
			}
			c.fold(at, raw)
		}
	}
	return c, rows.Err()
}

// tamperedGrant is a role or designation whose row differs from what the log recorded.
type tamperedGrant struct {
	what, table, logged string
}

func (e *tamperedGrant) Error() string {
	return fmt.Sprintf("%s as stored (%s) is not what the audit log recorded (%s): the database was altered; nothing is done under it (tell an auditor)",
		e.what, e.table, e.logged)
}

// signedActor returns a with the roles and designations the tables hold, once each is found
// as the log recorded it. A designation no record issued is left out. A role or designation
// the tables hold otherwise than the log refuses the request, halts the log and raises an
// alert.
func (s *Service) signedActor(ctx context.Context, a authz.Actor) (authz.Actor, error) {
	rows, err := s.DB.Query(ctx, `SELECT id, scope, valid_from, valid_until FROM executor_designations
		WHERE user_id = $1 AND revoked_at IS NULL ORDER BY valid_from, id`, a.ID)
	if err != nil {
		return a, fmt.Errorf("read designations of %s: %w", a.ID, err)
	}
	type row struct {
		id string
		authz.Designation
	}
	table, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.Scope, &x.ValidFrom, &x.ValidUntil)
		return x, err
	})
	if err != nil {
		return a, fmt.Errorf("read designations of %s: %w", a.ID, err)
	}
	l := &s.grants
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refresh(ctx, s.DB, s.Audit); err != nil {
		return a, err
	}
	logged := l
	for _, r := range a.Roles {
		if !logged.roles[a.ID][string(r)] && logged == l {
			if logged, err = l.withPending(ctx, s.DB, s.Audit); err != nil {
				return a, err
			}
		}
		if !logged.roles[a.ID][string(r)] {
			return a, s.tampered(ctx, &tamperedGrant{what: "role " + string(r) + " of " + a.ID, table: "granted", logged: "never granted, or revoked"}, -1)
		}
	}
	say := func(user, scope string, from, until time.Time, revoked bool) string {
		out := fmt.Sprintf("%s, %s, %s to %s", user, scope, from.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
		if revoked {
			out += ", revoked"
		}
		return out
	}
	a.Designations = nil
	for _, t := range table {
		sd := logged.designations[t.id]
		if sd == nil && logged == l {
			if logged, err = l.withPending(ctx, s.DB, s.Audit); err != nil {
				return a, err
			}
			sd = logged.designations[t.id]
		}
		if sd == nil {
			continue // inserted around the service: never honoured (reconcile names it)
		}
		if sd.user != a.ID || sd.scope != t.Scope || !sameMicro(sd.from, t.ValidFrom) || !sameMicro(sd.until, t.ValidUntil) || sd.revoked {
			return a, s.tampered(ctx, &tamperedGrant{what: "designation " + t.id, table: say(a.ID, t.Scope, t.ValidFrom, t.ValidUntil, false),
				logged: say(sd.user, sd.scope, sd.from, sd.until, sd.revoked)}, sd.index)
		}
		a.Designations = append(a.Designations, t.Designation)
	}
	return a, nil
}

// tampered raises the alert, halts the log and returns the refusal for a tampered grant.
func (s *Service) tampered(ctx context.Context, e *tamperedGrant, entry int64) error {
	s.Log.ErrorContext(ctx, "ALERT: a role or designation differs from its record in the audit log; the request was refused and the log halted",
		"grant", e.what, "entry", entry, "err", e)
	if err := audit.Halt(context.WithoutCancel(ctx), s.DB, "grant: "+measure.Clip(e.Error(), measure.MaxLine)); err != nil {
		s.Log.ErrorContext(ctx, "record the halt", "err", err)
	}
	return &authz.Denied{Rule: "seal", Reason: e.Error()}
}

// sameMicro compares two instants as PostgreSQL keeps them (to the microsecond).
func sameMicro(x, y time.Time) bool {
	return x.Truncate(time.Microsecond).Equal(y.Truncate(time.Microsecond))
}

// VerifyPolicy checks a policy version about to be put in force against the audit log: its
// rules must be those its authenticated proposal recorded, and an authenticated approval must
// exist (version 1 is the default the server writes on first start, authz.DefaultPolicy). A
// version written or altered in SQL (a rule slipped in, an approval set by hand) is refused,
// the log halted and an alert raised; the version in force stays.
func (s *Service) VerifyPolicy(ctx context.Context, version int, rules []authz.Rule) error {
	// A newer version the log records approved must not give way to an older one: un-approving
	// a version in SQL would otherwise roll the policy back (a signature requirement dropped).
	newer, err := s.newestApproved(ctx)
	if err != nil {
		return err
	}
	if newer > version {
		// Approved while this reload read the table (its own notification reloads again), or
		// un-approved in SQL: the table tells which.
		var inTable int
		if err := s.DB.QueryRow(ctx, `SELECT COALESCE(max(version), 1) FROM authz_policy_versions WHERE approved_by IS NOT NULL`).Scan(&inTable); err != nil {
			return fmt.Errorf("read the policy versions: %w", err)
		}
		if inTable >= newer {
			return fmt.Errorf("policy v%d was approved while v%d was being loaded: loading it next", newer, version)
		}
		return s.policyTampered(ctx, version, fmt.Sprintf("the log records v%d approved after it", newer))
	}
	var want []string
	if version == 1 {
		want = ruleSet(authz.DefaultPolicy())
	} else {
		approved, err := s.trustedRecord(ctx, fmt.Sprintf("policy/v%d/approved", version))
		if err != nil {
			return err
		}
		lines, ok, err := s.loggedRuleSet(ctx, version)
		if err != nil {
			return err
		}
		if !ok || approved == nil || approved.Details["version"] != fmt.Sprintf("v%d", version) {
			return s.policyTampered(ctx, version, "no record of its proposal and approval")
		}
		want = lines
	}
	got := ruleSet(rules)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return s.policyTampered(ctx, version, fmt.Sprintf("its %d rules are not the %d its proposal recorded", len(got), len(want)))
	}
	return nil
}

// loggedRuleSet reads the rules a policy version's authenticated proposal recorded ("effect
// role op" each, in its order); ok is false when the log holds no such proposal.
func (s *Service) loggedRuleSet(ctx context.Context, version int) (lines []string, ok bool, err error) {
	proposed, err := s.trustedRecord(ctx, fmt.Sprintf("policy/v%d/proposed", version))
	if err != nil || proposed == nil || proposed.Details["version"] != fmt.Sprintf("v%d", version) {
		return nil, false, err
	}
	list, _ := proposed.Details["rule_set"].([]any)
	if moved, ok := proposed.Details[audit.Companions].(map[string]any); ok && moved["rule_set"] != nil {
		ref, _ := moved["rule_set"].(string)
		if list, err = s.companionList(ctx, ref); err != nil {
			return nil, false, err
		}
	}
	for _, r := range list {
		r, _ := r.(string)
		lines = append(lines, r)
	}
	return lines, true, nil
}

// proposedRuleSet is the digest of the rules a policy version's proposal recorded, which its
// approval states.
func (s *Service) proposedRuleSet(ctx context.Context, version int) (string, error) {
	lines, ok, err := s.loggedRuleSet(ctx, version)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", s.policyTampered(ctx, version, "no record of its proposal")
	}
	return audit.RuleSetDigest(lines), nil
}

// newestApproved is the highest policy version whose approval the service recorded.
func (s *Service) newestApproved(ctx context.Context) (int, error) {
	// The range lets the key's unique index find the approvals; LIKE keeps exactly them.
	rows, err := s.DB.Query(ctx, `SELECT key FROM audit_entries WHERE key >= 'policy/v' AND key < 'policy/w' AND key LIKE 'policy/v%/approved'`)
	if err != nil {
		return 0, fmt.Errorf("read the policy approvals: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("read the policy approvals: %w", err)
	}
	got, err := s.trustedRecords(ctx, s.DB, keys)
	if err != nil {
		return 0, err
	}
	newest := 0
	for k := range got {
		var n int
		if _, err := fmt.Sscanf(k, "policy/v%d/approved", &n); err == nil && n > newest {
			newest = n
		}
	}
	return newest, nil
}

// trustedRecord reads the entry a key names, when the service wrote it; nil when none did.
func (s *Service) trustedRecord(ctx context.Context, key string) (*audit.Record, error) {
	got, err := s.trustedRecords(ctx, s.DB, []string{key})
	if err != nil {
		return nil, err
	}
	if r, ok := got[key]; ok {
		return &r, nil
	}
	return nil, nil
}

// querier is the pool or a transaction: a lookup made while a transaction holds a connection
// and a row lock runs in that transaction, so it neither waits for a second connection nor
// sees a different snapshot.
type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// trustedRecords reads the entries the keys name, by key, leaving out any the service did not
// write (no valid authenticator and not signed with a nil one) or that does not decode.
func (s *Service) trustedRecords(ctx context.Context, q querier, keys []string) (map[string]audit.Record, error) {
	ids := make([]string, len(keys))
	keyOf := make(map[string]string, len(keys))
	for i, k := range keys {
		ids[i] = audit.EntryID(k)
		keyOf[ids[i]] = k
	}
	rows, err := q.Query(ctx, `SELECT e.id, e.record, e.auth, EXISTS (SELECT 1 FROM audit_log l WHERE l.entry_id = e.id)
		FROM audit_entries e WHERE e.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the records: %w", err)
	}
	defer rows.Close()
	out := make(map[string]audit.Record, len(keys))
	for rows.Next() {
		var id string
		var raw, auth []byte
		var signed bool
		if err := rows.Scan(&id, &raw, &auth, &signed); err != nil {
			return nil, fmt.Errorf("read the records: %w", err)
		}
		var r audit.Record
		if !trusted(s.Audit, id, raw, auth, signed) || json.Unmarshal(raw, &r) != nil {
			continue
		}
		out[keyOf[id]] = r
	}
	return out, rows.Err()
}

// companionList reads a list a record moved to companion data, checked against its hash.
func (s *Service) companionList(ctx context.Context, ref string) ([]any, error) {
	sum := strings.TrimPrefix(ref, "sha256:")
	var content []byte
	if err := s.DB.QueryRow(ctx, `SELECT content FROM audit_companions WHERE sha256 = $1`, sum).Scan(&content); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read companion %s: %w", ref, err)
	}
	if h := sha256.Sum256(content); hex.EncodeToString(h[:]) != sum {
		return nil, nil // missing or altered: the rules are not what was recorded
	}
	var list []any
	_ = json.Unmarshal(content, &list)
	return list, nil
}

func (s *Service) policyTampered(ctx context.Context, version int, why string) error {
	problem := fmt.Sprintf("policy: version v%d as stored is not what the audit log recorded (%s): the database was altered; the policy in force stays", version, why)
	s.Log.ErrorContext(ctx, "ALERT: "+problem, "version", version)
	if err := audit.Halt(context.WithoutCancel(ctx), s.DB, measure.Clip(problem, measure.MaxLine)); err != nil {
		s.Log.ErrorContext(ctx, "record the halt", "err", err)
	}
	return errors.New(problem)
}

// loggedOrgs returns the organisation each case's authenticated creation record names (a case
// without one, inserted around the service, is absent: reconcile names it).
func (s *Service) loggedOrgs(ctx context.Context, q querier, cases []string) (map[string]string, error) {
	keys := make([]string, len(cases))
	for i, c := range cases {
		keys[i] = "case/" + c
	}
	got, err := s.trustedRecords(ctx, q, keys)
	if err != nil {
		return nil, fmt.Errorf("read the cases' creation records: %w", err)
	}
	out := make(map[string]string, len(cases))
	for i, c := range cases {
		if r, ok := got[keys[i]]; ok && r.Action == "case.created" && r.Case == c {
			out[c] = r.Actor.Org
		}
	}
	return out, nil
}

// caseOrg returns the organisation a case belongs to as its creation record says. A table
// that says otherwise (a case moved to another agency in SQL) is overruled, the log halted and
// an alert raised: need-to-know follows the record, so the other agency reads nothing.
func (s *Service) caseOrg(ctx context.Context, caseID, inTable string, logged map[string]string) string {
	org, ok := logged[caseID]
	if !ok || org == inTable {
		return inTable
	}
	problem := fmt.Sprintf("case: case %s as stored belongs to %s, its creation record to %s: the database was altered; reads follow the record", caseID, inTable, org)
	s.Log.ErrorContext(ctx, "ALERT: "+problem, "case", caseID)
	if err := audit.Halt(context.WithoutCancel(ctx), s.DB, measure.Clip(problem, measure.MaxLine)); err != nil {
		s.Log.ErrorContext(ctx, "record the halt", "err", err)
	}
	return org
}

// holdOrgs puts each row's organisation as its case's creation record says.
func (s *Service) holdOrgs(ctx context.Context, cases []string, orgs []*string) error {
	logged, err := s.loggedOrgs(ctx, s.DB, cases)
	if err != nil {
		return err
	}
	for i, c := range cases {
		*orgs[i] = s.caseOrg(ctx, c, *orgs[i], logged)
	}
	return nil
}

// loggedCases returns the case each measure's authenticated creation record names.
func (s *Service) loggedCases(ctx context.Context, q querier, measures []string) (map[string]string, error) {
	keys := make([]string, len(measures))
	for i, m := range measures {
		keys[i] = workflows.ID(m) + "/0"
	}
	got, err := s.trustedRecords(ctx, q, keys)
	if err != nil {
		return nil, fmt.Errorf("read the measures' creation records: %w", err)
	}
	out := make(map[string]string, len(measures))
	for i, m := range measures {
		if r, ok := got[keys[i]]; ok && r.Action == "measure.created" && r.Measure == m {
			out[m] = r.Case
		}
	}
	return out, nil
}

// holdMeasures puts each measure's case and organisation as the creation records say: a
// measure moved to another case in SQL stays in its own (and its agency's), and the log halts.
// q is the transaction the rows were read in, if any.
func (s *Service) holdMeasures(ctx context.Context, q querier, ids []string, cases, orgs []*string) error {
	logged, err := s.loggedCases(ctx, q, ids)
	if err != nil {
		return err
	}
	moved := make([]bool, len(ids))
	caseIDs := make([]string, len(ids))
	for i, id := range ids {
		if c, ok := logged[id]; ok && c != *cases[i] {
			problem := fmt.Sprintf("measure: measure %s as stored is in case %s, its creation record in %s: the database was altered; reads follow the record", id, *cases[i], c)
			s.Log.ErrorContext(ctx, "ALERT: "+problem, "measure", id)
			if err := audit.Halt(context.WithoutCancel(ctx), s.DB, measure.Clip(problem, measure.MaxLine)); err != nil {
				s.Log.ErrorContext(ctx, "record the halt", "err", err)
			}
			*cases[i], moved[i] = c, true
		}
		caseIDs[i] = *cases[i]
	}
	orgOf, err := s.loggedOrgs(ctx, q, caseIDs)
	if err != nil {
		return err
	}
	for i := range ids {
		if moved[i] {
			*orgs[i] = orgOf[caseIDs[i]] // the table's organisation is the wrong case's
			continue
		}
		*orgs[i] = s.caseOrg(ctx, caseIDs[i], *orgs[i], orgOf)
	}
	return nil
}
