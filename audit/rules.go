package audit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ruleSet is one approved authorization policy version as the log recorded it: for each
// operation ("*" for all), the roles allowed and the roles denied.
type ruleSet struct {
	allow, deny map[string][]string
	// sign lists, for each operation, the roles whose decisions must carry the person's own
	// signature ("*" for every role).
	sign map[string][]string
}

// parseRuleSet reads a policy.proposed record's rule_set ("effect role op" each). It reports
// false on a line of another shape.
func parseRuleSet(lines []string) (ruleSet, bool) {
	rs := ruleSet{allow: map[string][]string{}, deny: map[string][]string{}, sign: map[string][]string{}}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 {
			return rs, false
		}
		switch f[0] {
		case "allow":
			rs.allow[f[2]] = append(rs.allow[f[2]], f[1])
		case "deny":
			rs.deny[f[2]] = append(rs.deny[f[2]], f[1])
		case "sign":
			rs.sign[f[2]] = append(rs.sign[f[2]], f[1])
		default:
			return rs, false
		}
	}
	return rs, true
}

// permits says whether an actor holding roles may take op: one role allowed it (or every
// operation) and none is denied it, as the product's Casbin model decides.
func (rs ruleSet) permits(op string, roles []string) bool {
	return (hasAny(roles, rs.allow[op]) || hasAny(roles, rs.allow["*"])) && !hasAny(roles, rs.deny[op]) && !hasAny(roles, rs.deny["*"])
}

// mustSign says whether an actor holding roles must sign op personally under rs.
func (rs ruleSet) mustSign(op string, roles []string) bool {
	return slices.Contains(rs.sign[op], "*") || hasAny(roles, rs.sign[op])
}

// allowed lists who may take op under rs, for messages.
func (rs ruleSet) allowed(op string) []string {
	return append(slices.Clone(rs.allow[op]), rs.allow["*"]...)
}

// opOf is the authorization operation a recorded action was checked as.
func opOf(action string) string {
	switch action {
	case "measure.created", "targets.added", "targets.removed", "evidence.added", "plan.updated":
		return "edit_draft"
	}
	return action
}

// builtinPolicies name the policy a database starts with (version 1, DESIGN section 4's
// roles, which the replay's own table holds) and the names records carry when no stored
// policy was loaded.
var builtinPolicies = map[string]bool{"": true, PolicyVersion: true, "default": true, "v1": true}

// designation is an executor designation as the log recorded it.
type designation struct {
	user, scope  string
	from, until  time.Time
	revoked      time.Time // zero while in force
	revokedIndex int64
}

// policies follows the policy versions and designations through the log.
type policies struct {
	proposed map[string]proposal // by version name
	approved map[string]ruleSet
	// newest is the approved version with the highest number so far, with its approval's
	// time and entry: a record checked under an older one, well after, was checked under a
	// policy rolled back around the log.
	newest       int
	newestAt     time.Time
	newestIndex  int64
	designations map[string]*designation // by id
	byUser       map[string][]string     // designation ids
}

type proposal struct {
	by    string
	rules ruleSet
	ok    bool // the record carried a readable rule set
	// digest is the rule set's RuleSetDigest, which a signed approval states.
	digest string
}

func newPolicies() *policies {
	return &policies{proposed: map[string]proposal{}, approved: map[string]ruleSet{}, designations: map[string]*designation{}, byUser: map[string][]string{}}
}

