package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestBotnetMeasure takes a measure of TAKEDOWN_BOTNET_N targets (700000: the 2023 Qakbot
// operation's reach) through the product, as people would: the targets sent through the API
// in requests of 50,000, submission (the digest), the pages the reviewers read, both reviews
// and the Commission's votes, every target's execution step logged in batches of the most one
// call takes, the report and the notice, closing, the STIX export, and the auditors'
// offline verification of the whole log. Each phase prints its time and the process's peak
// heap (server, Temporal and client share it). Skipped unless TAKEDOWN_BOTNET_N is set:
// scripts/bench runs it.
func TestBotnetMeasure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TAKEDOWN_BOTNET_N"))
	if n <= 0 {
		t.Skip("set TAKEDOWN_BOTNET_N (scripts/bench runs 700000)")
	}
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	value := func(i int) string {
		a := 10<<24 | i
		return fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&255, a>>8&255, a&255)
	}
	phase := func(name string, per int, fn func()) {
		t.Helper()
		start := time.Now()
		peak := peakHeap(fn)
		d := time.Since(start)
		rate := ""
		if per > 0 {
			rate = fmt.Sprintf(", %.0f/s", float64(per)/d.Seconds())
		}
		t.Logf("%-34s %8.2f s%s, peak heap %d MiB", name, d.Seconds(), rate, peak>>20)
	}
	caseID, err := u["officer"].CreateCase(ctx, "Qakbot-sized botnet", "a botnet of many infected machines")
	if err != nil {
		t.Fatal(err)
	}
	m, err := u["officer"].CreateMeasure(ctx, caseID, plan("self_execute", e.IDs["executor"]))
	if err != nil {
		t.Fatal(err)
	}
	id := m.ID
	const chunk = 50_000
	phase(fmt.Sprintf("add %d targets", n), n, func() {
		for from := 0; from < n; from += chunk {
			ts := make([]map[string]any, 0, chunk)
			for i := from; i < min(from+chunk, n); i++ {
				ts = append(ts, map[string]any{"kind": "ip", "value": value(i), "location": "domestic", "role": "botnet_node"})
			}
			if _, err := u["officer"].AddTargets(ctx, id, ts); err != nil {
				t.Fatal(err)
			}
		}
	})
	if _, err := u["officer"].AddEvidence(ctx, id, map[string][]string{"filename": {"sinkhole.log"}, "kind": {"log"}, "provenance": {"own_investigation"}},
		strings.NewReader("sinkhole connections")); err != nil {
		t.Fatal(err)
	}
	phase("submit (seal and digest)", n, func() { mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW") })
	legal := webSession(t, e, "legal")
	phase("legal reviewer's page", 0, func() {
		if status, _ := webGet(t, legal, e.D.URL+"/measures/"+id); status != 200 {
			t.Fatalf("the measure's page: %d", status)
		}
	})
	phase("reviews and the Commission's votes", 0, func() {
		mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
		mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
		chair := webSession(t, e, "chair")
		if status, _ := webGet(t, chair, e.D.URL+"/measures/"+id); status != 200 {
			t.Fatalf("the chair's page: %d", status)
		}
		mustAct(t, u["chair"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
		mustAct(t, u["member1"], id, "vote", vote("approve"), "COMMISSION_REVIEW")
		mustAct(t, u["member2"], id, "vote", vote("approve"), "APPROVED")
	})
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	const batch = 10_000 // measure.MaxSteps
	phase(fmt.Sprintf("log %d steps", n), n, func() {
		for from := 0; from < n; from += batch {
			targets := make([]string, 0, batch)
			for i := from; i < min(from+batch, n); i++ {
				targets = append(targets, value(i))
			}
			if _, err := u["executor"].ActOnce(ctx, id, "log_steps", fmt.Sprintf("batch-%d", from), steps(e, time.Now(), targets...)); err != nil {
				t.Fatalf("steps from %d: %v", from, err)
			}
		}
	})
	phase("finish, report, notify, close", 0, func() {
		mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")
		mustAct(t, u["officer"], id, "report", map[string]any{"body": "every node told to delete itself"}, "REPORTED")
		mustAct(t, u["commander"], id, "verify_report", nil, "NOTIFYING")
		mustAct(t, u["officer"], id, "notify", map[string]any{"notifications": []map[string]any{{"addressee": "ISPs of the infected machines", "status": "sent"}}}, "NOTIFYING")
		mustAct(t, u["officer"], id, "close", nil, "CLOSED")
	})
	phase("STIX export", n, func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.D.URL+"/api/v1/measures/"+id+"/stix?tlp=amber", nil)
		req.Header.Set("Authorization", "Bearer "+u["officer"].Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		size, _ := io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("STIX export: %s", resp.Status)
		}
		t.Logf("STIX bundle of %d MiB", size>>20)
	})
	phase("export and verify the log offline", n, func() {
		if rep := e.Exported(t); !rep.OK() {
			t.Fatalf("the log does not verify: %v", rep.Failures)
		}
	})
}
