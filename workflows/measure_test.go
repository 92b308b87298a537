package workflows

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/takedown/takedown/activities"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

func TestTally(t *testing.T) {
	v := func(member, vote string) measure.Vote {
		return measure.Vote{Member: member, Vote: vote, Chair: member == "chair"}
	}
	tests := []struct {
		name    string
		votes   []measure.Vote
		recused []string
		want    string // "" for no decision yet
		casting bool
	}{
		{"no chair, no quorum", []measure.Vote{v("m1", "approve"), v("m2", "approve"), v("m3", "approve")}, nil, "", false},
		{"chair and one member is below quorum", []measure.Vote{v("chair", "approve"), v("m1", "approve")}, nil, "", false},
		{"three approvals of five decide", []measure.Vote{v("chair", "approve"), v("m1", "approve"), v("m2", "approve")}, nil, "approved", false},
		{"quorum but no majority yet", []measure.Vote{v("chair", "approve"), v("m1", "approve"), v("m2", "reject")}, nil, "", false},
		{"three rejections decide", []measure.Vote{v("chair", "approve"), v("m1", "reject"), v("m2", "reject"), v("m3", "reject")}, nil, "rejected", false},
		{"recusal lowers the majority", []measure.Vote{v("chair", "approve"), v("m1", "approve"), v("m2", "reject")}, []string{"m3", "m4"}, "approved", false},
		{"tie among all eligible goes to the chair", []measure.Vote{v("chair", "reject"), v("m1", "approve"), v("m2", "reject"), v("m3", "approve")}, []string{"m4"}, "rejected", true},
		{"split vote: the chair breaks the tie", []measure.Vote{v("chair", "approve"), v("m1", "reject"), v("m2", "return"), v("m3", "approve"), v("m4", "reject")}, nil, "approved", true},
		{"chair outside a tie: back to the requester", []measure.Vote{v("chair", "return"), v("m1", "reject"), v("m2", "approve"), v("m3", "approve"), v("m4", "reject")}, nil, "returned", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &measureWorkflow{in: Input{Config: DefaultConfig()}}
			w.s.Votes, w.s.Facts.Recused = tt.votes, tt.recused
			got, ok := w.tally()
			if !ok {
				got.Outcome = ""
			}
			if got.Outcome != tt.want || got.Casting != tt.casting {
				t.Fatalf("outcome %q casting %v, want %q casting %v (tally %+v)", got.Outcome, got.Casting, tt.want, tt.casting, got)
			}
		})
	}
}

// harness runs MeasureWorkflow with the Record activity mocked and collects the changes.
type harness struct {
	testsuite.WorkflowTestSuite
	env     *testsuite.TestWorkflowEnvironment
	changes []activities.Change
	at      []time.Time
	t       *testing.T
	cfg     Config
	// seal is what the Record activity seals a version as; refuse, when set, refuses changes
	// of that kind for good (with the error type refuseAs, TypeRefused when empty), as the
	// activity refuses what no retry can heal; fail fails them every time as an outage would.
	seal     func(version int) *measure.Sealed
	refuse   string
	refuseAs string
	fail     string
	failed   []time.Time
	// done holds each Update's outcome, in the order they completed.
	done []updated
}

// updated is what an Update returned to the person who sent the action.
type updated struct {
	op      authz.Op
	outcome Outcome
	err     error
	at      time.Time
}

