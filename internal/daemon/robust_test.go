package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// impatient gives every demo user's client a deadline: a request that hangs fails the test
// instead of the test hanging with it.
func impatient(e *testenv.Env) {
	for _, c := range e.Users {
		c.HTTP.Timeout = 20 * time.Second // the client reads a measure before deciding on it
	}
}

// TestEmergencyDomesticTarget: after an emergency declaration on a domestic target the named
// executor acts at once, steps are held to the emergency window and the approved technique, and
// a member who declared no conflict may review the measure after the fact.
func TestEmergencyDomesticTarget(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID

	mustAct(t, u["commander"], id, "declare_emergency", map[string]any{"reason": "ransomware deployment under way at a hospital"}, "EMERGENCY_EXECUTING")
	now := time.Now()
	_, err := u["executor"].Act(ctx, id, "log_steps", steps(e, now.Add(-time.Hour), "203.0.113.10"))
	refusedWith(t, err, 403, "window")
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, now.Add(time.Hour), "203.0.113.10"))
	refusedWith(t, err, 403, "window")
	other := steps(e, now, "203.0.113.10")
	other["steps"].([]map[string]any)[0]["technique"] = "block_c2"
	_, err = u["executor"].Act(ctx, id, "log_steps", other)
	refusedWith(t, err, 403, "scope")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EMERGENCY_EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")
	mustAct(t, u["commander"], id, "notify_commission", map[string]any{"body": "emergency measure taken; details attached"}, "COMMISSION_NOTIFIED")

	mustAct(t, u["member1"], id, "declare_conflict", map[string]any{"conflicted": false}, "COMMISSION_NOTIFIED")
	mustAct(t, u["member2"], id, "declare_conflict", map[string]any{"conflicted": true, "reason": "advised the hosting provider last year"}, "COMMISSION_NOTIFIED")
	_, err = u["member2"].Act(ctx, id, "post_hoc_decision", map[string]any{"decision": "accepted"})
	refusedWith(t, err, 403, "SoD-3")
	mustAct(t, u["member1"], id, "post_hoc_decision", map[string]any{"decision": "accepted"}, "POST_HOC_REVIEWED")

	requireRefusals(t, u["auditor"], id, "refused.log_steps window", "refused.log_steps scope", "refused.post_hoc_decision SoD-3")
	verifyLog(t, e)
}

