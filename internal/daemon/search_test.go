package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestMeasureSearch: the list finds measures by agency, requester, target, country, the
// emergency path and the day they were opened, within what the reader may read; odd searches
// are refused with the field named, or find nothing, never a 500.
func TestMeasureSearch(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	home := newDraft(t, e, "self_execute", domestic).ID
	abroad := newDraft(t, e, "self_execute", []map[string]any{
		{"kind": "ip", "value": "198.51.100.1", "location": "abroad", "country": "US", "role": "c2"}}).ID
	urgent := newDraft(t, e, "self_execute", []map[string]any{{"kind": "domain", "value": "evil_c2.example.jp", "location": "domestic", "country": "JP"}}).ID
	mustAct(t, u["commander"], urgent, "declare_emergency", map[string]any{"reason": "ransomware deployment under way"}, "EMERGENCY_EXECUTING")

	find := func(who string, q url.Values) []string {
		t.Helper()
		var out struct {
			Measures []struct{ ID string }
		}
		if err := u[who].Do(ctx, "GET", "/api/v1/measures?"+q.Encode(), nil, &out); err != nil {
			t.Fatalf("%s searches %v: %v", who, q, err)
		}
		var ids []string
		for _, m := range out.Measures {
			ids = append(ids, m.ID)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	today := time.Now().In(time.FixedZone("JST", 9*3600)).Format(time.DateOnly)
	for _, c := range []struct {
		who  string
		q    url.Values
		want []string
	}{
		{"officer", url.Values{}, sorted(home, abroad, urgent)},
		{"officer", url.Values{"target": {"203.0.113."}}, sorted(home)},
		{"officer", url.Values{"target": {"evil_"}}, sorted(urgent)},
		{"officer", url.Values{"target": {"evil%"}}, nil}, // a LIKE wildcard is a character like any other
		{"officer", url.Values{"target": {"_"}}, nil},
		{"officer", url.Values{"country": {"us"}}, sorted(abroad)},
		{"officer", url.Values{"emergency": {"true"}}, sorted(urgent)},
		{"officer", url.Values{"emergency": {"false"}}, sorted(home, abroad)},
		{"officer", url.Values{"requester": {"officer"}}, sorted(home, abroad, urgent)},
		{"officer", url.Values{"requester": {e.IDs["officer"]}}, sorted(home, abroad, urgent)},
		{"officer", url.Values{"requester": {"officer2"}}, nil},
		{"officer", url.Values{"org": {"npa-cyber"}, "from": {today}, "to": {today}}, sorted(home, abroad, urgent)},
		{"officer", url.Values{"to": {"2026-01-01"}}, nil},
		{"officer", url.Values{"from": {time.Now().Add(time.Hour).Format(time.RFC3339)}}, nil},
		// Need-to-know holds under every search: naming another agency widens nothing; the
		// Commission finds what was put before it, an emergency included, and no draft.
		{"executor-pref", url.Values{"target": {"203.0.113."}}, nil},
		{"executor-pref", url.Values{"org": {"npa-cyber"}}, nil},
		{"officer", url.Values{"org": {"mpd-tokyo"}}, nil},
		{"chair", url.Values{}, sorted(urgent)},
		{"chair", url.Values{"emergency": {"true"}}, sorted(urgent)},
	} {
		if got := find(c.who, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s searches %v: %v, want %v", c.who, c.q, got, c.want)
		}
	}
	for _, bad := range []url.Values{{"emergency": {"maybe"}}, {"from": {"2026-13-45"}}, {"to": {"yesterday"}},
		{"country": {"\x00"}}, {"target": {"a\x00b"}}, {"limit": {"0"}}, {"offset": {"-1"}}, {"limit": {"x"}}} {
		err := u["officer"].Do(ctx, "GET", "/api/v1/measures?"+bad.Encode(), nil, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 400 {
			t.Errorf("search %v: %v, want 400", bad, err)
		}
	}
}

// TestStatistics: the year's figures for the Diet count what happened, by quarter, within what
// the reader may read.
func TestStatistics(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	approved := newDraft(t, e, "self_execute", []map[string]any{
		{"kind": "ip", "value": "198.51.100.1", "location": "abroad", "country": "US", "role": "c2"},
		{"kind": "ip", "value": "203.0.113.10", "location": "domestic", "country": "JP", "role": "c2"}}).ID
	mustAct(t, u["officer"], approved, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], approved, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], approved, "command_review", map[string]any{"decision": "approve"}, "GATES")
	mustAct(t, u["commander"], approved, "record_gate", map[string]any{"gate": "foreign_ministry", "reference": "MOFA-2026-17"}, "COMMISSION_REVIEW")
	// Returned once, then approved: two requests, one return, one approval.
	mustAct(t, u["chair"], approved, "vote", vote("return"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], approved, "vote", vote("return"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], approved, "vote", vote("return"), "DRAFT")
	mustAct(t, u["officer"], approved, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], approved, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], approved, "command_review", map[string]any{"decision": "approve"}, "GATES")
	mustAct(t, u["commander"], approved, "record_gate", map[string]any{"gate": "foreign_ministry", "reference": "MOFA-2026-18"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], approved, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], approved, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], approved, "vote", vote("approve"), "APPROVED")
	rejected := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], rejected, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], rejected, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], rejected, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], rejected, "vote", vote("reject"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], rejected, "vote", vote("reject"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], rejected, "vote", vote("reject"), "REJECTED")
	urgent := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["commander"], urgent, "declare_emergency", map[string]any{"reason": "ransomware deployment under way"}, "EMERGENCY_EXECUTING")
	newDraft(t, e, "self_execute", domestic) // a draft: no figure

	year := time.Now().In(time.FixedZone("JST", 9*3600)).Year()
	var st struct {
		Total struct {
			Requests, Approvals, Rejections, Returns, Emergencies int
			TargetsAbroad                                         int `json:"targets_abroad"`
		}
		Quarters []struct{ Requests int }
		Stages   []struct {
			Stage  string
			N      int
			Median time.Duration
		}
	}
	if err := u["chair"].Do(ctx, "GET", fmt.Sprintf("/api/v1/statistics?year=%d", year), nil, &st); err != nil {
		t.Fatal(err)
	}
	got := st.Total
	if got.Requests != 3 || got.Approvals != 1 || got.Rejections != 1 || got.Returns != 1 || got.Emergencies != 1 || got.TargetsAbroad != 1 {
		t.Errorf("the year's figures: %+v, want 3 requests, 1 approval, 1 rejection, 1 return, 1 emergency, 1 target abroad", got)
	}
	q := (int(time.Now().In(time.FixedZone("JST", 9*3600)).Month()) - 1) / 3
	if len(st.Quarters) != 4 || st.Quarters[q].Requests != 3 {
		t.Errorf("the quarters: %+v, want 3 requests in Q%d", st.Quarters, q+1)
	}
	// The same figures by fiscal year (年度, April to March): the year that holds today, in
	// the fiscal quarter that holds today.
	now := time.Now().In(time.FixedZone("JST", 9*3600))
	fy, fq := now.Year(), (int(now.Month())+8)%12/3
	if now.Month() < time.April {
		fy--
	}
	var fiscal struct {
		Year     int
		Fiscal   bool
		Total    struct{ Requests, Approvals int }
		Quarters []struct{ Requests int }
	}
	if err := u["chair"].Do(ctx, "GET", fmt.Sprintf("/api/v1/statistics?year=%d&basis=fiscal", fy), nil, &fiscal); err != nil {
		t.Fatal(err)
	}
	if !fiscal.Fiscal || fiscal.Year != fy || fiscal.Total.Requests != 3 || fiscal.Total.Approvals != 1 || len(fiscal.Quarters) != 4 || fiscal.Quarters[fq].Requests != 3 {
		t.Errorf("fiscal year %d: %+v, want 3 requests in its Q%d", fy, fiscal, fq+1)
	}
	// Without a year, the one today falls in, as the page and the CSV take it.
	var current struct {
		Year   int
		Fiscal bool
	}
	if err := u["chair"].Do(ctx, "GET", "/api/v1/statistics?basis=fiscal", nil, &current); err != nil || current.Year != fy || !current.Fiscal {
		t.Errorf("basis=fiscal alone: %+v (%v), want fiscal year %d", current, err, fy)
	}
	if err := u["chair"].Do(ctx, "GET", fmt.Sprintf("/api/v1/statistics?year=%d&basis=nendo", fy), nil, nil); err == nil {
		t.Error("an unknown basis was taken")
	}
	timed := map[string]int{}
	for _, s := range st.Stages {
		timed[s.Stage] = s.N
	}
	if timed["COMMISSION_REVIEW"] != 3 || timed["LEGAL_REVIEW"] != 3 {
		t.Errorf("stage times: %v, want 3 stays before the Commission and 3 in legal review", st.Stages)
	}
	// Another agency counts its own measures: none.
	if err := u["executor-pref"].Do(ctx, "GET", fmt.Sprintf("/api/v1/statistics?year=%d", year), nil, &st); err != nil || st.Total.Requests != 0 {
		t.Errorf("another agency's figures: %+v (%v)", st.Total, err)
	}
	for _, bad := range []string{"abc", "1999", "9999", "99999", "2026%00"} {
		err := u["chair"].Do(ctx, "GET", "/api/v1/statistics?year="+bad, nil, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 400 {
			t.Errorf("year %q: %v, want 400", bad, err)
		}
	}
}

