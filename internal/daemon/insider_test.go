package daemon_test

// An insider model test: random sequences in which people take a measure through its
// lifecycle while an operator with the database's credentials edits the tables around the
// service (a draft's or a sealed version's target, a case's or a user's organisation, a vote,
// a measure's stage or plan, a step, a role, a designation, a policy rule), inserts an audit
// row, or a witness refuses the log. Its oracle, written apart from the code:
//
//   - nothing is executed on a target the Commission did not approve;
//   - no answer is a 5xx other than 503 (the log halted);
//   - every edit is named, by reconcile or by a standing halt, once the sequencer has caught up;
//   - once the honest rows are put back and the halts cleared, reconcile finds nothing and the
//     people go on;
//   - another agency's officer reading the measure gets the answer for a missing one.
//
// Run longer with
//
//	go test ./internal/daemon -run TestInsiderModel -rapid.checks=200 -rapid.steps=40

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"pgregory.net/rapid"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// approvedTargets are the values the honest measure holds (domestic).
var approvedTargets = []string{"203.0.113.10", "update.example-c2.jp"}

// insiderStep is one step of the happy path: who does what, and the stage it leads to.
type insiderStep struct {
	who, op string
	body    func(e *testenv.Env) map[string]any
	want    string
}

var insiderPath = []insiderStep{
	{"officer", "submit", nil, "LEGAL_REVIEW"},
	{"legal", "legal_review", func(*testenv.Env) map[string]any { return legalApproval }, "COMMAND_REVIEW"},
	{"commander", "command_review", func(*testenv.Env) map[string]any { return map[string]any{"decision": "approve"} }, "COMMISSION_REVIEW"},
	{"chair", "vote", func(*testenv.Env) map[string]any { return vote("approve") }, "COMMISSION_REVIEW"},
	{"member1", "vote", func(*testenv.Env) map[string]any { return vote("approve") }, "COMMISSION_REVIEW"},
	{"member2", "vote", func(*testenv.Env) map[string]any { return vote("approve") }, "APPROVED"},
	{"executor", "start_execution", nil, "EXECUTING"},
	{"executor", "log_steps", func(e *testenv.Env) map[string]any {
		return steps(e, time.Now(), "203.0.113.10")
	}, "EXECUTING"},
	{"executor", "log_steps", func(e *testenv.Env) map[string]any {
		return steps(e, time.Now(), "198.18.0.66") // never approved: refused, whatever the tables say
	}, "EXECUTING"},
	{"executor", "finish_execution", nil, "EXECUTED"},
}

// tamper is one edit around the service: apply and put back take the measure's ID, its case,
// and the stage the model holds; named says whether reconcile's differences or the standing
// halts name it.
type tamper struct {
	name       string
	applicable func(in *insider) bool
	apply, put string
	named      func(diffs []reconcile.Difference, halts []string, id string) bool
}

func inTable(table string) func([]reconcile.Difference, []string, string) bool {
	return func(diffs []reconcile.Difference, halts []string, _ string) bool {
		return slices.ContainsFunc(diffs, func(d reconcile.Difference) bool { return d.Table == table }) ||
			slices.ContainsFunc(halts, func(h string) bool { return strings.Contains(h, table) })
	}
}

func halted(prefix string) func([]reconcile.Difference, []string, string) bool {
	return func(_ []reconcile.Difference, halts []string, _ string) bool {
		return slices.ContainsFunc(halts, func(h string) bool { return strings.Contains(h, prefix) })
	}
}

func always(*insider) bool { return true }

