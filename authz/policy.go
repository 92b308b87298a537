package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// modelText is the Casbin model: role-based access with domains (each principal's
// organisation), deny overriding allow, and the separation-of-duties functions over the
// measure's history called from the matcher. A read ("read") matches the read rules whose
// relation (read.go) the subject stands in to the reader; "*" names every operation, not
// reads.
const modelText = `
[request_definition]
r = sub, dom, act, req

[policy_definition]
p = role, act, eft

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.role, r.dom) && ((r.act != "read" && (p.act == r.act || p.act == "*") && sod(r.act, r.req)) || (r.act == "read" && relates(p.act, r.req)))
`

// Rule is one policy line: a role may (allow) or may never (deny) take an operation ("*" is
// every operation), or must sign its decisions of one personally (sign; the role "*" is every
// role).
type Rule struct {
	Role   Role   `json:"role"`
	Op     string `json:"op"`
	Effect string `json:"effect"` // allow | deny | sign
}

// AnyRole stands for every role in a sign rule.
const AnyRole Role = "*"

// Administrators' approvals, which a policy may require to be signed like decisions: each puts
// in force what another administrator proposed.
const (
	OpApproveKey        Op = "approve_key"
	OpApprovePolicy     Op = "approve_policy"
	OpApproveRoleChange Op = "approve_role_change"
)

// SignableOps are the decisions a policy may require to be personally signed: each judges a
// version of a measure, records an executor's batch of steps, or approves an administrator's
// proposal.
var SignableOps = []Op{OpLegalReview, OpCommandReview, OpRecordGate, OpDeclareConflict, OpVote, OpRequestInfo, OpPostHocDecision, OpVerifyReport,
	OpLogSteps, OpDeclareEmergency, OpIssueOrder, OpApproveKey, OpApprovePolicy, OpApproveRoleChange}

// MustSign says whether, under rules, an actor holding roles must sign op personally.
func MustSign(rules []Rule, op Op, roles []Role) bool {
	for _, r := range rules {
		if r.Effect == "sign" && r.Op == string(op) && (r.Role == AnyRole || slices.Contains(roles, r.Role)) {
			return true
		}
	}
	return false
}

// SigningPolicy is DefaultPolicy with every decision personally signed: the reviews, gates,
// conflict declarations, votes, information requests and post-hoc reviews, the report
// verifications, the executors' batches of steps and the administrators' approvals. It cannot
// be an installation's first version: nobody holds a key before the first administrators
// register theirs and approve each other's, so they put it in force then (README, "Signed
// decisions").
func SigningPolicy() []Rule {
	rules := DefaultPolicy()
	for _, op := range SignableOps {
		rules = append(rules, Rule{Role: AnyRole, Op: string(op), Effect: "sign"})
	}
	return rules
}

// Grant gives a principal a role within its organisation.
type Grant struct {
	User string
	Role Role
	Org  string
}

// DefaultPolicy is the policy of DESIGN section 4: each operation's roles, and auditors and
// administrators denied every case operation (rule 8).
func DefaultPolicy() []Rule {
	var rules []Rule
	for _, op := range Ops {
		for _, r := range defaultRoles[op] {
			rules = append(rules, Rule{Role: r, Op: string(op), Effect: "allow"})
		}
	}
	for _, op := range ReadOps {
		for _, r := range defaultReads[op] {
			rules = append(rules, Rule{Role: r, Op: op, Effect: "allow"})
		}
	}
	return append(rules, Rule{Role: Auditor, Op: "*", Effect: "deny"}, Rule{Role: Admin, Op: "*", Effect: "deny"})
}

// request is what the matcher's functions receive: the facts of the measure acted on, or the
// subject read.
type request struct {
	actor   Actor
	facts   Facts
	now     time.Time
	subject Subject
}

// Authorizer decides with one version of the policy; Load swaps in another atomically.
type Authorizer struct {
	current atomic.Pointer[policyState]
	// Verify, when set, checks a version's rules before Reload puts them in force (against
	// what the audit log recorded of it): an error keeps the version in force.
	Verify func(ctx context.Context, version int, rules []Rule) error
}

