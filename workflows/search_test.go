package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// TestSearchAttributesFollowTheMeasure: an operator finds a measure by stage, organisation,
// emergency and deadline; the attributes change with the measure and only when it does.
func TestSearchAttributesFollowTheMeasure(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	type seen struct {
		at        time.Duration
		stage     string
		org       string
		emergency bool
		deadline  time.Time
	}
	var upserts []seen
	start := h.env.Now()
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		s := seen{at: h.env.Now().Sub(start)}
		s.stage, _ = sa.GetKeyword(SearchStage)
		s.org, _ = sa.GetKeyword(SearchOrg)
		s.emergency, _ = sa.GetBool(SearchEmergency)
		s.deadline, _ = sa.GetTime(SearchDeadline)
		upserts = append(upserts, s)
	}).Return(nil)
	h.act(time.Minute, measure.Action{Op: authz.OpDeclareEmergency, Actor: commander, Reason: "the botnet is wiping disks"}, "")
	h.act(2*time.Hour, measure.Action{Op: authz.OpWithdraw, Actor: officer, Reason: "wrong server"}, "is not possible")
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 3*time.Hour)
	h.env.ExecuteWorkflow(MeasureWorkflow, Input{Measure: "m-1", Case: "c-1", Requester: officer.ID, Org: "npa-cyber", Config: h.cfg})

	if len(upserts) != 2 {
		t.Fatalf("%d upserts, want 2 (the draft, the emergency): %+v", len(upserts), upserts)
	}
	if u := upserts[0]; u.stage != "DRAFT" || u.org != "npa-cyber" || u.emergency || !u.deadline.IsZero() {
		t.Errorf("at start: %+v", u)
	}
	u := upserts[1]
	if u.stage != string(measure.EmergencyExecuting) || !u.emergency || u.org != "" {
		t.Errorf("after the declaration: %+v (the organisation is set once)", u)
	}
	if want := start.Add(time.Minute).Add(h.cfg.EmergencyNotification); !u.deadline.Equal(want) {
		t.Errorf("deadline %v, want the Commission's notification due %v", u.deadline, want)
	}
}

// TestOldMeasuresKeepNoSearchAttributes: a measure started under an earlier rules revision
// replays its history as it ran, without upserts it never made.
func TestOldMeasuresKeepNoSearchAttributes(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(mock.Arguments) {
		t.Error("a measure started under rules 2 upserted search attributes")
	}).Return(nil)
	st := State{Stage: measure.Draft, Version: 1, Rules: 2, Facts: officerFacts()}
	h.act(time.Minute, measure.Action{Op: authz.OpSubmit, Actor: officer}, "")
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, time.Hour)
	h.env.ExecuteWorkflow(MeasureWorkflow, Input{Measure: "m-1", Case: "c-1", Requester: officer.ID, Org: "npa-cyber", Config: h.cfg, State: &st})
	if len(h.changes) != 1 || h.changes[0].Kind != "submit" {
		t.Fatalf("changes %v", h.kinds())
	}
}

func officerFacts() authz.Facts { return authz.Facts{Requester: officer.ID} }
