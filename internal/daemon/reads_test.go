package daemon_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestNeedToKnow: every demo user of every organisation tries to list and read a case, its
// measure, targets, evidence (list and file) and history, before and after the measure goes
// before the Commission. Who may not read finds nothing (404, never the content), and the
// refusal is audited; each of an auditor's reads is audited.
func TestNeedToKnow(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	off := e.Users["officer"]
	caseID, err := off.CreateCase(ctx, "SECRET op Nightjar", "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, plan("self_execute", e.IDs["executor"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, domestic); err != nil {
		t.Fatal(err)
	}
	ev, err := off.AddEvidence(ctx, m.ID, url.Values{"filename": {"c2.pcap"}, "kind": {"pcap"}, "provenance": {"osint"}}, strings.NewReader("beacon"))
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/api/v1/cases/" + caseID, "/api/v1/measures/" + m.ID, "/api/v1/measures/" + m.ID + "/targets",
		"/api/v1/measures/" + m.ID + "/evidence", "/api/v1/evidence/" + ev["sha256"].(string), "/api/v1/measures/" + m.ID + "/history"}
	count := func(like string) int {
		var n int
		if err := e.D.DB.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE key LIKE $1`, like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	agency := []string{"officer", "officer2", "legal", "commander", "auditor"}
	commission := []string{"secretariat", "chair", "member1", "member2", "member3", "member4"}
	check := func(phase string, readers []string) {
		n := 0
		for name, c := range e.Users {
			may := slices.Contains(readers, name)
			for _, p := range paths {
				refusedBefore, readsBefore := count("refused/%"), count("read/%")
				var raw any
				err := c.Do(ctx, "GET", p, nil, &raw)
				if p == paths[4] && err != nil && strings.Contains(err.Error(), "invalid character") {
					err = nil // a file, not JSON: it was served
				}
				n++
				switch {
				case may && err != nil:
					t.Errorf("%s: %s may read %s but: %v", phase, name, p, err)
				case !may:
					var ce *client.Error
					if !errors.As(err, &ce) || ce.Status != 404 {
						t.Errorf("%s: %s may not read %s but got %v", phase, name, p, err)
					}
					if count("refused/%") != refusedBefore+1 {
						t.Errorf("%s: %s's refused read of %s is not audited", phase, name, p)
					}
				case name == "auditor" && p != paths[4] && count("read/%") != readsBefore+1:
					t.Errorf("%s: the auditor's read of %s is not audited", phase, p)
				}
			}
			var cases []map[string]any
			if err := c.Do(ctx, "GET", "/api/v1/cases?limit=500", nil, &cases); err != nil {
				t.Fatalf("%s lists cases: %v", name, err)
			}
			listed := slices.ContainsFunc(cases, func(c map[string]any) bool { return c["id"] == caseID })
			if listed != may {
				t.Errorf("%s: %s lists the case: %v, may read it: %v", phase, name, listed, may)
			}
		}
		t.Logf("%s: %d reads by %d users", phase, n, len(e.Users))
	}
	check("draft", agency)
	mustAct(t, off, m.ID, "submit", nil, "LEGAL_REVIEW")
	check("before the Commission", append(append(slices.Clone(agency), commission...), "executor"))
}