// TestHostileInputNeverFreezes sends what once froze a measure for ever or answered 500: control
// characters, oversized text, unknown people and escaped NULs in paths. Each is refused at once
// with the field named, and the measure goes on moving.
func TestHostileInputNeverFreezes(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	u := e.Users
	big := strings.Repeat("長い理由。", 5000) // 75 kB

	_, err := u["officer"].CreateCase(ctx, "op\x00name", "")
	refusedWith(t, err, 400, "title")
	_, err = u["officer"].CreateCase(ctx, big, "")
	refusedWith(t, err, 400, "title")
	id := newDraft(t, e, "self_execute", domestic).ID
	_, err = u["officer"].AddEvidence(ctx, id, url.Values{"filename": {"a\x00.pcap"}, "kind": {"pcap"}, "provenance": {"osint"}}, strings.NewReader("x"))
	refusedWith(t, err, 400, "filename")
	bad := plan("self_execute", e.IDs["executor"])
	bad["necessity"] = "urgent\x1b[31m"
	err = u["officer"].Do(ctx, "PUT", "/api/v1/measures/"+id+"/plan", bad, nil)
	refusedWith(t, err, 400, "necessity")
	bad = plan("self_execute", "u-nobody")
	err = u["officer"].Do(ctx, "PUT", "/api/v1/measures/"+id+"/plan", bad, nil)
	refusedWith(t, err, 400, "executors[0]")

	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	_, err = u["legal"].Act(ctx, id, "legal_review", map[string]any{"decision": "return", "reason": "see\x00attached"})
	refusedWith(t, err, 400, "reason")
	_, err = u["legal"].Act(ctx, id, "legal_review", map[string]any{"decision": "return", "reason": big})
	refusedWith(t, err, 400, "reason")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	_, err = u["member1"].Act(ctx, id, "vote", map[string]any{"decision": "approve", "conditions": []string{"only\u2028at night"}})
	refusedWith(t, err, 400, "conditions[0]")
	mustAct(t, u["member1"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], id, "vote", vote("approve"), "APPROVED")
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")

	unknown := steps(e, time.Now(), "203.0.113.10")
	unknown["steps"].([]map[string]any)[0]["witness"] = "u-ghost"
	_, err = u["executor"].Act(ctx, id, "log_steps", unknown)
	refusedWith(t, err, 400, "steps[0].witness")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EXECUTING")

	// NULs and junk in paths and queries: refused or not found, never a 500.
	for _, p := range []string{"/api/v1/measures/%00", "/api/v1/measures/%00/targets", "/api/v1/evidence/%00", "/api/v1/cases/%00",
		"/api/v1/measures/" + id + "/actions/%00", "/api/v1/measures/" + id + "/targets?version=%00",
		"/api/v1/measures/" + id + "/targets?q=%00", "/api/v1/measures/" + id + "/targets?q=x&limit=0", "/api/v1/measures/" + id + "/targets?offset=-1",
		"/api/v1/measures/%00/changes", "/api/v1/measures/%00/decisions", "/api/v1/measures/" + id + "/history/%00",
		"/api/v1/measures/" + id + "/history/-1", "/api/v1/measures/" + id + "/history/99999999999999999999"} {
		err := u["officer"].Do(ctx, "GET", p, nil, nil)
		if p == "/api/v1/measures/"+id+"/actions/%00" {
			err = u["officer"].Do(ctx, "POST", p, map[string]any{}, nil)
		}
		var ce *client.Error
		if err != nil && (!errors.As(err, &ce) || ce.Status >= 500) {
			t.Errorf("%s: %v", p, err)
		}
	}
	requireRefusals(t, u["auditor"], id, "refused.legal_review invalid", "refused.vote invalid", "refused.log_steps invalid")
	verifyLog(t, e)
}

// TestLongTargetListSubmits: 450 URL targets of about 160 characters once put the submission's
// audit record over its 64 KiB limit and froze the measure. The list now travels as companion
// data the record commits to, and the exported log carries it. Carried on to execution, 600
// targets and a batch of 400 steps (a seal once listed at most 500 values and a batch 16
// steps) are all in the log, and the verifier checks each step against them.
func TestLongTargetListSubmits(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	u := e.Users
	var targets []map[string]any
	for i := range 600 {
		targets = append(targets, map[string]any{"kind": "url", "location": "domestic",
			"value": fmt.Sprintf("https://cdn-%03d.example-c2.jp/static/js/%s/loader.php?id=%06d", i, strings.Repeat("a1b2c3d4", 12), i)})
	}
	id := newDraft(t, e, "self_execute", targets).ID
	reviewAndApprove(t, e, id)
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	var values []string
	for _, tg := range targets[:400] {
		values = append(values, tg["value"].(string))
	}
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now().Truncate(time.Second), values...), "EXECUTING")
	h, err := u["auditor"].History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var ref string
	for _, r := range h {
		if r.Action == "submit" {
			c, _ := r.Details["companions"].(map[string]any)
			ref, _ = c["target_values"].(string)
		}
	}
	if !strings.HasPrefix(ref, "sha256:") {
		t.Fatalf("the submission's record does not commit to its target list as companion data: %v", ref)
	}
	verifyLog(t, e)
	dir := t.TempDir()
	exportTo(t, e, dir)
	data, err := os.ReadFile(filepath.Join(dir, "companions", strings.TrimPrefix(ref, "sha256:")))
	if err != nil {
		t.Fatalf("the export lacks the companion: %v", err)
	}
	if !strings.Contains(string(data), "cdn-599.example-c2.jp") {
		t.Errorf("the companion does not hold the last target")
	}
}