type policyState struct {
	version  string
	enforcer *casbin.Enforcer
	rules    []Rule
}

// NewAuthorizer returns an authorizer enforcing rules and grants as policy version version.
func NewAuthorizer(version string, rules []Rule, grants []Grant) (*Authorizer, error) {
	a := &Authorizer{}
	return a, a.Load(version, rules, grants)
}

// Load replaces the policy in force.
func (a *Authorizer) Load(version string, rules []Rule, grants []Grant) error {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return fmt.Errorf("authz model: %w", err)
	}
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		return fmt.Errorf("authz enforcer: %w", err)
	}
	e.AddFunction("sod", func(args ...any) (any, error) {
		if len(args) != 2 {
			return false, errors.New("sod: want (act, req)")
		}
		op, _ := args[0].(string)
		req, ok := args[1].(*request)
		if !ok {
			return false, errors.New("sod: bad request")
		}
		return SoD(Op(op), req.actor, req.facts, req.now) == nil, nil
	})
	e.AddFunction("relates", func(args ...any) (any, error) {
		if len(args) != 2 {
			return false, errors.New("relates: want (rel, req)")
		}
		rel, _ := args[0].(string)
		req, ok := args[1].(*request)
		if !ok {
			return false, errors.New("relates: bad request")
		}
		return relates(rel, req.actor, req.subject), nil
	})
	for _, r := range rules {
		if r.Effect == "sign" {
			continue // not Casbin's to enforce: MustSign reads it
		}
		if r.Effect != "allow" && r.Effect != "deny" {
			return fmt.Errorf("policy rule %v: effect must be allow, deny or sign", r)
		}
		if _, err := e.AddPolicy(string(r.Role), r.Op, r.Effect); err != nil {
			return err
		}
	}
	for _, g := range grants {
		if _, err := e.AddGroupingPolicy(g.User, string(g.Role), g.Org); err != nil {
			return err
		}
	}
	a.current.Store(&policyState{version: version, enforcer: e, rules: slices.Clone(rules)})
	return nil
}

// Version names the policy in force; audit records carry it.
func (a *Authorizer) Version() string { return a.current.Load().version }

// Rules returns the rules in force.
func (a *Authorizer) Rules() []Rule { return slices.Clone(a.current.Load().rules) }

// Check decides whether actor may take op on the measure described by f at time now: the role
// policy (Casbin, with the actor's grants as loaded) and the separation-of-duties rules. It
// returns nil or a *Denied naming the rule.
func (a *Authorizer) Check(op Op, actor Actor, f Facts, now time.Time) error {
	if _, ok := defaultRoles[op]; !ok {
		return deny("unknown-operation", "%q is not an operation", op)
	}
	st := a.current.Load()
	ok, err := st.enforcer.Enforce(actor.ID, actor.Org, string(op), &request{actor: actor, facts: f, now: now})
	if err != nil {
		return fmt.Errorf("authorize %s: %w", op, err)
	}
	if ok {
		return nil
	}
	// Name the rule: the role policy first, then the separation of duties.
	roles := st.enforcer.GetRolesForUserInDomain(actor.ID, actor.Org)
	for _, r := range st.rules {
		if r.Effect == "deny" && (r.Op == "*" || r.Op == string(op)) && slices.Contains(roles, string(r.Role)) {
			if r.Role == Auditor || r.Role == Admin {
				return deny("SoD-8", "auditors only read and administrators have no case powers (policy %s)", st.version)
			}
			return deny("policy", "the role %s is denied %s by policy %s", r.Role, op, st.version)
		}
	}
	var allowed []string
	granted := false
	for _, r := range st.rules {
		if r.Effect == "allow" && (r.Op == string(op) || r.Op == "*") {
			allowed = append(allowed, string(r.Role))
			granted = granted || slices.Contains(roles, string(r.Role))
		}
	}
	if !granted {
		return deny("role", "%s needs one of the roles %v (policy %s)", op, allowed, st.version)
	}
	if err := SoD(op, actor, f, now); err != nil {
		return err
	}
	return deny("policy", "%s refused by policy %s", op, st.version)
}

