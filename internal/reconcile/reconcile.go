// Package reconcile compares the domain tables with the audit log and names every difference.
//
// The log is what was signed; the tables are what the service serves. Someone with the
// database's credentials can edit a closed measure's votes in SQL: the log still verifies, and
// the API would serve the edit. Reconcile folds the signed records into the rows they say
// were written (each case's organisation, each user's; each measure's case and stage, its sealed
// target rows (as the multiset hashes the draft edits and seals record), its sealed versions as
// stored with their target rows, and evidence files; the votes, decisions,
// reviews, gates, orders, execution steps and notifications; the role grants, executor
// designations, policy versions and rules, the personal signing keys)
// and compares them with the tables, row by row. Policy version 1 is the default the server
// writes on first start (authz.DefaultPolicy), not an entry.
package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/intel"
	"github.com/takedown/takedown/internal/measure"
)

// Difference is one row on which the tables and the log disagree. Table and Key name the row;
// InTable and InLog say what each holds ("" where one has no such row); Index is the log
// entry that wrote what the log holds (-1 when the log holds nothing).
type Difference struct {
	Table   string
	Key     string
	InTable string
	InLog   string
	Index   int64
}

func (d Difference) String() string {
	switch {
	case d.Table == NotCompared:
		what := "measure " + d.Key
		if !strings.HasPrefix(d.Key, "m-") {
			what = d.Key // a policy version or a key
		}
		return fmt.Sprintf("%s was not compared: it has entries not signed yet (run again in a moment)", what)
	case d.InLog == "":
		return fmt.Sprintf("%s %s: the table holds %q, which no signed entry wrote", d.Table, d.Key, d.InTable)
	case d.InTable == "":
		return fmt.Sprintf("%s %s: entry %d wrote %q, which the table no longer holds", d.Table, d.Key, d.Index, d.InLog)
	}
	return fmt.Sprintf("%s %s: the table holds %q, entry %d wrote %q", d.Table, d.Key, d.InTable, d.Index, d.InLog)
}

// Querier is what Run reads with.
type Querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// row is what one side says of a row: its value and, from the log, the entry that wrote it.
type row struct {
	value string
	index int64
}

// sides holds, per table, each side's rows by key.
type sides struct {
	log, table map[string]map[string]row
	notices    map[string]int // notifications the log recorded, by measure
	// targets the log's records say each version's rows must be, by "measure vN"
	targets map[string]*targetState
}

// targetState is what the records say of one version's target rows: how many, and their
// multiset hash (measure.TargetSum); unknown when a record predates the sums.
type targetState struct {
	n       int
	sum     measure.TargetSum
	unknown bool
	index   int64
}

func (s *sides) put(side map[string]map[string]row, table, key string, r row) {
	if side[table] == nil {
		side[table] = map[string]row{}
	}
	side[table][key] = r
}

