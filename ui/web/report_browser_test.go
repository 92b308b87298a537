package web_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/takedown/takedown/internal/measure"
)

// TestBrowserMeasureReport: a measure taken to CLOSED through the API has its report read in
// Chromium in Japanese and English, and printed to PDF by the server. With TAKEDOWN_REPORTS
// set, the documents are written there (docs/report holds the ones committed).
func TestBrowserMeasureReport(t *testing.T) {
	exe, e, pw := start(t)
	ctx := context.Background()
	u := e.Users
	act := func(who, id, op string, body map[string]any) {
		t.Helper()
		if _, err := u[who].Act(ctx, id, op, body); err != nil {
			t.Fatalf("%s %s: %v", who, op, err)
		}
	}
	caseID, err := u["officer"].CreateCase(ctx, "PlugX botnet", "PlugX variant controlling SOHO routers")
	if err != nil {
		t.Fatal(err)
	}
	m, err := u["officer"].CreateMeasure(ctx, caseID, map[string]any{"title": "Disable the PlugX C2", "legal_basis": "police_duties_act_6_2",
		"kind": "self_execute", "technique": "disable_malware", "operations": []string{"send the self-delete command"},
		"executors": []string{e.IDs["executor"]}, "requested_window": "72h", "rollback_plan": "none needed", "data_handling": "no content is read",
		"alternatives": []map[string]any{{"means": "ask the hosting provider", "outcome": "tried", "reason": "no answer in 48 h"}},
		"necessity":    "the C2 commands routers attacking a hospital", "proportionality": "only the implant is touched",
		"collateral": "none expected", "notification_plan": "notify the provider"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].AddTargets(ctx, m.ID, []map[string]any{
		{"kind": "ip", "value": "203.0.113.10", "port": 443, "location": "domestic", "country": "JP", "role": "c2", "ownership": "attacker_controlled"},
		{"kind": "domain", "value": "update.example-c2.jp", "location": "domestic", "role": "c2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].AddEvidence(ctx, m.ID, map[string][]string{"filename": {"c2.pcap"}, "kind": {"pcap"}, "provenance": {"own_investigation"}},
		strings.NewReader("pcap bytes of the C2 beacon")); err != nil {
		t.Fatal(err)
	}
	act("officer", m.ID, "submit", nil)
	act("legal", m.ID, "legal_review", map[string]any{"decision": "approve", "checklist": measure.LegalRequirements})
	act("commander", m.ID, "command_review", map[string]any{"decision": "approve"})
	act("chair", m.ID, "vote", map[string]any{"decision": "approve"})
	act("member1", m.ID, "vote", map[string]any{"decision": "approve"})
	act("member2", m.ID, "vote", map[string]any{"decision": "approve"})
	act("executor", m.ID, "start_execution", nil)
	at := time.Now().UTC().Format(time.RFC3339Nano)
	act("executor", m.ID, "log_steps", map[string]any{"steps": []map[string]any{
		{"target": "203.0.113.10", "technique": "disable_malware", "action": "sent the self-delete command", "result": "success", "witness": e.IDs["executor2"], "at": at},
		{"target": "update.example-c2.jp", "technique": "disable_malware", "action": "sent the self-delete command", "result": "success", "witness": e.IDs["executor2"], "at": at}}})
	act("executor", m.ID, "finish_execution", nil)
	act("officer", m.ID, "report", map[string]any{"body": "Both targets stopped answering the implant's beacon within a minute."})
	act("commander", m.ID, "verify_report", nil)
	act("officer", m.ID, "notify", map[string]any{"notifications": []map[string]any{{"addressee": "the hosting provider", "status": "sent"}}})
	act("officer", m.ID, "close", nil)

	b := browser(t, exe)
	logIn(t, b, e.D.URL, "officer", pw["officer"])
	out := os.Getenv("TAKEDOWN_REPORTS")
	for _, lang := range []string{"ja", "en"} {
		do(t, b, chromedp.Navigate(e.D.URL+"/measures/"+m.ID+"/report?lang="+lang), chromedp.WaitVisible(chromedp.CSS("#report-log")))
		page := text(t, b, "body")
		want := map[string][]string{
			"ja": {"措置の記録", "承認された計画", "全記録", "署名付きチェックポイント", "採決"},
			"en": {"Measure report", "The approved plan", "The record of every step", "Newest signed checkpoint", "Vote"}}[lang]
		for _, w := range append(want, "203.0.113.10", "sha256:", "Both targets stopped answering") {
			if w == "203.0.113.10" {
				continue // targets are counted, not listed
			}
			if !strings.Contains(page, w) {
				t.Errorf("the %s report lacks %q", lang, w)
			}
		}
		// Every entry is there with its log index under the checkpoint, in the log's order.
		if n := strings.Count(text(t, b, "#report-log table"), "\n"); n < 15 {
			t.Errorf("the %s report's record has %d rows", lang, n)
		}
		indexes, err := chromedp.Run(b, chromedp.Evaluate[[]int](`[...document.querySelectorAll("#report-log tbody tr td:first-child")].map(td => +td.textContent.trim()).filter(n => !isNaN(n))`))
		if err != nil || len(indexes) < 15 || !slices.IsSorted(indexes) {
			t.Errorf("the %s report's log indexes are not in the log's order: %v", lang, indexes)
		}
		pdf := fetch(t, b, "GET", e.D.URL+"/measures/"+m.ID+"/report.pdf?lang="+lang)
		if !bytes.HasPrefix(pdf, []byte("%PDF-")) || len(pdf) < 10_000 {
			t.Fatalf("the %s PDF: %d bytes, %.20q", lang, len(pdf), pdf)
		}
		if out != "" {
			html := fetch(t, b, "GET", e.D.URL+"/measures/"+m.ID+"/report?lang="+lang)
			css, err := os.ReadFile(filepath.Join("static", "report.css"))
			if err != nil {
				t.Fatal(err)
			}
			html = bytes.Replace(html, []byte(`<link rel="stylesheet" href="/static/report.css">`), []byte("<style>"+string(css)+"</style>"), 1)
			if err := os.WriteFile(filepath.Join(out, "measure-report-"+lang+".html"), html, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, "measure-report-"+lang+".pdf"), pdf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One who may not read the measure is told so on the report's own address, not sent to a
	// measure page that refuses them too.
	admin := browser(t, exe)
	logIn(t, admin, e.D.URL, "admin", pw["admin"])
	do(t, admin, chromedp.Navigate(e.D.URL+"/measures/"+m.ID+"/report"), loaded())
	where, _ := chromedp.Run(admin, chromedp.Location())
	if page := text(t, admin, "body"); !strings.HasSuffix(where, "/measures/"+m.ID+"/report") || !strings.Contains(page, "見つかりません") {
		t.Errorf("the admin at %s sees: %.300s", where, page)
	}
}
