package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestRefusedReadIsAMissingOne: an officer of another agency who asks for a measure or a case
// they may not read gets byte for byte the answer for one that does not exist (the IDs aside),
// through reads and actions alike; only the audit log tells the two apart.
func TestRefusedReadIsAMissingOne(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	m := newDraft(t, e, "self_execute", domestic)
	stranger := e.Users["executor-pref"] // another agency's, named in no plan of this one
	answer := func(err error, id string) string {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("want a refusal, got %v", err)
		}
		b, _ := json.Marshal(ce)
		return strings.ReplaceAll(string(b), id, "<id>")
	}
	const noMeasure, noCase = "m-aaaaaaaaaaaaaaaa", "c-aaaaaaaaaaaaaaaa"
	for _, tc := range []struct {
		name string
		ask  func(id string) error
		real string
		none string
	}{
		{"read a measure", func(id string) error { _, err := stranger.Measure(ctx, id); return err }, m.ID, noMeasure},
		{"act on a measure", func(id string) error {
			_, err := stranger.Act(ctx, id, "withdraw", map[string]any{"reason": "x"})
			return err
		}, m.ID, noMeasure},
		{"read a case", func(id string) error { return stranger.Do(ctx, "GET", "/api/v1/cases/"+id, nil, nil) }, m.Case, noCase},
		{"open a measure in a case", func(id string) error {
			_, err := stranger.CreateMeasure(ctx, id, plan("self_execute", e.IDs["executor"]))
			return err
		}, m.Case, noCase},
	} {
		hidden, missing := answer(tc.ask(tc.real), tc.real), answer(tc.ask(tc.none), tc.none)
		if hidden != missing {
			t.Errorf("%s: refused %s\n  missing %s", tc.name, hidden, missing)
		}
		if !strings.Contains(hidden, `"status":404`) {
			t.Errorf("%s: %s", tc.name, hidden)
		}
	}
	requireRefusals(t, e.Users["auditor"], m.ID, "refused.withdraw need-to-know")
}

// TestUnissuableIDsAreNotFound: IDs no one could have been given (a NUL, other control
// characters, invalid UTF-8, an overlong one) are not found, never a database error.
func TestUnissuableIDsAreNotFound(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	off := e.Users["officer"]
	for _, id := range []string{"\x00", "m-\x00x", "m-\x07", "m-\xff", strings.Repeat("m", 5000)} {
		for _, path := range []string{"/api/v1/measures/", "/api/v1/cases/", "/api/v1/evidence/"} {
			err := off.Do(ctx, "GET", path+url.PathEscape(id), nil, nil)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != 404 || ce.Code != "not_found" {
				t.Errorf("GET %s%q: %v", path, id, err)
			}
		}
	}
}

// TestRefusedReadTakesAsLongAsAMissingOne: the time a refused read takes does not tell it
// from a missing one. Both are looked up and audited; the medians of interleaved requests
// stay within a factor the noise of a loaded machine allows.
func TestRefusedReadTakesAsLongAsAMissingOne(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	m := newDraft(t, e, "self_execute", domestic)
	stranger := e.Users["executor-pref"]
	const rounds = 60
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	// measure takes one interleaved series and returns the two medians.
	measure := func(series int) (time.Duration, time.Duration) {
		var hidden, missing []time.Duration
		for i := range rounds + 5 {
			for _, id := range []string{m.ID, fmt.Sprintf("m-%08d%08d", series, i)} {
				start := time.Now()
				_, err := stranger.Measure(ctx, id)
				took := time.Since(start)
				var ce *client.Error
				if !errors.As(err, &ce) || ce.Status != 404 {
					t.Fatalf("read %s: %v", id, err)
				}
				if i < 5 {
					continue // warming up
				}
				if id == m.ID {
					hidden = append(hidden, took)
				} else {
					missing = append(missing, took)
				}
			}
		}
		return median(hidden), median(missing)
	}
	// Other tests share the machine (CI runs packages side by side, the cluster test among
	// them): a series that a burst of load skews is measured again, up to three. A real
	// difference shows in every series.
	var seen []string
	for series := range 3 {
		h, mi := measure(series)
		ratio := float64(h) / float64(mi)
		t.Logf("median over %d interleaved reads: refused %v, missing %v (ratio %.2f)", rounds, h, mi, ratio)
		if ratio <= 1.5 && ratio >= 1/1.5 {
			return
		}
		seen = append(seen, fmt.Sprintf("%v against %v", h, mi))
	}
	t.Errorf("a refused read and a missing one took %s in three series: the time tells them apart", strings.Join(seen, "; "))
}