// Static returns an authorizer for the default policy, with grants taken from each actor's
// own roles: for tests and tools without a database.
func Static() *StaticAuthorizer { return &StaticAuthorizer{} }

// StaticAuthorizer enforces the default policy on the roles actors carry.
type StaticAuthorizer struct{}

// Check is Authorizer.Check with the default policy and the actor's roles as grants.
func (StaticAuthorizer) Check(op Op, actor Actor, f Facts, now time.Time) error {
	a, err := staticFor(actor)
	if err != nil {
		return err
	}
	return a.Check(op, actor, f, now)
}

// Version names the default policy.
func (StaticAuthorizer) Version() string { return "default" }

// Rules returns the default policy.
func (StaticAuthorizer) Rules() []Rule { return DefaultPolicy() }

// staticFor is an authorizer of the default policy granting actor its own roles.
func staticFor(actor Actor) (*Authorizer, error) {
	var grants []Grant
	for _, r := range actor.Roles {
		grants = append(grants, Grant{User: actor.ID, Role: r, Org: actor.Org})
	}
	return NewAuthorizer("default", DefaultPolicy(), grants)
}

// CheckPolicy refuses a rule set that would break the separation of duties whatever the
// grants: case powers for administrators or auditors (SoD-8), Commission operations for agency
// roles or agency operations for Commission roles (SoD-2), or a set without rule 8's denials.
func CheckPolicy(rules []Rule) error {
	denied := map[Role]bool{}
	for i, r := range rules {
		if !slices.Contains(Roles, r.Role) && (r.Role != AnyRole || r.Effect != "sign") {
			return deny("policy", "rule %d: %q is not a role", i, r.Role)
		}
		if r.Effect == "sign" {
			if !slices.Contains(SignableOps, Op(r.Op)) {
				return deny("policy", "rule %d: %s is not a decision that can be signed; signed decisions are %v", i, r.Op, SignableOps)
			}
			continue
		}
		if r.Op != "*" && !slices.Contains(Ops, Op(r.Op)) && !slices.Contains(ReadOps, r.Op) {
			return deny("policy", "rule %d: %q is not an operation or a read relation", i, r.Op)
		}
		if r.Effect != "allow" && r.Effect != "deny" {
			return deny("policy", "rule %d: effect must be allow, deny or sign", i)
		}
		if isRead(r.Op) {
			// Reads are narrowed by leaving a relation out, never by denial: the list filter
			// (Scope) is then exactly the union of what is allowed.
			if r.Effect != "allow" {
				return deny("policy", "rule %d: read relations are allowed or left out, not denied", i)
			}
			if r.Role == Admin {
				return deny("SoD-8", "rule %d lets administrators read case content (%s)", i, r.Op)
			}
			continue
		}
		if r.Effect == "deny" {
			if r.Op == "*" {
				denied[r.Role] = true
			}
			continue
		}
		if r.Role == Admin || r.Role == Auditor {
			return deny("SoD-8", "rule %d gives %s the case power %s", i, r.Role, r.Op)
		}
		if r.Op == "*" {
			return deny("policy", "rule %d: allow rules name one operation", i)
		}
		defaults := defaultRoles[Op(r.Op)]
		agencyOp := slices.ContainsFunc(defaults, AgencyRole)
		commissionOp := slices.ContainsFunc(defaults, CommissionRole)
		if (AgencyRole(r.Role) && commissionOp && !agencyOp) || (CommissionRole(r.Role) && agencyOp && !commissionOp) {
			return deny("SoD-2", "rule %d gives %s the %s operation %s", i, r.Role, map[bool]string{true: "Commission", false: "agency"}[commissionOp], r.Op)
		}
	}
	if !denied[Admin] || !denied[Auditor] {
		return deny("SoD-8", "the policy must deny administrators and auditors every case operation (\"admin, *, deny\" and \"auditor, *, deny\")")
	}
	return nil
}