// TestIdempotencyKeys: a key names one request. Sent again, it answers as the first time; used
// for another operation, it is refused with 409 and changes nothing.
func TestIdempotencyKeys(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	for range 2 {
		if m, err := u["officer"].ActOnce(ctx, id, "submit", "k-1", nil); err != nil || m.Stage != "LEGAL_REVIEW" {
			t.Fatalf("submit under k-1: %v %v", m.Stage, err)
		}
	}
	_, err := u["officer"].ActOnce(ctx, id, "withdraw", "k-1", map[string]any{"reason": "no longer needed"})
	refusedWith(t, err, 409, "Idempotency-Key")
	if m, _ := u["officer"].Measure(ctx, id); m.Stage != "LEGAL_REVIEW" {
		t.Fatalf("a reused key moved the measure to %s", m.Stage)
	}
	// Another person's keys are their own.
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	if _, err := u["commander"].ActOnce(ctx, id, "command_review", "k-1", map[string]any{"decision": "approve"}); err != nil {
		t.Fatal(err)
	}
}

// TestRepeatedRefusalsAreAudited: the same refused attempt, twice, is two audit entries.
func TestRepeatedRefusalsAreAudited(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	at := time.Now()
	for range 2 {
		_, err := u["executor"].Act(ctx, id, "log_steps", steps(e, at, "198.51.100.1"))
		refusedWith(t, err, 403, "scope")
	}
	h, err := u["auditor"].History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range h {
		if r.Action == "refused.log_steps" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d refused.log_steps entries for two refused attempts", n)
	}
}

// TestConcurrentApprovals: four administrators' approvals of one role change at once give one
// approval and three 409s, never a 500.
func TestConcurrentApprovals(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	var rc struct{ ID string }
	if err := e.Users["admin"].Do(ctx, "POST", "/api/v1/admin/role-changes",
		map[string]any{"kind": "grant_role", "user": e.IDs["officer2"], "role": "legal", "reason": "vacancy"}, &rc); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = e.Users["admin2"].Do(ctx, "POST", "/api/v1/admin/role-changes/"+rc.ID+"/approve", nil, nil)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		refusedWith(t, err, 409, "")
	}
	if ok != 1 {
		t.Fatalf("%d approvals succeeded, want 1: %v", ok, errs)
	}
}

// exportTo writes the log's export to dir, once the sequencer has covered every entry.
func exportTo(t *testing.T, e *testenv.Env, dir string) {
	t.Helper()
	if _, err := audit.Export(context.Background(), e.D.DB, dir); err != nil {
		t.Fatal(err)
	}
}

// TestEmergencyAfterSubmission (found by TestModel): an emergency declared on a submitted
// request once re-sealed its version, which the database refused; the measure would have
// retried for ever. The version sealed at submission is the one executed.
func TestEmergencyAfterSubmission(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	m := mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	em := mustAct(t, u["commander"], id, "declare_emergency", map[string]any{"reason": "wiper deployment started"}, "EMERGENCY_EXECUTING")
	if em.Digest != m.Digest {
		t.Errorf("the emergency acts on digest %s, not the submitted %s", em.Digest, m.Digest)
	}
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EMERGENCY_EXECUTING")
	verifyLog(t, e)
}

// TestEmergencyReportAfterReview (found by TestModel): an emergency measure once went from
// EXECUTED straight to REPORTED, skipping the Commission's notification and post-hoc review.
func TestEmergencyReportAfterReview(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["commander"], id, "declare_emergency", map[string]any{"reason": "wiper deployment started"}, "EMERGENCY_EXECUTING")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EMERGENCY_EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")
	_, err := u["executor"].Act(ctx, id, "report", map[string]any{"body": "C2 disabled"})
	refusedWith(t, err, 409, "")
	mustAct(t, u["commander"], id, "notify_commission", map[string]any{"body": "done at 10:02"}, "COMMISSION_NOTIFIED")
	mustAct(t, u["member1"], id, "post_hoc_decision", map[string]any{"decision": "accepted"}, "POST_HOC_REVIEWED")
	mustAct(t, u["executor"], id, "report", map[string]any{"body": "C2 disabled"}, "REPORTED")
}