// add replays a policy or designation record; it reports whether r was one.
func (ps *policies) add(r *entry, rep *Report) bool {
	f := &r.facts
	switch r.Action {
	case "policy.proposed":
		rs, ok := parseRuleSet(f.RuleSet)
		if !ok || len(f.RuleSet) == 0 {
			rep.fail(r.Index, "policy", "policy %s was proposed without a readable rule set: the replay cannot judge records under it", f.PolicyName)
		}
		ps.proposed[f.PolicyName] = proposal{by: r.Actor.ID, rules: rs, ok: ok && len(f.RuleSet) > 0, digest: RuleSetDigest(f.RuleSet)}
	case "policy.approved":
		p, ok := ps.proposed[f.PolicyName]
		switch {
		case !ok:
			rep.fail(r.Index, "policy", "policy %s approved but never proposed in the log", f.PolicyName)
		case p.by == r.Actor.ID:
			rep.fail(r.Index, "two-person", "policy %s approved by its proposer %s", f.PolicyName, r.Actor.ID)
		}
		if p.ok {
			ps.approved[f.PolicyName] = p.rules
		}
		if n := policyNumber(f.PolicyName); ok && n > ps.newest {
			ps.newest, ps.newestAt, ps.newestIndex = n, r.TS, r.Index
		}
	case "designation.issued":
		from, err1 := time.Parse(time.RFC3339Nano, f.ValidFrom)
		until, err2 := time.Parse(time.RFC3339Nano, f.ValidUntil)
		if f.Designation == "" || f.User == "" || err1 != nil || err2 != nil || (f.Scope != "npa" && f.Scope != "prefectural") {
			rep.fail(r.Index, "designation", "designation %q for %q is incomplete (scope %q, valid %q to %q)", f.Designation, f.User, f.Scope, f.ValidFrom, f.ValidUntil)
			return true
		}
		if _, dup := ps.designations[f.Designation]; dup {
			rep.fail(r.Index, "designation", "designation %s issued twice", f.Designation)
			return true
		}
		ps.designations[f.Designation] = &designation{user: f.User, scope: f.Scope, from: from, until: until}
		ps.byUser[f.User] = append(ps.byUser[f.User], f.Designation)
	case "designation.revoked":
		d := ps.designations[f.Designation]
		if d == nil {
			rep.fail(r.Index, "designation", "designation %s revoked but never issued in the log", f.Designation)
		} else if d.revoked.IsZero() {
			d.revoked, d.revokedIndex = r.TS, r.Index
		}
	default:
		return false
	}
	return true
}

// PolicySlack is how long after a policy version's approval a record may still name the
// version before it: the service refuses to record an action checked under a replaced
// version, so only clocks apart and a commit racing the approval leave a record so.
const PolicySlack = time.Minute

// policyNumber reads a policy version's number: "v3" is 3; the built-in names are version 1.
func policyNumber(name string) int {
	if builtinPolicies[name] {
		return 1
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "v"))
	if err != nil || !strings.HasPrefix(name, "v") || n < 1 {
		return 0
	}
	return n
}

// superseded says why a record naming policy name at t was checked under a version the log
// had replaced well before, or "".
func (ps *policies) superseded(name string, t time.Time) string {
	if n := policyNumber(name); n > 0 && n < ps.newest && t.Sub(ps.newestAt) > PolicySlack {
		return fmt.Sprintf("policy %s, but v%d was approved at %s (entry %d), before it", policyName(name), ps.newest,
			ps.newestAt.UTC().Format(time.RFC3339), ps.newestIndex)
	}
	return ""
}

// rules returns the rule set a record was checked under, or why the log cannot show it.
func (ps *policies) rules(name string) (ruleSet, bool, string) {
	if builtinPolicies[name] {
		return ruleSet{}, false, ""
	}
	if rs, ok := ps.approved[name]; ok {
		return rs, true, ""
	}
	if p, ok := ps.proposed[name]; ok && !p.ok {
		return ruleSet{}, false, "policy " + name + "'s rules are not in the log"
	}
	return ruleSet{}, false, "policy " + name + " is not approved in the log before this record"
}

// designated returns the designation user holds at t (an NPA one if any), as the log shows it
// at this point: issued earlier, not yet revoked, and valid at t.
func (ps *policies) designated(user string, t time.Time) (*designation, string) {
	var best *designation
	why := "no designation in the log"
	for _, id := range ps.byUser[user] {
		d := ps.designations[id]
		switch {
		case !d.revoked.IsZero():
			why = "designation " + id + " was revoked at " + d.revoked.UTC().Format(time.RFC3339)
		case t.Before(d.from) || !t.Before(d.until):
			why = "designation " + id + " is valid from " + d.from.UTC().Format(time.RFC3339) + " to " + d.until.UTC().Format(time.RFC3339)
		case best == nil || d.scope == "npa":
			best = d
		}
	}
	return best, why
}
