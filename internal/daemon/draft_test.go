package daemon_test

import (
	"context"
	"testing"

	"github.com/takedown/takedown/internal/testenv"
)

// TestRemoveTargetsFromADraft: the requester takes targets out of a draft by their values; a
// value the draft does not hold, another person, or a submitted measure is refused and nothing
// is removed; the removal is in the log, which still verifies.
func TestRemoveTargetsFromADraft(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	remove := func(who string, values ...string) (int, error) {
		var m struct {
			Targets int `json:"targets"`
		}
		err := u[who].Do(ctx, "POST", "/api/v1/measures/"+id+"/targets/remove", map[string]any{"values": values}, &m)
		return m.Targets, err
	}
	_, err := remove("officer", "203.0.113.10", "192.0.2.1")
	refusedWith(t, err, 400, "values")
	_, err = remove("officer")
	refusedWith(t, err, 400, "values")
	_, err = remove("officer", "203.0.113.10\x00")
	refusedWith(t, err, 400, "values[0]")
	_, err = remove("officer2", "203.0.113.10")
	refusedWith(t, err, 403, "requester")
	if n, err := remove("officer", "203.0.113.10"); err != nil || n != 1 {
		t.Fatalf("removing one of two targets: %d left (%v)", n, err)
	}
	ts, err := u["officer"].Measure(ctx, id)
	if err != nil || ts.Targets != 1 {
		t.Fatalf("the draft after the removal: %+v (%v)", ts, err)
	}
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	_, err = remove("officer", "update.example-c2.jp")
	refusedWith(t, err, 409, "")
	requireRefusals(t, u["auditor"], id, "refused.targets.removed invalid", "refused.targets.removed requester")
	found := false
	for _, line := range story(t, u["auditor"], id) {
		found = found || line == "targets.removed >"
	}
	if !found {
		t.Fatalf("the removal is not in the audit log: %v", story(t, u["auditor"], id))
	}
	if rep := verifyLog(t, e); !rep.OK() {
		t.Fatalf("the log with a removal does not verify: %v", rep.Failures)
	}
}