var (
	officer   = authz.Actor{ID: "u-officer", Username: "officer", Org: "npa", Roles: []authz.Role{authz.Officer}}
	legal     = authz.Actor{ID: "u-legal", Username: "legal", Org: "npa", Roles: []authz.Role{authz.Legal}}
	commander = authz.Actor{ID: "u-commander", Username: "commander", Org: "npa", Roles: []authz.Role{authz.Commander}}
	chair     = authz.Actor{ID: "u-chair", Username: "chair", Org: "commission", Roles: []authz.Role{authz.CommissionChair}}
	member1   = authz.Actor{ID: "u-m1", Username: "m1", Org: "commission", Roles: []authz.Role{authz.Commissioner}}
	member2   = authz.Actor{ID: "u-m2", Username: "m2", Org: "commission", Roles: []authz.Role{authz.Commissioner}}
)

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t}
	h.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	h.env = h.NewTestWorkflowEnvironment()
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ID("m-1")}) // the measure's own workflow
	var a *activities.Activities
	h.env.RegisterActivity(a.Record)
	h.env.OnActivity(a.Record, mock.Anything, mock.Anything).Return(func(_ context.Context, ch activities.Change) (activities.Result, error) {
		if h.refuse != "" && ch.Kind == h.refuse {
			return activities.Result{}, temporal.NewNonRetryableApplicationError("refused", cmp.Or(h.refuseAs, refusal.TypeRefused), nil)
		}
		if ch.Kind == h.fail {
			// Each attempt waits out a connect timeout: the SDK's test environment stops
			// retrying after ten attempts, so an outage must be slow to outlast a deadline.
			h.failed = append(h.failed, h.env.Now())
			return activities.Result{}, temporal.NewApplicationErrorWithOptions("the database is not answering", "Outage",
				temporal.ApplicationErrorOptions{NextRetryDelay: 20 * time.Second})
		}
		h.changes = append(h.changes, ch)
		h.at = append(h.at, h.env.Now())
		if ch.Kind == "submit" || ch.Kind == "declare_emergency" {
			return activities.Result{Sealed: h.seal(ch.Version)}, nil
		}
		return activities.Result{}, nil
	})
	h.cfg = cfg
	h.seal = func(v int) *measure.Sealed {
		return &measure.Sealed{Version: v, Digest: "sha256:v" + string(rune('0'+v)),
			Kind: measure.SelfExecute, LegalBasis: "police_duties_act_6_2", Executors: []string{"u-executor"}, Targets: 1}
	}
	return h
}

func (h *harness) run() {
	h.env.ExecuteWorkflow(MeasureWorkflow, Input{Measure: "m-1", Case: "c-1", Requester: officer.ID, Config: h.cfg})
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
}

// act schedules an action at delay; want is "" for acceptance or a text the refusal contains.
func (h *harness) act(delay time.Duration, a measure.Action, want string) {
	h.env.RegisterDelayedCallback(func() {
		if v, err := h.env.QueryWorkflow(QueryState); err == nil {
			var st State
			if v.Get(&st) == nil {
				a = seen(a, st.Digest)
			}
		}
		h.env.UpdateWorkflow(UpdateAct, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {
				if want != "" {
					h.t.Errorf("%s by %s accepted, want refusal %q", a.Op, a.Actor.Username, want)
				}
			},
			OnReject: func(err error) {
				if want == "" || !strings.Contains(err.Error(), want) {
					h.t.Errorf("%s by %s refused: %v (want %q)", a.Op, a.Actor.Username, err, want)
				}
			},
			OnComplete: func(res any, err error) {
				o, _ := res.(Outcome)
				if p, ok := res.(*Outcome); ok && p != nil {
					o = *p
				}
				h.done = append(h.done, updated{a.Op, o, err, h.env.Now()})
			},
		}, a)
	}, delay)
}

func (h *harness) kinds() []string {
	var k []string
	for _, c := range h.changes {
		k = append(k, c.Kind)
	}
	return k
}

func approve(h *harness) {
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "approve"}, "")
	h.act(4*time.Minute, measure.Action{Op: authz.OpVote, Actor: chair, Decision: "approve"}, "")
	h.act(5*time.Minute, measure.Action{Op: authz.OpVote, Actor: member1, Decision: "approve"}, "")
	h.act(6*time.Minute, measure.Action{Op: authz.OpVote, Actor: member2, Decision: "approve"}, "")
}

// TestApprovalWindowExpires: a 14-day window passes in milliseconds of test time.
func TestApprovalWindowExpires(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	approve(h)
	h.run()
	var s State
	if err := h.env.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Stage != measure.Expired {
		t.Fatalf("stage %s, want EXPIRED", s.Stage)
	}
	last := len(h.changes) - 1
	if h.changes[last].Kind != "deadline.expired" {
		t.Fatalf("changes %v", h.kinds())
	}
	decided := h.at[slices.Index(h.kinds(), "decide")]
	if got := h.at[last].Sub(decided.Truncate(time.Second)); got != 14*24*time.Hour {
		t.Fatalf("expired %v after the decision's second, want 336h", got)
	}
}