// TestWorkDeadlines: My work lists what waits on a person with its deadline, and marks it
// overdue once the lifecycle's target has passed.
func TestWorkDeadlines(t *testing.T) {
	t.Parallel() // a server of its own; it polls with seconds to spare: runs beside the others
	cfg := workflows.DefaultConfig()
	cfg.DecisionTarget = 2 * time.Second
	e := testenv.Start(t, cfg)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	type item struct {
		Measure  struct{ ID string }
		Ops      []string
		Since    time.Time
		Deadline time.Time
		Overdue  bool
	}
	work := func(who string) []item {
		var out struct{ Work []item }
		if err := u[who].Do(ctx, "GET", "/api/v1/work", nil, &out); err != nil {
			t.Fatal(err)
		}
		return out.Work
	}
	w := work("chair")
	if len(w) != 1 || w[0].Measure.ID != id || !slices.Contains(w[0].Ops, "vote") {
		t.Fatalf("the chair's work: %+v", w)
	}
	if d := w[0].Deadline.Sub(w[0].Since); d != 2*time.Second || w[0].Overdue {
		t.Fatalf("the decision target: %v after %v, overdue %v", d, w[0].Since, w[0].Overdue)
	}
	if got := work("officer"); len(got) != 1 || !slices.Equal(got[0].Ops, []string{"withdraw"}) {
		t.Fatalf("the officer's work: %+v", got)
	}
	time.Sleep(time.Until(w[0].Deadline) + 100*time.Millisecond)
	if w := work("chair"); len(w) != 1 || !w[0].Overdue {
		t.Fatalf("past the decision target, the chair's work: %+v", w)
	}
	if w := work("executor"); len(w) != 0 {
		t.Fatalf("nothing waits on the executor yet: %+v", w)
	}
}