var tampers = []tamper{
	{"a sealed target swapped", func(in *insider) bool { return in.stage != "DRAFT" },
		`UPDATE targets SET value = '198.18.0.66' WHERE measure_id = :id AND value = '203.0.113.10'`,
		`UPDATE targets SET value = '203.0.113.10' WHERE measure_id = :id AND value = '198.18.0.66'`, inTable("sealed_versions")},
	{"a draft's target swapped", func(in *insider) bool { return in.stage == "DRAFT" },
		`UPDATE targets SET value = '198.18.0.66' WHERE measure_id = :id AND value = '203.0.113.10'`,
		`UPDATE targets SET value = '203.0.113.10' WHERE measure_id = :id AND value = '198.18.0.66'`, inTable("targets")},
	{"a sealed plan's technique changed", func(in *insider) bool { return in.stage != "DRAFT" },
		`UPDATE measures SET plan = jsonb_set(plan, '{technique}', '"push_uninstaller"') WHERE id = :id`,
		`UPDATE measures SET plan = jsonb_set(plan, '{technique}', '"disable_malware"') WHERE id = :id`, inTable("plans")},
	{"a step's result rewritten", func(in *insider) bool { return in.step > 7 }, // a step was logged
		`UPDATE execution_steps SET result = 'failure' WHERE measure_id = :id`,
		`UPDATE execution_steps SET result = 'success' WHERE measure_id = :id`, inTable("execution_steps")},
	{"an approval's window lengthened", func(in *insider) bool { return in.step > 5 }, // the Commission decided
		`UPDATE decisions SET window_end = window_end + interval '1 year' WHERE measure_id = :id`,
		`UPDATE decisions SET window_end = window_end - interval '1 year' WHERE measure_id = :id`, inTable("decisions")},
	{"the measure moved to another case", always,
		`UPDATE measures SET case_id = (SELECT id FROM cases WHERE id <> :case ORDER BY created_at LIMIT 1) WHERE id = :id`,
		`UPDATE measures SET case_id = :case WHERE id = :id`, inTable("measure_cases")},
	{"the case moved to another agency", always,
		`UPDATE cases SET org_id = 'mpd-tokyo' WHERE id = :case`,
		`UPDATE cases SET org_id = 'npa-cyber' WHERE id = :case`, inTable("cases")},
	{"an officer moved to another agency", always,
		`UPDATE users SET org_id = 'mpd-tokyo' WHERE username = 'officer2'`,
		`UPDATE users SET org_id = 'npa-cyber' WHERE username = 'officer2'`, inTable("users")},
	{"a vote turned", func(in *insider) bool { return in.step > 3 }, // the chair has voted
		`UPDATE votes SET vote = 'reject' WHERE measure_id = :id AND member_id = (SELECT id FROM users WHERE username = 'chair')`,
		`UPDATE votes SET vote = 'approve' WHERE measure_id = :id AND member_id = (SELECT id FROM users WHERE username = 'chair')`, inTable("votes")},
	{"the stage set to approved", func(in *insider) bool { return in.stage != "APPROVED" },
		`UPDATE measures SET stage = 'APPROVED' WHERE id = :id`,
		`UPDATE measures SET stage = :stage WHERE id = :id`, inTable("measures")},
	{"a Commission role granted to an officer", always,
		`INSERT INTO role_grants (user_id, role) SELECT id, 'commissioner' FROM users WHERE username = 'officer2'`,
		`DELETE FROM role_grants WHERE role = 'commissioner' AND user_id = (SELECT id FROM users WHERE username = 'officer2')`, inTable("role_grants")},
	{"the executor's designation widened", always,
		`UPDATE executor_designations SET valid_until = valid_until + interval '10 years' WHERE user_id = (SELECT id FROM users WHERE username = 'executor')`,
		`UPDATE executor_designations SET valid_until = valid_until - interval '10 years' WHERE user_id = (SELECT id FROM users WHERE username = 'executor')`,
		inTable("executor_designations")},
	{"a rule slipped into the policy in force", always,
		`INSERT INTO authz_rules (version, role, op, effect) VALUES (1, 'officer', 'vote', 'allow'); SELECT pg_notify('authz_policy', 'authz_rules')`,
		`ALTER TABLE authz_rules DISABLE TRIGGER authz_rules_no_update;
		DELETE FROM authz_rules WHERE version = 1 AND role = 'officer' AND op = 'vote' AND effect = 'allow';
		ALTER TABLE authz_rules ENABLE ALWAYS TRIGGER authz_rules_no_update; SELECT pg_notify('authz_policy', 'authz_rules')`,
		inTable("authz_rules")},
	{"an audit row inserted", always,
		`INSERT INTO audit_entries (id, key, measure_id, record) VALUES ('forged-' || md5(random()::text), 'forged', :id, convert_to('{"action":"vote"}', 'UTF8'))`,
		``, halted("forged-")},
}

// insider drives one daemon through the sequences.
type insider struct {
	// before are the differences a failed sequence left (on its own measure): not this one's.
	before map[string]bool
	e      *testenv.Env
	ctx    context.Context
	id     string
	cs     string
	stage  string
	step   int
}