// TestDecisionOverdue: the Commission's 72-hour target is logged once, then the vote still counts.
func TestDecisionOverdue(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(2*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "")
	h.act(3*time.Minute, measure.Action{Op: authz.OpCommandReview, Actor: commander, Decision: "approve"}, "")
	h.act(100*time.Hour, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "the server went offline"}, "")
	h.run()
	want := []string{"submit", "legal_review", "command_review", "gates_satisfied", "deadline.decision_overdue", "withdraw"}
	if !slices.Equal(h.kinds(), want) {
		t.Fatalf("changes %v, want %v", h.kinds(), want)
	}
	if got := h.at[4].Sub(h.at[3]); got != 72*time.Hour {
		t.Fatalf("overdue logged %v after review began, want 72h", got)
	}
}

// TestValidatorRefuses: refusals never reach the activity.
func TestValidatorRefuses(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	both := authz.Actor{ID: officer.ID, Username: "officer", Org: "npa", Roles: []authz.Role{authz.Officer, authz.Legal}}
	h.act(time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "approve"}, "not possible in stage DRAFT")
	h.act(2*time.Minute, measure.Action{Op: authz.OpSubmit, Actor: legal}, "requester")
	h.act(3*time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.act(4*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: both, Decision: "approve"}, "SoD-1")
	h.act(5*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "return"}, "reason")
	h.act(6*time.Minute, measure.Action{Op: authz.OpLegalReview, Actor: legal, Decision: "return", Reason: "add the pcap"}, "")
	h.act(7*time.Minute, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "superseded"}, "")
	h.run()
	var s State
	if err := h.env.GetWorkflowResult(&s); err != nil {
		t.Fatal(err)
	}
	if s.Stage != measure.Withdrawn || s.Version != 2 {
		t.Fatalf("stage %s version %d, want WITHDRAWN at version 2", s.Stage, s.Version)
	}
	if want := []string{"submit", "legal_review", "withdraw"}; !slices.Equal(h.kinds(), want) {
		t.Fatalf("changes %v, want %v", h.kinds(), want)
	}
	if h.changes[1].NewVersion != 2 {
		t.Fatalf("a return must open version 2: %+v", h.changes[1])
	}
}

// TestFailureTypes: the API maps refusals by these types.
func TestFailureTypes(t *testing.T) {
	for _, tt := range []struct {
		err  error
		kind string
	}{
		{&WrongStage{Op: authz.OpVote, Stage: measure.Draft}, refusal.TypeWrongStage},
		{&authz.Denied{Rule: "SoD-1"}, refusal.TypeDenied},
		{&measure.FieldError{Field: "reason"}, refusal.TypeInvalid},
	} {
		var app *temporal.ApplicationError
		if !errors.As(failure(tt.err), &app) || app.Type() != tt.kind {
			t.Errorf("%T maps to %v, want type %s", tt.err, failure(tt.err), tt.kind)
		}
	}
}

// TestRulesRevision: rules added after a measure started do not apply to it, so its history
// replays as it was decided; a measure started now gets them.
func TestRulesRevision(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	exec := authz.Actor{ID: "u-executor", Username: "executor", Org: "npa", Roles: []authz.Role{authz.Executor},
		Designations: []authz.Designation{{Scope: "npa", ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(time.Hour)}}}
	early := measure.Action{Op: authz.OpLogSteps, Actor: exec, Steps: []measure.Step{{Target: "203.0.113.10", Technique: "disable_malware",
		Action: "sent self-delete", Result: "success", Witness: "u-executor2", At: now.Add(-2 * time.Hour)}}}
	for _, rules := range []int{0, 1, currentRules} {
		w := &measureWorkflow{in: Input{Config: DefaultConfig()}}
		w.s = State{Stage: measure.EmergencyExecuting, Version: 1, Emergency: true, Declared: now.Add(-time.Minute), Rules: rules,
			Sealed: &measure.Sealed{Technique: "disable_malware", Executors: []string{"u-executor"}},
			Facts:  authz.Facts{Requester: "u-officer", NamedExecutors: []string{"u-executor"}}}
		err := w.check(early, now)
		var d *authz.Denied
		switch {
		case rules == 0 && err != nil:
			t.Errorf("rules 0: a step before the declaration is refused (%v), as it was not then", err)
		case rules > 0 && (!errors.As(err, &d) || d.Rule != "window"):
			t.Errorf("rules %d: a step before the declaration is not refused by the window rule: %v", rules, err)
		}
	}
}

