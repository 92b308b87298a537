package authz

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	actor := func(id string, roles ...Role) Actor { return Actor{ID: id, Username: id, Roles: roles} }
	npa := []Designation{{Scope: "npa", ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(time.Hour)}}
	pref := []Designation{{Scope: "prefectural", ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(time.Hour)}}
	expired := []Designation{{Scope: "npa", ValidFrom: now.Add(-48 * time.Hour), ValidUntil: now.Add(-time.Hour)}}
	exec := func(id string, d []Designation) Actor { a := actor(id, Executor); a.Designations = d; return a }
	f := Facts{Requester: "off", LegalReviewer: "leg", NamedExecutors: []string{"ex"}, Recused: []string{"m4"},
		Voters: []string{"m1"}, Executors: []string{"ex"}, ReportAuthor: "off", Participants: []string{"off", "leg", "cmd", "m1"}}
	foreign := f
	foreign.Foreign = true
	foreignOK := foreign
	foreignOK.ForeignMinistry = true

	tests := []struct {
		name string
		op   Op
		a    Actor
		f    Facts
		rule string // "" allowed
	}{
		{"requester submits", OpSubmit, actor("off", Officer), f, ""},
		{"another officer cannot submit", OpSubmit, actor("off2", Officer), f, "requester"},
		{"legal reviews", OpLegalReview, actor("leg", Legal), f, ""},
		{"requester cannot legal-review", OpLegalReview, actor("off", Officer, Legal), f, "SoD-1"},
		{"commander differs from requester", OpCommandReview, actor("off", Officer, Commander), f, "SoD-1"},
		{"commander differs from legal reviewer", OpCommandReview, actor("leg", Legal, Commander), f, "SoD-1"},
		{"agency and commission roles together", OpVote, actor("x", Legal, Commissioner), f, "SoD-2"},
		{"legal cannot vote", OpVote, actor("leg", Legal), f, "role"},
		{"member votes", OpVote, actor("m2", Commissioner), f, ""},
		{"recused member cannot vote", OpVote, actor("m4", Commissioner), f, "SoD-3"},
		{"no second vote", OpVote, actor("m1", Commissioner), f, "SoD-3"},
		{"recused member cannot request information", OpRequestInfo, actor("m4", Commissioner), f, "SoD-3"},
		{"a member who voted may still request information", OpRequestInfo, actor("m1", Commissioner), f, ""},
		{"a recused member's declaration stands", OpDeclareConflict, actor("m4", Commissioner), f, "SoD-3"},
		{"a member declares", OpDeclareConflict, actor("m2", Commissioner), f, ""},
		{"named executor with NPA designation", OpStartExecution, exec("ex", npa), f, ""},
		{"executor not named", OpStartExecution, exec("ex2", npa), f, "SoD-4"},
		{"expired designation", OpStartExecution, exec("ex", expired), f, "SoD-4"},
		{"prefectural executor abroad", OpLogSteps, exec("ex", pref), foreignOK, "SoD-4"},
		{"abroad without Foreign Minister consultation", OpLogSteps, exec("ex", npa), foreign, "SoD-4"},
		{"NPA executor abroad with consultation", OpLogSteps, exec("ex", npa), foreignOK, ""},
		{"prefectural executor at home", OpLogSteps, exec("ex", pref), f, ""},
		{"prefectural and NPA designations, abroad", OpLogSteps, exec("ex", append(slices.Clone(pref), npa...)), foreignOK, ""},
		{"an expired NPA designation beside a prefectural one, abroad", OpLogSteps, exec("ex", append(slices.Clone(pref), expired...)), foreignOK, "SoD-4"},
		{"a designation from the next hour", OpStartExecution, exec("ex", []Designation{{Scope: "npa", ValidFrom: now.Add(time.Nanosecond), ValidUntil: now.Add(time.Hour)}}), f, "SoD-4"},
		{"a designation from this instant", OpStartExecution, exec("ex", []Designation{{Scope: "npa", ValidFrom: now, ValidUntil: now.Add(time.Hour)}}), f, ""},
		{"a designation ending this instant", OpStartExecution, exec("ex", []Designation{{Scope: "npa", ValidFrom: now.Add(-time.Hour), ValidUntil: now}}), f, "SoD-4"},
		{"commissioner cannot execute", OpStartExecution, actor("m2", Commissioner), f, "role"},
		{"officer cannot declare emergency", OpDeclareEmergency, actor("off", Officer), f, "role"},
		{"commander declares emergency", OpDeclareEmergency, actor("cmd", Commander), f, ""},
		{"executor cannot notify the Commission", OpNotifyCommission, actor("ex", Executor, Commander), f, "SoD-6"},
		{"participant cannot review post hoc", OpPostHocDecision, actor("m1", Commissioner), f, "SoD-6"},
		{"outsider reviews post hoc", OpPostHocDecision, actor("m3", Commissioner), f, ""},
		{"author cannot verify", OpVerifyReport, actor("off", Legal), f, "SoD-7"},
		{"auditor cannot act", OpWithdraw, actor("aud", Auditor), f, "SoD-8"},
		{"admin has no case powers", OpSubmit, actor("adm", Admin), f, "SoD-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Static().Check(tt.op, tt.a, tt.f, now)
			var d *Denied
			switch {
			case tt.rule == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.rule != "" && (!errors.As(err, &d) || d.Rule != tt.rule):
				t.Fatalf("got %v, want refusal by %s", err, tt.rule)
			}
		})
	}
}

func TestCheckPolicy(t *testing.T) {
	if err := CheckPolicy(DefaultPolicy()); err != nil {
		t.Fatalf("the default policy is refused: %v", err)
	}
	with := func(extra ...Rule) []Rule { return append(DefaultPolicy(), extra...) }
	without := func(role Role) []Rule {
		var out []Rule
		for _, r := range DefaultPolicy() {
			if !(r.Role == role && r.Effect == "deny") {
				out = append(out, r)
			}
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		rules []Rule
		rule  string
	}{
		{"administrator voting", with(Rule{Admin, "vote", "allow"}), "SoD-8"},
		{"auditor closing", with(Rule{Auditor, "close", "allow"}), "SoD-8"},
		{"legal reviewer voting", with(Rule{Legal, "vote", "allow"}), "SoD-2"},
		{"commissioner executing", with(Rule{Commissioner, "start_execution", "allow"}), "SoD-2"},
		{"no denial for administrators", without(Admin), "SoD-8"},
		{"unknown operation", with(Rule{Officer, "hack_back", "allow"}), "policy"},
	} {
		var d *Denied
		if err := CheckPolicy(tt.rules); !errors.As(err, &d) || d.Rule != tt.rule {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.rule)
		}
	}
}