// TestCaseMovedInSQLIsReadAsItsRecordSays: an operator moves a case to another agency in SQL.
// Reads follow the case's creation record, not the table: its own agency still reads it, the
// other does not (lists included), and the log halts naming the case.
func TestCaseMovedInSQLIsReadAsItsRecordSays(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	m := newDraft(t, e, "self_execute", domestic)
	if _, err := e.Owner.Exec(ctx, `UPDATE cases SET org_id = 'mpd-tokyo' WHERE id = $1`, m.Case); err != nil {
		t.Fatal(err)
	}
	officer := e.Users["officer"]
	if err := officer.Do(ctx, "GET", "/api/v1/cases/"+m.Case, nil, nil); err != nil {
		t.Fatalf("the owning agency reads its case moved in SQL: %v", err)
	}
	if _, err := officer.Measure(ctx, m.ID); err != nil {
		t.Fatalf("the owning agency reads its measure in a case moved in SQL: %v", err)
	}
	var cases []struct {
		ID  string `json:"id"`
		Org string `json:"org"`
	}
	// The auditor's list holds every case: the moved one under the organisation of its record.
	if err := e.Users["auditor"].Do(ctx, "GET", "/api/v1/cases", nil, &cases); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(cases, func(c struct {
		ID  string `json:"id"`
		Org string `json:"org"`
	}) bool {
		return c.ID == m.Case && c.Org == "npa-cyber"
	}) {
		t.Fatalf("the list lacks the moved case, or shows it moved: %+v", cases)
	}
	halts, err := audit.Halted(ctx, e.Owner)
	if err != nil || len(halts) != 1 || !strings.HasPrefix(halts[0], "case: case "+m.Case+" as stored belongs to mpd-tokyo") {
		t.Fatalf("halts: %q (%v)", halts, err)
	}
}

// TestMovedMeasureAndRedirectedEvidenceGiveNothingAway: an operator moves a measure into
// another case in SQL, or points a readable measure's evidence row at a file of a measure the
// reader may not read. Reads follow the records: the measure stays in its own case and agency,
// the file is not served, and the log halts naming each.
func TestMovedMeasureAndRedirectedEvidenceGiveNothingAway(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	secret := newDraft(t, e, "self_execute", domestic) // not for executor-pref's eyes
	if _, err := u["officer"].AddEvidence(ctx, secret.ID, url.Values{"filename": {"secret.pcap"}, "kind": {"pcap"}, "provenance": {"own_investigation"}},
		strings.NewReader("the agency's own secret capture")); err != nil {
		t.Fatal(err)
	}
	var secretSHA string
	if err := e.Owner.QueryRow(ctx, `SELECT sha256 FROM evidence WHERE measure_id = $1 AND filename = 'secret.pcap'`, secret.ID).Scan(&secretSHA); err != nil {
		t.Fatal(err)
	}
	// A measure executor-pref is named in, and so reads.
	caseID, err := u["officer"].CreateCase(ctx, "shared", "")
	if err != nil {
		t.Fatal(err)
	}
	shared, err := u["officer"].CreateMeasure(ctx, caseID, plan("self_execute", e.IDs["executor-pref"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].AddTargets(ctx, shared.ID, domestic); err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].AddEvidence(ctx, shared.ID, url.Values{"filename": {"c2.pcap"}, "kind": {"pcap"}, "provenance": {"own_investigation"}},
		strings.NewReader("shared capture")); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["officer"], shared.ID, "submit", nil, "LEGAL_REVIEW")
	stranger := u["executor-pref"]
	if _, err := stranger.Measure(ctx, shared.ID); err != nil {
		t.Skipf("the named prefectural executor does not read the measure before approval here: %v", err)
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE evidence SET sha256 = $2 WHERE measure_id = $1`, shared.ID, secretSHA); err != nil {
		t.Fatal(err)
	}
	err = stranger.Do(ctx, "GET", "/api/v1/evidence/"+secretSHA, nil, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 404 {
		t.Fatalf("another agency downloaded a file through an evidence row redirected in SQL: %v", err)
	}
	halts, err := audit.Halted(ctx, e.Owner)
	if err != nil || len(halts) != 1 || !strings.HasPrefix(halts[0], "evidence: measure "+shared.ID) {
		t.Fatalf("halts: %q (%v)", halts, err)
	}
	// The secret measure moved into the shared case: still its own case's, still not readable.
	if _, err := e.Owner.Exec(ctx, `UPDATE measures SET case_id = $2 WHERE id = $1`, secret.ID, caseID); err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].Measure(ctx, secret.ID); err != nil {
		t.Fatalf("the owner reads a measure moved in SQL: %v", err)
	}
	m, _ := u["officer"].Measure(ctx, secret.ID)
	if m.Case != secret.Case {
		t.Fatalf("the moved measure is shown in case %s, its record says %s", m.Case, secret.Case)
	}
	if halts, _ := audit.Halted(ctx, e.Owner); !slices.ContainsFunc(halts, func(h string) bool { return strings.HasPrefix(h, "measure: measure "+secret.ID) }) {
		t.Fatalf("no halt names the moved measure: %q", halts)
	}
}