// TestDeclarationIsNoPartFromRevision1: from rules revision 1 a member's declaration of no
// conflict is no part in the measure, so they may review it after the fact; before, it was.
func TestDeclarationIsNoPartFromRevision1(t *testing.T) {
	for _, rules := range []int{0, 1, currentRules} {
		h := newHarness(t, DefaultConfig())
		st := State{Stage: measure.CommissionNotified, Version: 1, Digest: "sha256:v1", Emergency: true, Rules: rules,
			Sealed: &measure.Sealed{Version: 1, Digest: "sha256:v1", Kind: measure.SelfExecute, Executors: []string{"u-executor"}, Technique: "disable_malware"},
			Facts:  authz.Facts{Requester: officer.ID, Participants: []string{officer.ID, commander.ID}, Executors: []string{"u-executor"}}}
		want := ""
		if rules == 0 {
			want = "SoD-6"
		}
		h.act(time.Minute, measure.Action{Op: authz.OpDeclareConflict, Actor: member1, Reason: "no link"}, "")
		h.act(2*time.Minute, measure.Action{Op: authz.OpPostHocDecision, Actor: member1, Decision: "accepted"}, want)
		h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 4*time.Minute)
		h.env.ExecuteWorkflow(MeasureWorkflow, Input{Measure: "m-1", Case: "c-1", Requester: officer.ID, Config: h.cfg, State: &st})
	}
}

// TestDefaultsAreTheDesignsDeadlines: the statutory and policy deadlines a measure starts
// with unless configured (DESIGN section 4's timers), and the deadlines its seal records.
func TestDefaultsAreTheDesignsDeadlines(t *testing.T) {
	day := 24 * time.Hour
	c := DefaultConfig()
	for name, got := range map[string][2]time.Duration{
		"Commission decision target":  {c.DecisionTarget, 72 * time.Hour},
		"urgent decision target":      {c.DecisionTargetUrgent, 24 * time.Hour},
		"approval window":             {c.ApprovalWindow, 14 * day},
		"emergency notification":      {c.EmergencyNotification, 24 * time.Hour},
		"post-hoc review":             {c.PostHocReview, 72 * time.Hour},
		"post-execution report":       {c.ReportDue, 7 * day},
		"affected-party notification": {c.NotificationDue, 30 * day},
	} {
		if got[0] != got[1] {
			t.Errorf("%s: %v, want %v", name, got[0], got[1])
		}
	}
	if c.CommissionSize != 5 || c.QuorumMembers != 2 {
		t.Errorf("Commission of %d, quorum of the chair and %d members", c.CommissionSize, c.QuorumMembers)
	}
	d := c.deadlines()
	if d["report_due"] != int64(7*day/time.Millisecond) || d["decision_target_urgent"] != int64(24*time.Hour/time.Millisecond) {
		t.Errorf("the seal's deadlines: %v", d)
	}
}

// TestCopiedInputRunsNothing: a measure's sealed input started under another workflow ID (by
// someone who reaches the cluster and copies it from a history) fails at once, recording
// nothing.
func TestCopiedInputRunsNothing(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "measure-m-copy"})
	h.env.ExecuteWorkflow(MeasureWorkflow, Input{Measure: "m-1", Case: "c-1", Requester: officer.ID, Config: h.cfg})
	err := h.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "started with the input of measure m-1") {
		t.Fatalf("a copied input: %v", err)
	}
	h.env.AssertNotCalled(t, "Record", mock.Anything, mock.Anything)
}

// TestOneTimerPerDeadline: votes that leave the Commission's decision target where it is do not
// start a timer each (the change guarded by changeKeepDeadlineTimer): one timer waits for the
// target, and the approval window's timer then ends the measure.
func TestOneTimerPerDeadline(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	var timers []time.Duration
	h.env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { timers = append(timers, d) })
	approve(h)
	h.run()
	target := 0
	for _, d := range timers {
		if d > 71*time.Hour && d <= 72*time.Hour {
			target++
		}
	}
	if target != 1 {
		t.Errorf("%d timers for the decision target across two votes, want 1 (all timers: %v)", target, timers)
	}
	if s := h.result(); s.Stage != measure.Expired {
		t.Errorf("stage %s, want EXPIRED by the window's timer", s.Stage)
	}
}
