package workflows

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// TestBatchIsJudgedAsItsSteps: a stored batch of steps, judged by its summary, is accepted
// exactly when the same steps sent whole are, under every window (approved, emergency), rules
// revision and sealed technique; a refusal names a step that is refused alone with the same
// words.
func TestBatchIsJudgedAsItsSteps(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	exec := authz.Actor{ID: "u-executor", Username: "executor", Org: "npa", Roles: []authz.Role{authz.Executor},
		Designations: []authz.Designation{{Scope: "npa", ValidFrom: now.Add(-24 * time.Hour), ValidUntil: now.Add(30 * 24 * time.Hour)}}}
	offsets := []time.Duration{-3 * time.Hour, -time.Hour - time.Second, -time.Hour, -30 * time.Minute, 0, MaxClockSkew, MaxClockSkew + time.Second,
		time.Hour, time.Hour + time.Nanosecond, 2 * time.Hour}
	index := regexp.MustCompile(`steps\[(\d+)\]`)
	rapid.Check(t, func(t *rapid.T) {
		s := State{Stage: measure.Executing, Version: 1, Digest: "sha256:v1", Rules: rapid.IntRange(0, currentRules).Draw(t, "rules"),
			Sealed: &measure.Sealed{Version: 1, Digest: "sha256:v1", Kind: measure.SelfExecute, Executors: []string{exec.ID},
				Technique: rapid.SampledFrom([]string{"disable_malware", ""}).Draw(t, "sealed technique")},
			Facts: authz.Facts{Requester: "u-officer", LegalReviewer: "u-legal", Commander: "u-commander", NamedExecutors: []string{exec.ID}}}
		if rapid.Bool().Draw(t, "emergency") {
			s.Stage, s.Emergency, s.Declared = measure.EmergencyExecuting, true, now.Add(-time.Duration(rapid.IntRange(0, 90).Draw(t, "declared min ago"))*time.Minute)
		} else {
			s.Approval = &measure.Approval{Version: 1, Digest: "sha256:v1", WindowStart: now.Add(-time.Hour), WindowEnd: now.Add(time.Hour), SelfExecutionAllowed: true}
		}
		w := &measureWorkflow{in: Input{Measure: "m-1", Config: DefaultConfig()}, s: s}
		steps := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) measure.Step {
			return measure.Step{Target: "203.0.113.10", Action: "sent the self-delete command", Result: "success",
				Witness:   rapid.SampledFrom([]string{"u-executor2", "u-w3", exec.ID}).Draw(t, "witness"),
				Technique: rapid.SampledFrom([]string{"disable_malware", "block_c2"}).Draw(t, "technique"),
				At:        now.Add(rapid.SampledFrom(offsets).Draw(t, "at"))}
		}), 1, 12).Draw(t, "steps")
		whole := w.check(measure.Action{Op: authz.OpLogSteps, Actor: exec, Steps: steps}, now)
		batched := w.check(measure.Action{Op: authz.OpLogSteps, Actor: exec, Batch: measure.Summarise("sha256:b", steps)}, now)
		if (whole == nil) != (batched == nil) {
			t.Fatalf("sent whole: %v; as a batch: %v", whole, batched)
		}
		if batched == nil {
			return
		}
		m := index.FindStringSubmatch(batched.Error())
		if m == nil {
			t.Fatalf("the batch's refusal names no step: %v", batched)
		}
		i, _ := strconv.Atoi(m[1])
		alone := w.check(measure.Action{Op: authz.OpLogSteps, Actor: exec, Steps: steps[i : i+1]}, now)
		if alone == nil || strings.Replace(batched.Error(), m[0], "steps[0]", 1) != alone.Error() {
			t.Fatalf("the batch was refused for steps[%d] (%v), which alone is judged %v", i, batched, alone)
		}
	})
}

// TestBatchSummaryIsChecked: a summary that does not fit its count is refused before anything.
func TestBatchSummaryIsChecked(t *testing.T) {
	st := measure.Step{Target: "203.0.113.10", Technique: "disable_malware", Action: "a", Result: "success", Witness: "u-w", At: time.Now()}
	for _, tc := range []struct {
		name string
		b    *measure.StepBatch
	}{
		{"no steps", &measure.StepBatch{Digest: "sha256:x"}},
		{"too many", &measure.StepBatch{Digest: "sha256:x", Count: measure.MaxSteps + 1}},
		{"more witnesses than steps", &measure.StepBatch{Digest: "sha256:x", Count: 1, Witnesses: make([]measure.Marked, 2)}},
		{"more techniques than steps", &measure.StepBatch{Digest: "sha256:x", Count: 1, Techniques: make([]measure.Marked, 2)}},
		{"a control character in the digest", &measure.StepBatch{Digest: "sha256:\x00", Count: 1}},
	} {
		a := measure.Action{Op: authz.OpLogSteps, Batch: tc.b}
		if err := a.CheckInput(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	both := measure.Action{Op: authz.OpLogSteps, Steps: []measure.Step{st}, Batch: measure.Summarise("sha256:x", []measure.Step{st})}
	if err := both.CheckInput(); err == nil {
		t.Errorf("steps sent both whole and as a batch: accepted")
	}
	ok := measure.Action{Op: authz.OpLogSteps, Batch: measure.Summarise("sha256:x", []measure.Step{st, st})}
	if err := ok.CheckInput(); err != nil {
		t.Errorf("a batch of two: %v", err)
	}
}