// Run compares the tables with the signed log and returns the differences, in table then key
// order. Rows of a measure that has entries still waiting for the sequencer are not compared
// (the tables run ahead of the signed log by up to one batch): each such measure is named, as
// a difference of table NotCompared, never skipped silently. Run it again a moment later.
func Run(ctx context.Context, q Querier) ([]Difference, error) {
	s := &sides{log: map[string]map[string]row{}, table: map[string]map[string]row{}, notices: map[string]int{}, targets: map[string]*targetState{}}
	if err := s.fold(ctx, q); err != nil {
		return nil, err
	}
	for k, st := range s.targets {
		if !st.unknown && st.n > 0 {
			s.put(s.log, "targets", k, row{value: targetText(st.n, st.sum), index: st.index})
		}
	}
	if err := s.read(ctx, q); err != nil {
		return nil, err
	}
	waiting, err := waitingEntries(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []Difference
	for _, m := range slices.Sorted(maps.Keys(waiting)) {
		out = append(out, Difference{Table: NotCompared, Key: m, InTable: "entries not signed yet", Index: -1})
	}
	for _, table := range tables {
		keys := map[string]bool{}
		for k := range s.log[table] {
			keys[k] = true
		}
		for k := range s.table[table] {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		for _, k := range sorted {
			if m, _, ok := strings.Cut(k, " "); ok && waiting[m] || waiting[k] {
				continue
			}
			l, inLog := s.log[table][k]
			t, inTable := s.table[table][k]
			if inLog && inTable && l.value == t.value {
				continue
			}
			d := Difference{Table: table, Key: k, InTable: t.value, InLog: l.value, Index: l.index}
			if !inLog {
				d.Index = -1
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// NotCompared names, as the table of a Difference, a measure whose rows were not compared.
const NotCompared = "not compared"

// tables are those compared, in the order differences are listed.
var tables = []string{"cases", "case_attribution", "users", "measures", "measure_cases", "plans", "targets", "sealed_versions", "evidence", "votes", "decisions", "reviews", "gates", "orders", "execution_steps", "notifications",
	"role_grants", "executor_designations", "authz_policy_versions", "authz_rules", "personal_keys"}

// fold reads every signed record in log order and writes down the rows it says it wrote.
func (s *sides) fold(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT l.idx, e.record FROM audit_log l JOIN audit_entries e ON e.id = l.entry_id ORDER BY l.idx`)
	if err != nil {
		return fmt.Errorf("read the signed log: %w", err)
	}
	defer rows.Close()
	var recs []indexed
	for rows.Next() {
		var idx int64
		var raw []byte
		if err := rows.Scan(&idx, &raw); err != nil {
			return fmt.Errorf("read the signed log: %w", err)
		}
		var r audit.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode entry %d: %w", idx, err)
		}
		recs = append(recs, indexed{idx, r})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the signed log: %w", err)
	}
	rows.Close()
	// The version 1 policy is the default the server writes on first start, not an entry.
	for _, r := range authz.DefaultPolicy() {
		s.put(s.log, "authz_rules", fmt.Sprintf("v1 %s %s %s", r.Role, r.Op, r.Effect), row{value: "in force", index: -1})
	}
	for i := range recs {
		if err := s.resolve(ctx, q, &recs[i].r); err != nil {
			return fmt.Errorf("entry %d: %w", recs[i].idx, err)
		}
		s.apply(recs[i].idx, &recs[i].r)
	}
	return nil
}

type indexed struct {
	idx int64
	r   audit.Record
}

// resolve reads back the details an entry moved to companion data (long step lists, rule sets).
func (s *sides) resolve(ctx context.Context, q Querier, r *audit.Record) error {
	moved, _ := r.Details[audit.Companions].(map[string]any)
	for name, ref := range moved {
		sum, _ := ref.(string)
		rows, err := q.Query(ctx, `SELECT content FROM audit_companions WHERE sha256 = $1`, strings.TrimPrefix(sum, "sha256:"))
		if err != nil {
			return fmt.Errorf("read companion %s: %w", sum, err)
		}
		content, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[[]byte])
		if err != nil {
			return fmt.Errorf("read companion %s: %w", sum, err)
		}
		var v any
		if err := json.Unmarshal(content, &v); err != nil {
			return fmt.Errorf("decode companion %s: %w", sum, err)
		}
		r.Details[name] = v
	}
	return nil
}

// apply writes down what one record says it wrote.
func (s *sides) apply(idx int64, r *audit.Record) {
	if strings.HasPrefix(r.Action, "refused.") || strings.HasPrefix(r.Action, "read.") {
		return
	}
	str := func(k string) string { v, _ := r.Details[k].(string); return v }
	at := row{index: idx}
	put := func(table, key, value string) {
		at.value = value
		s.put(s.log, table, key, at)
	}
	if r.Measure != "" && r.To != "" {
		put("measures", r.Measure, r.To)
	}
	if r.Action == "measure.created" && r.Measure != "" {
		put("measure_cases", r.Measure, r.Case)
	}
	mv := fmt.Sprintf("%s v%d", r.Measure, r.Version)
	s.applyTargets(idx, r, mv)
	if nv, ok := r.Details["new_version"].(float64); ok && r.Measure != "" {
		// A new draft version starts with a copy of the last one's evidence.
		next := fmt.Sprintf("%s v%d ", r.Measure, int(nv))
		for k, v := range s.log["evidence"] {
			if rest, ok := strings.CutPrefix(k, mv+" "); ok {
				s.put(s.log, "evidence", next+rest, row{value: v.value, index: idx})
			}
		}
	}
	if org, user := str("org"), str("user"); org != "" && user != "" &&
		(r.Action == "user.created" || r.Action == "user.bootstrapped" || r.Action == "role.granted") {
		put("users", user, org)
	}
	if imp, ok := r.Details["import"].(map[string]any); ok && r.Action == "targets.added" && r.Case != "" {
		// What an import added to the case's attribution, in full: the table must hold it.
		if list, ok := imp["attribution"].([]any); ok && len(list) > 0 {
			text := s.log["case_attribution"][r.Case].value
			for _, item := range list {
				var a intel.Attribution
				if b, err := json.Marshal(item); err == nil && json.Unmarshal(b, &a) == nil {
					text += attributionText(a)
				}
			}
			put("case_attribution", r.Case, text)
		}
	}
	switch r.Action {
	case "case.created":
		put("cases", r.Case, r.Actor.Org)
	case "submit", "declare_emergency":
		put("sealed_versions", mv, str("digest"))
	case "evidence.added":
		k := mv + " " + str("sha256")
		n := 0
		if v, ok := s.log["evidence"][k]; ok {
			fmt.Sscan(v.value, &n)
		}
		put("evidence", k, fmt.Sprint(n+1))
	case "vote":
		put("votes", mv+" "+r.Actor.ID, str("vote"))
	case "decide":
		tally, _ := r.Details["tally"].(map[string]any)
		outcome, _ := tally["outcome"].(string)
		approval, _ := r.Details["approval"].(map[string]any)
		window := func(k string) *time.Time {
			v, _ := approval[k].(string)
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil
			}
			return &t
		}
		put("decisions", mv, decisionText(outcome, window("window_start"), window("window_end")))
	case "legal_review", "command_review":
		put("reviews", mv+" "+strings.TrimSuffix(r.Action, "_review")+" "+r.Actor.ID, str("decision"))
	case "post_hoc_decision":
		put("reviews", mv+" post_hoc "+r.Actor.ID, str("decision"))
	case "record_gate":
		put("gates", mv+" "+str("gate"), str("reference"))
	case "role.granted", "user.created", "user.bootstrapped":
		role := str("role")
		if r.Action == "user.bootstrapped" {
			role = "admin"
		}
		if role != "" {
			put("role_grants", str("user")+" "+role, "granted")
		}
	case "role.revoked":
		delete(s.log["role_grants"], str("user")+" "+str("role"))
	case "issue_order":
		o, _ := r.Details["order"].(map[string]any)
		addressee, _ := o["addressee"].(string)
		put("orders", r.Measure, addressee+"; outcome: ")
	case "order_outcome":
		if o, ok := s.log["orders"][r.Measure]; ok {
			put("orders", r.Measure, strings.TrimSuffix(o.value, "; outcome: ")+"; outcome: "+str("outcome"))
		}
	case "log_steps":
		first, _ := r.Details["first_seq"].(float64)
		list, _ := r.Details["step_list"].([]any)
		for i, st := range list {
			m, _ := st.(map[string]any)
			text := func(k string) string { v, _ := m[k].(string); return v }
			at, _ := time.Parse(time.RFC3339Nano, text("at"))
			put("execution_steps", fmt.Sprintf("%s %d", r.Measure, int(first)+i),
				step(text("target"), r.Actor.ID, text("witness"), text("technique"), text("action"), text("result"), at))
		}
	case "notify":
		list, _ := r.Details["notifications"].([]any)
		for _, n := range list {
			m, _ := n.(map[string]any)
			addressee, _ := m["addressee"].(string)
			status, _ := m["status"].(string)
			s.notices[r.Measure]++
			put("notifications", fmt.Sprintf("%s %d", r.Measure, s.notices[r.Measure]), addressee+": "+status)
		}
	case "designation.issued":
		put("executor_designations", str("designation"), designationText(str("user"), str("scope"), parseTime(str("valid_from")), parseTime(str("valid_until")), false))
	case "designation.revoked":
		if d, ok := s.log["executor_designations"][str("designation")]; ok {
			put("executor_designations", str("designation"), d.value+", revoked")
		}
	case audit.KeyProposed:
		put("personal_keys", str("key"), keyText(str("user"), str("kind"), str("public_key"), "pending"))
	case audit.KeyRegistered:
		put("personal_keys", str("key"), keyText(str("user"), str("kind"), str("public_key"), "in force"))
	case audit.KeyRevoked:
		put("personal_keys", str("key"), keyText(str("user"), str("kind"), str("public_key"), "revoked"))
	case "key.withdrawn":
		if k, ok := s.log["personal_keys"][str("id")]; ok {
			put("personal_keys", str("id"), strings.TrimSuffix(k.value, ": pending")+": withdrawn")
		}
	case "policy.proposed":
		put("authz_policy_versions", str("version"), "proposed by "+r.Actor.ID)
		list, _ := r.Details["rule_set"].([]any)
		for _, l := range list {
			f := strings.Fields(fmt.Sprint(l))
			if len(f) == 3 {
				put("authz_rules", fmt.Sprintf("%s %s %s %s", str("version"), f[1], f[2], f[0]), "in force")
			}
		}
	case "policy.approved":
		if v, ok := s.log["authz_policy_versions"][str("version")]; ok {
			put("authz_policy_versions", str("version"), v.value+", approved by "+r.Actor.ID)
		}
	}
}

func step(target, executor, witness, technique, action, result string, at time.Time) string {
	return fmt.Sprintf("%s by %s, witnessed by %s: %s, %q, %s at %s", target, executor, witness, technique, action, result,
		at.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
}

// decisionText is a decision as compared: its outcome and, for an approval, its window.
func decisionText(outcome string, from, until *time.Time) string {
	if from == nil || until == nil {
		return outcome
	}
	f := func(t *time.Time) string { return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano) }
	return outcome + ", window " + f(from) + " to " + f(until)
}

// keyText is a personal signing key as both sides say it.
func keyText(user, kind, publicKey, state string) string {
	return user + " " + kind + " " + publicKey + ": " + state
}

func designationText(user, scope string, from, until time.Time, revoked bool) string {
	t := fmt.Sprintf("%s, %s, %s to %s", user, scope, from.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano),
		until.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
	if revoked {
		t += ", revoked"
	}
	return t
}

// attributionText is one imported attribution entry as both sides write it.
func attributionText(a intel.Attribution) string {
	return a.Kind + " " + strconv.Quote(a.Name) + " " + strconv.Quote(strings.Join(a.Aliases, ", ")) + " " + a.Ref + "\n"
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// read reads the same rows from the tables.
func (s *sides) read(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT id, attribution->'imported' FROM cases WHERE jsonb_typeof(attribution->'imported') = 'array'
		AND jsonb_array_length(attribution->'imported') > 0`)
	if err != nil {
		return fmt.Errorf("read cases: %w", err)
	}
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return err
		}
		var list []intel.Attribution
		text := "unreadable: " + string(raw)
		if json.Unmarshal(raw, &list) == nil {
			text = ""
			for _, a := range list {
				text += attributionText(a)
			}
		}
		s.put(s.table, "case_attribution", id, row{value: text})
	}
	rows.Close()
	for _, t := range []struct{ table, sql string }{
		{"evidence", `SELECT measure_id || ' v' || version || ' ' || sha256, count(*)::text FROM evidence GROUP BY 1`},
		{"orders", `SELECT measure_id, addressee || '; outcome: ' || COALESCE(outcome, '') FROM orders`},
		{"notifications", `SELECT measure_id || ' ' || seq, addressee || ': ' || status FROM notifications`},
		{"authz_policy_versions", `SELECT 'v' || version, 'proposed by ' || proposed_by || COALESCE(', approved by ' || approved_by, '')
			FROM authz_policy_versions WHERE version > 1`},
		{"authz_rules", `SELECT 'v' || version || ' ' || role || ' ' || op || ' ' || effect, 'in force' FROM authz_rules`},
		{"measures", `SELECT id, stage FROM measures`},
		{"measure_cases", `SELECT id, case_id FROM measures`},
		{"votes", `SELECT measure_id || ' v' || version || ' ' || member_id, vote FROM votes`},
		{"reviews", `SELECT measure_id || ' v' || version || ' ' || kind || ' ' || reviewer_id, decision FROM reviews`},
		{"gates", `SELECT measure_id || ' v' || version || ' ' || kind, reference FROM gates`},
		{"role_grants", `SELECT user_id || ' ' || role, 'granted' FROM role_grants`},
		{"cases", `SELECT id, org_id FROM cases`},
		{"users", `SELECT id, org_id FROM users`},
	} {
		rows, err := q.Query(ctx, t.sql)
		if err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return fmt.Errorf("read %s: %w", t.table, err)
			}
			if _, dup := s.table[t.table][k]; dup {
				v += " (twice)"
			}
			s.put(s.table, t.table, k, row{value: v})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s: %w", t.table, err)
		}
	}
	// Rows whose text is easier to build here than in SQL.
	rows, err = q.Query(ctx, `SELECT measure_id || ' v' || version, outcome, window_start, window_end FROM decisions`)
	if err != nil {
		return fmt.Errorf("read decisions: %w", err)
	}
	for rows.Next() {
		var k, outcome string
		var from, until *time.Time
		if err := rows.Scan(&k, &outcome, &from, &until); err != nil {
			rows.Close()
			return fmt.Errorf("read decisions: %w", err)
		}
		s.put(s.table, "decisions", k, row{value: decisionText(outcome, from, until)})
	}
	rows.Close()
	rows, err = q.Query(ctx, `SELECT measure_id || ' ' || seq, target, executor_id, witness_id, technique, action, result, at FROM execution_steps`)
	if err != nil {
		return fmt.Errorf("read execution_steps: %w", err)
	}
	for rows.Next() {
		var k, target, executor, witness, technique, action, result string
		var at time.Time
		if err := rows.Scan(&k, &target, &executor, &witness, &technique, &action, &result, &at); err != nil {
			rows.Close()
			return fmt.Errorf("read execution_steps: %w", err)
		}
		s.put(s.table, "execution_steps", k, row{value: step(target, executor, witness, technique, action, result, at)})
	}
	rows.Close()
	rows, err = q.Query(ctx, `SELECT id, user_id, kind, public_key, approved_at IS NOT NULL, revoked_at IS NOT NULL FROM personal_keys`)
	if err != nil {
		return fmt.Errorf("read personal_keys: %w", err)
	}
	for rows.Next() {
		var id, user, kind, pub string
		var approved, revoked bool
		if err := rows.Scan(&id, &user, &kind, &pub, &approved, &revoked); err != nil {
			rows.Close()
			return fmt.Errorf("read personal_keys: %w", err)
		}
		state := "pending"
		switch {
		case revoked && approved:
			state = "revoked"
		case revoked:
			state = "withdrawn"
		case approved:
			state = "in force"
		}
		s.put(s.table, "personal_keys", id, row{value: keyText(user, kind, pub, state)})
	}
	rows.Close()
	rows, err = q.Query(ctx, `SELECT id, user_id, scope, valid_from, valid_until, revoked_at IS NOT NULL FROM executor_designations`)
	if err != nil {
		return fmt.Errorf("read executor_designations: %w", err)
	}
	for rows.Next() {
		var id, user, scope string
		var from, until time.Time
		var revoked bool
		if err := rows.Scan(&id, &user, &scope, &from, &until, &revoked); err != nil {
			rows.Close()
			return fmt.Errorf("read executor_designations: %w", err)
		}
		s.put(s.table, "executor_designations", id, row{value: designationText(user, scope, from, until, revoked)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := s.readTargets(ctx, q); err != nil {
		return err
	}
	// The default policy is written on the server's first start: not there yet, nothing is owed.
	rows, err = q.Query(ctx, `SELECT version FROM authz_policy_versions WHERE version = 1`)
	if err != nil {
		return fmt.Errorf("read authz_policy_versions: %w", err)
	}
	first, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("read authz_policy_versions: %w", err)
	}
	if len(first) == 0 {
		for k := range s.log["authz_rules"] {
			if strings.HasPrefix(k, "v1 ") {
				delete(s.log["authz_rules"], k)
			}
		}
	}
	return s.readSealed(ctx, q)
}

// applyTargets follows what a record says of a version's target rows: a draft edit adds or
// removes a multiset hash, a seal records the whole, and a version opened again for changes
// starts as its predecessor's.
func (s *sides) applyTargets(idx int64, r *audit.Record, mv string) {
	if r.Measure == "" {
		return
	}
	st := s.targets[mv]
	if st == nil {
		st = &targetState{}
		s.targets[mv] = st
	}
	count, _ := r.Details["count"].(float64)
	change := func(field string, sign int) {
		v, _ := r.Details[field].(string)
		d, err := measure.ParseTargetSum(v)
		if err != nil {
			st.unknown = true
			return
		}
		if sign > 0 {
			st.sum.Plus(d)
		} else {
			st.sum.Minus(d)
		}
		st.n += sign * int(count)
		st.index = idx
	}
	switch r.Action {
	case "targets.added":
		change("targets_sum_added", 1)
	case "targets.removed":
		change("targets_sum_removed", -1)
	case "submit", "declare_emergency":
		if v, ok := r.Details["targets_sum"].(string); ok {
			if sum, err := measure.ParseTargetSum(v); err == nil {
				n, _ := r.Details["targets"].(float64)
				*st = targetState{n: int(n), sum: sum, index: idx}
			}
		}
	}
	if nv, ok := r.Details["new_version"].(float64); ok {
		next := *st
		next.index = idx
		s.targets[fmt.Sprintf("%s v%d", r.Measure, int(nv))] = &next
	}
}

func targetText(n int, sum measure.TargetSum) string {
	return fmt.Sprintf("%d targets, multiset hash %s", n, sum.String()[:16])
}

// readTargets sums every version's target rows, except those whose records predate the sums.
func (s *sides) readTargets(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT measure_id || ' v' || version, `+measure.TargetColumns+` FROM targets ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("read targets: %w", err)
	}
	defer rows.Close()
	sums := map[string]*targetState{}
	for rows.Next() {
		var k string
		var t measure.Target
		if err := rows.Scan(&k, &t.Kind, &t.Value, &t.Port, &t.Location, &t.Country, &t.Role, &t.Ownership, &t.HostingProvider, &t.Registrar, &t.Source); err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		st := sums[k]
		if st == nil {
			st = &targetState{}
			sums[k] = st
		}
		st.sum.Add(t)
		st.n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read targets: %w", err)
	}
	for k, st := range sums {
		if l := s.targets[k]; l == nil || !l.unknown {
			s.put(s.table, "targets", k, row{value: targetText(st.n, st.sum)})
		}
	}
	return nil
}

// readSealed reads each sealed version as stored: the digest its body hashes to, and whether
// its target rows still hash to the targets the body commits to.
func (s *sides) readSealed(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT measure_id, version, body->'content' FROM measure_versions ORDER BY measure_id, version`)
	if err != nil {
		return fmt.Errorf("read measure_versions: %w", err)
	}
	type sealed struct {
		measure string
		version int
		content []byte
	}
	var all []sealed
	for rows.Next() {
		var v sealed
		if err := rows.Scan(&v.measure, &v.version, &v.content); err != nil {
			rows.Close()
			return fmt.Errorf("read measure_versions: %w", err)
		}
		all = append(all, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read measure_versions: %w", err)
	}
	for _, v := range all {
		value, err := measure.Digest(v.content)
		if err != nil {
			value = "a body that is not JSON"
		}
		var body struct {
			Targets int    `json:"targets"`
			SHA256  string `json:"targets_sha256"`
		}
		_ = json.Unmarshal(v.content, &body)
		th, err := HashTargets(ctx, q, v.measure, v.version)
		if err != nil {
			return err
		}
		if th.Len() != body.Targets || th.Sum() != body.SHA256 {
			value += fmt.Sprintf(" (its %d target rows do not hash to the %d targets sealed)", th.Len(), body.Targets)
		}
		mv := fmt.Sprintf("%s v%d", v.measure, v.version)
		s.put(s.table, "sealed_versions", mv, row{value: value})
		// The plan the service serves for a sealed version is the plan it sealed: the log's
		// side is the sealed body's (its digest is the one the log signed, compared above).
		var sealed struct {
			Plan json.RawMessage `json:"plan"`
		}
		if json.Unmarshal(v.content, &sealed) == nil && len(sealed.Plan) > 0 {
			if d, err := measure.Digest(sealed.Plan); err == nil {
				if seal, ok := s.log["sealed_versions"][mv]; ok {
					s.put(s.log, "plans", mv, row{value: d, index: seal.index})
				}
			}
		}
	}
	rows, err = q.Query(ctx, `SELECT m.id || ' v' || m.version, m.plan FROM measures m
		WHERE EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id AND v.version = m.version)`)
	if err != nil {
		return fmt.Errorf("read measures: %w", err)
	}
	defer rows.Close()
	current := map[string]bool{}
	for rows.Next() {
		var mv string
		var plan []byte
		if err := rows.Scan(&mv, &plan); err != nil {
			return fmt.Errorf("read measures: %w", err)
		}
		d, err := measure.Digest(plan)
		if err != nil {
			d = "a plan that is not JSON"
		}
		current[mv] = true
		s.put(s.table, "plans", mv, row{value: d})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read measures: %w", err)
	}
	// Only the current version's plan is kept in the measures table.
	for mv := range s.log["plans"] {
		if !current[mv] {
			delete(s.log["plans"], mv)
		}
	}
	return nil
}

// HashTargets hashes a version's target rows as its seal did.
func HashTargets(ctx context.Context, q Querier, measureID string, version int) (*measure.TargetHash, error) {
	rows, err := q.Query(ctx, `SELECT `+measure.TargetColumns+` FROM targets WHERE measure_id = $1 AND version = $2 ORDER BY seq`, measureID, version)
	if err != nil {
		return nil, fmt.Errorf("read targets of %s: %w", measureID, err)
	}
	defer rows.Close()
	th := measure.NewTargetHash()
	for rows.Next() {
		t, err := measure.ScanTarget(rows)
		if err != nil {
			return nil, fmt.Errorf("read targets of %s: %w", measureID, err)
		}
		th.Add(t)
	}
	return th, rows.Err()
}

// waitingEntries returns the measures, policy versions and keys with entries the sequencer
// has not looked at yet: after its newest checkpoint's cursor, or in a transaction that was
// open when it was signed. An entry it passed over and refused (written around the service)
// keeps nothing from being compared.
func waitingEntries(ctx context.Context, q Querier) (map[string]bool, error) {
	rows, err := q.Query(ctx, `WITH c AS (SELECT next_tx, next_id, waiting FROM audit_checkpoints ORDER BY size DESC LIMIT 1)
		SELECT COALESCE(e.measure_id, ''), e.key FROM audit_entries e
		WHERE NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.entry_id = e.id)
		AND (NOT EXISTS (SELECT 1 FROM c WHERE next_tx IS NOT NULL)
			OR EXISTS (SELECT 1 FROM c WHERE (e.tx, e.id) > (c.next_tx, c.next_id) OR e.tx = ANY(c.waiting)))`)
	if err != nil {
		return nil, fmt.Errorf("read waiting entries: %w", err)
	}
	out := map[string]bool{}
	var measureID, key string
	_, err = pgx.ForEachRow(rows, []any{&measureID, &key}, func() error {
		switch {
		case measureID != "":
			out[measureID] = true
		case strings.HasPrefix(key, "policy/"), strings.HasPrefix(key, "key/"):
			// A policy version's or a key's record not signed yet (a halt stopped the
			// sequencer after it was written): its rows wait with it, as a measure's do.
			if id, _, ok := strings.Cut(key[strings.Index(key, "/")+1:], "/"); ok {
				out[id] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read waiting entries: %w", err)
	}
	return out, nil
}