// TestConflictDeclaredAfterVoting (found by TestModel): a member who had voted could then
// declare a conflict; recused, their vote still counted, and the smaller majority it made
// could settle the decision. A conflict is now declared before voting.
func TestConflictDeclaredAfterVoting(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], id, "vote", vote("reject"), "COMMISSION_REVIEW")
	_, err := u["member2"].Act(ctx, id, "declare_conflict", map[string]any{"conflicted": true, "reason": "on reflection, advised the provider"})
	refusedWith(t, err, 409, "")
	// Declared before voting, a recusal lowers the majority needed: 2 of 4 eligible is not a
	// strict majority, so the decision still waits.
	mustAct(t, u["member3"], id, "declare_conflict", map[string]any{"conflicted": true, "reason": "former employer of the victim"}, "COMMISSION_REVIEW")
	mustAct(t, u["member4"], id, "vote", vote("approve"), "APPROVED")
}

// TestDeadlineAnswersAndNothingIsLost: while the database holds a measure's row, an action
// cannot be recorded. The client is answered 504 at the request's deadline instead of waiting;
// the action completes once the row is free, and a retry under the same Idempotency-Key
// returns its outcome without acting twice.
func TestDeadlineAnswersAndNothingIsLost(t *testing.T) {
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) { c.RequestTimeout = 2 * time.Second })
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	// The submit may itself meet the 2 s deadline on a loaded machine (the first workflow of
	// the namespace): sent again under its key until it answers.
	if err := eventually(t, func() error {
		_, err := u["officer"].ActOnce(ctx, id, "submit", "submit-1", nil)
		return err
	}); err != nil {
		t.Fatalf("submit: %v", err)
	}

	tx, err := e.D.DB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM measures WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = u["legal"].ActOnce(ctx, id, "legal_review", "lr-1", legalApproval)
	refusedWith(t, err, 504, "")
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("the 504 came after %v, not at the 2 s deadline", d)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var m client.Measure
	if err := eventually(t, func() error {
		m, err = u["legal"].ActOnce(ctx, id, "legal_review", "lr-1", legalApproval)
		return err
	}); err != nil {
		t.Fatalf("the retry under the same key: %v", err)
	}
	if m.Stage != "COMMAND_REVIEW" {
		t.Fatalf("after the retry the measure is %s", m.Stage)
	}
	n := 0
	h, err := u["auditor"].History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h {
		if r.Action == "legal_review" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d legal_review entries for one action sent twice", n)
	}
}

// TestConcurrentWithdrawals: the same withdrawal sent twice at once, again and again, of a
// submitted measure and of a draft (the model test met both): one closes the measure, the other
// is refused as too late, never a 500, and a withdrawn draft's lifecycle is not started again.
func TestConcurrentWithdrawals(t *testing.T) {
	e := testenv.Shared(t)
	impatient(e)
	ctx := context.Background()
	for round := range 8 {
		id := newDraft(t, e, "self_execute", domestic).ID
		if round%2 == 0 {
			mustAct(t, e.Users["officer"], id, "submit", nil, "LEGAL_REVIEW")
		}
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := e.Users["officer"].Act(ctx, id, "withdraw", map[string]any{"reason": "the C2 went dark"})
				errs <- err
			}()
		}
		ok := 0
		for range 2 {
			err := <-errs
			var ce *client.Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ce) && ce.Status == 409:
			default:
				t.Fatalf("round %d: a concurrent withdrawal answered %v", round, err)
			}
		}
		if ok == 0 {
			t.Fatalf("round %d: neither withdrawal was taken", round)
		}
		if m, err := e.Users["officer"].Measure(ctx, id); err != nil || m.Stage != "WITHDRAWN" {
			t.Fatalf("round %d: after the withdrawals the measure is %v (%v), want WITHDRAWN", round, m.Stage, err)
		}
	}
}

// TestClosedDraftIsNotStartedAgain: a withdrawn draft whose row says DRAFT again (a stale read,
// or a database administrator's edit) is refused as closed; its lifecycle is not started anew
// and the answer is not a 500.
func TestClosedDraftIsNotStartedAgain(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, e.Users["officer"], id, "withdraw", map[string]any{"reason": "the C2 went dark"}, "WITHDRAWN")
	if _, err := e.Owner.Exec(ctx, `UPDATE measures SET stage = 'DRAFT' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	_, err := e.Users["officer"].Act(ctx, id, "withdraw", map[string]any{"reason": "again"})
	refusedWith(t, err, 409, "")
	_, err = e.Users["officer"].Act(ctx, id, "submit", nil)
	refusedWith(t, err, 409, "")
}