// act takes the next step of the path, if any, and checks the answer is no server fault but a
// halt's 503.
func (in *insider) act(t *rapid.T) {
	if in.step >= len(insiderPath) {
		return
	}
	s := insiderPath[in.step]
	var body map[string]any
	if s.body != nil {
		body = s.body(in.e)
	}
	m, err := in.e.Users[s.who].Act(in.ctx, in.id, s.op, body)
	var ce *client.Error
	switch {
	case err == nil:
		in.stage = m.Stage
		in.step++
	case errors.As(err, &ce) && ce.Status >= 500 && ce.Status != http.StatusServiceUnavailable:
		t.Fatalf("%s %s: %v", s.who, s.op, err)
	case errors.As(err, &ce) && s.op == "log_steps" && in.step < len(insiderPath) && strings.Contains(fmt.Sprint(body), "198.18.0.66"):
		in.step++ // the unapproved step is refused: the path goes on
	case !errors.As(err, &ce):
		t.Fatalf("%s %s: %v", s.who, s.op, err)
	}
	in.oracleExecuted(t)
}

// oracleExecuted: no execution step on a target the Commission did not approve.
func (in *insider) oracleExecuted(t *rapid.T) {
	rows, err := in.e.Owner.Query(in.ctx, `SELECT DISTINCT target FROM execution_steps WHERE measure_id = $1`, in.id)
	if err != nil {
		t.Fatal(err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range done {
		if !slices.Contains(approvedTargets, v) {
			t.Fatalf("a step on %s, never approved, was executed", v)
		}
	}
}

// caughtUp waits until the sequencer has signed every entry the service wrote. A sequencer
// that met an edit since put back looks again 30 s after the mismatch, hence the 45 s.
func (in *insider) caughtUp(t *rapid.T) {
	for start := time.Now(); time.Since(start) < 45*time.Second; time.Sleep(50 * time.Millisecond) {
		var pending int
		if err := in.e.Owner.QueryRow(in.ctx, `SELECT count(*) FROM audit_entries e WHERE NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.entry_id = e.id)
			AND e.key <> 'forged'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
	}
	t.Fatal("the sequencer did not catch up")
}

// named waits until the edit is named by reconcile or a halt.
func (in *insider) named(t *rapid.T, tp tamper) {
	var diffs []reconcile.Difference
	var halts []string
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(100 * time.Millisecond) {
		var err error
		if diffs, err = reconcile.Snapshot(in.ctx, in.e.Owner); err != nil {
			t.Fatal(err)
		}
		if halts, err = audit.Halted(in.ctx, in.e.Owner); err != nil {
			t.Fatal(err)
		}
		diffs = slices.DeleteFunc(diffs, func(d reconcile.Difference) bool { return in.before[d.String()] })
		if tp.named(diffs, halts, in.id) {
			return
		}
	}
	t.Fatalf("%s was named by neither reconcile (%v) nor a halt (%q)", tp.name, diffs, halts)
}

// clean puts nothing left to name: reconcile finds no difference, no halt stands.
func (in *insider) clean(t *rapid.T) {
	if _, err := in.e.Owner.Exec(in.ctx, `UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		in.caughtUp(t)
		diffs, err := reconcile.Snapshot(in.ctx, in.e.Owner)
		if err != nil {
			t.Fatal(err)
		}
		waiting := false
		for _, d := range diffs {
			if in.before[d.String()] {
				continue
			}
			if d.Table != reconcile.NotCompared {
				t.Fatalf("after the rows were put back: %v", d)
			}
			waiting = true
		}
		if !waiting {
			return
		}
		// A refused row keeps its measure uncompared until a signed batch passes it: make one.
		if _, err := in.e.Users["officer2"].CreateCase(in.ctx, "a batch past the forged row", ""); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("a measure stays uncompared after batches were signed past its refused rows")
}

// strangerReads: another agency's executor reading the measure gets a missing one's answer.
func (in *insider) strangerReads(t *rapid.T) {
	const none = "m-aaaaaaaaaaaaaaaa"
	answer := func(id string) string {
		_, err := in.e.Users["executor-pref"].Measure(in.ctx, id)
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("another agency's executor read measure %s: %v", id, err)
		}
		b, _ := json.Marshal(ce)
		return strings.ReplaceAll(string(b), id, "<id>")
	}
	if hidden, missing := answer(in.id), answer(none); hidden != missing {
		t.Fatalf("a refused read differs from a missing one:\n  refused %s\n  missing %s", hidden, missing)
	}
}

// bind replaces :id, :case and :stage in sql by parameters, and returns them.
func (in *insider) bind(sql string) (string, []any) {
	var args []any
	for _, p := range []struct {
		name  string
		value any
	}{{":id", in.id}, {":case", in.cs}, {":stage", in.stage}} {
		if strings.Contains(sql, p.name) {
			args = append(args, p.value)
			sql = strings.ReplaceAll(sql, p.name, fmt.Sprintf("$%d", len(args)))
		}
	}
	return sql, args
}

// exec runs a tamper's statement.
func (in *insider) exec(t *rapid.T, what, sql string) {
	q, args := in.bind(sql)
	if _, err := in.e.Owner.Exec(in.ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// insiderReset puts back what a failed sequence may have left edited outside its measure.
const insiderReset = `UPDATE users SET org_id = 'npa-cyber' WHERE username = 'officer2';
	DELETE FROM role_grants WHERE role = 'commissioner' AND user_id = (SELECT id FROM users WHERE username = 'officer2');
	UPDATE executor_designations d SET valid_until = h.valid_until FROM honest_designations h WHERE h.id = d.id;
	UPDATE audit_halts SET cleared_at = now(), cleared_by = 'operator:test' WHERE cleared_at IS NULL`

func TestInsiderModel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	// A few sequences in every run (the others of rapid's hundred pass at once); all of them,
	// or more, with -rapid.checks.
	limit := 8
	if raceEnabled {
		limit = 3
	}
	if flagSet("rapid.checks") {
		limit = -1
	}
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	if _, err := e.Owner.Exec(ctx, `CREATE TABLE honest_designations AS SELECT * FROM executor_designations`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Users["officer"].CreateCase(ctx, "a case to move measures into", ""); err != nil {
		t.Fatal(err)
	}
	runs := 0
	rapid.Check(t, func(t *rapid.T) {
		if runs++; limit >= 0 && runs > limit {
			return
		}
		if _, err := e.Owner.Exec(ctx, insiderReset); err != nil {
			t.Fatal(err)
		}
		before := map[string]bool{}
		diffs, err := reconcile.Snapshot(ctx, e.Owner)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			if d.Table != reconcile.NotCompared {
				before[d.String()] = true
			}
		}
		off := e.Users["officer"]
		cs, err := off.CreateCase(ctx, "insider model", "")
		if err != nil {
			t.Fatal(err)
		}
		m, err := off.CreateMeasure(ctx, cs, plan("self_execute", e.IDs["executor"]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := off.AddTargets(ctx, m.ID, domestic); err != nil {
			t.Fatal(err)
		}
		in := &insider{before: before, e: e, ctx: ctx, id: m.ID, cs: cs, stage: "DRAFT"}
		t.Repeat(map[string]func(*rapid.T){
			"act": in.act,
			"tamper": func(t *rapid.T) {
				var usable []tamper
				for _, tp := range tampers {
					if tp.applicable(in) {
						usable = append(usable, tp)
					}
				}
				tp := rapid.SampledFrom(usable).Draw(t, "tamper")
				in.caughtUp(t)
				in.exec(t, tp.name, tp.apply)
				if rapid.Bool().Draw(t, "act while tampered") {
					in.act(t)
				}
				in.named(t, tp)
				if tp.put != "" {
					in.exec(t, "put back "+tp.name, tp.put)
				}
				in.clean(t)
			},
			"a witness refuses": func(t *rapid.T) {
				if err := audit.Halt(ctx, e.Owner, "witness w.test holds a checkpoint this log does not extend (insider model)"); err != nil {
					t.Fatal(err)
				}
				if in.step < len(insiderPath) {
					s := insiderPath[in.step]
					_, err := e.Users[s.who].Act(ctx, in.id, s.op, nil)
					var ce *client.Error
					if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable {
						t.Fatalf("%s %s while a witness's refusal stands: %v", s.who, s.op, err)
					}
				}
				in.clean(t)
			},
			"another agency reads": in.strangerReads,
		})
		in.oracleExecuted(t)
	})
}
