package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserEmergency: the emergency path in the browser. A commander declares an emergency
// on a draft; the executor acts at once; the commander's My work shows the notification
// deadline; the Commission is notified and a member who declared no conflict reviews it after
// the fact; the report is made and verified, the affected notified and the measure closed.
func TestBrowserEmergency(t *testing.T) {
	exe, e, pw := start(t)
	base := e.D.URL
	axe := axeSource(t)
	ctx := context.Background()
	off := e.Users["officer"]
	// Every free-text field carries script; every page must show it as text.
	caseID, err := off.CreateCase(ctx, "Ransomware C2 "+xss, "ransomware deployment at a hospital "+xss)
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, map[string]any{"title": "Stop the ransomware C2 " + xss, "legal_basis": "police_duties_act_6_2",
		"kind": "self_execute", "technique": "disable_malware", "operations": []string{"send the kill switch " + xss},
		"executors": []string{e.IDs["executor"]}, "alternatives": []map[string]string{{"means": "ask the provider " + xss, "outcome": "impossible", "reason": "no time " + xss}},
		"necessity": "encryption of patient records under way " + xss, "proportionality": "only the C2 process " + xss, "collateral": "none expected " + xss,
		"rollback_plan": "none needed " + xss, "notification_plan": "notify the provider " + xss})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": "203.0.113.66", "location": "domestic", "country": "JP"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddEvidence(ctx, m.ID, url.Values{"filename": {"c2.pcap" + xss}, "kind": {"pcap" + xss}, "provenance": {"own_investigation"}}, strings.NewReader("beacon")); err != nil {
		t.Fatal(err)
	}
	page := base + "/measures/" + m.ID
	cmdr := browser(t, exe)
	logIn(t, cmdr, base, "commander", pw["commander"])
	do(t, cmdr, chromedp.Navigate(page))
	inert(t, cmdr, "Stop the ransomware C2 "+xss)
	do(t, cmdr, chromedp.SendKeys(chromedp.CSS("#declare_emergency-reason"), "encryption of patient records under way "+xss))
	submit(t, cmdr, "#act-declare_emergency")
	stage(t, cmdr, "EMERGENCY_EXECUTING")

	ex := browser(t, exe)
	logIn(t, ex, base, "executor", pw["executor"])
	do(t, ex, chromedp.Navigate(page), chromedp.SendKeys(chromedp.CSS("#log_steps-steps"),
		"203.0.113.66,disable_malware,\"sent the kill switch "+strings.ReplaceAll(xss, `"`, `""`)+"\",success,"+e.IDs["executor2"]+","+time.Now().UTC().Format(time.RFC3339Nano)))
	submit(t, ex, "#act-log_steps")
	do(t, ex, load("#act-finish_execution button")...)
	stage(t, ex, "EXECUTED")

	// The commander's work: notify the Commission, with its deadline.
	do(t, cmdr, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#waits")))
	if got := text(t, cmdr, "#waits + table"); !strings.Contains(got, "Stop the ransomware C2") || !strings.Contains(got, "JST") {
		t.Fatalf("the commander's work lacks the notification and its deadline: %q", got)
	}
	accessible(t, cmdr, axe, "my work (emergency)")
	do(t, cmdr, chromedp.Navigate(page), chromedp.SendKeys(chromedp.CSS("#notify_commission-body"), "kill switch sent at once; one C2 stopped "+xss))
	submit(t, cmdr, "#act-notify_commission")
	stage(t, cmdr, "COMMISSION_NOTIFIED")

	// A member with no conflict reviews it after the fact.
	mem := browser(t, exe)
	logIn(t, mem, base, "member1", pw["member1"])
	do(t, mem, chromedp.Navigate(page), chromedp.Click(chromedp.CSS(`#act-declare_conflict input[value="false"]`)),
		chromedp.SendKeys(chromedp.CSS("#declare_conflict-reason"), "no link to the parties"))
	submit(t, mem, "#act-declare_conflict")
	do(t, mem, chromedp.Click(chromedp.CSS(`#act-post_hoc_decision input[value="accepted"]`)),
		chromedp.SendKeys(chromedp.CSS("#post_hoc_decision-body"), "the emergency prevented waiting; notified in time "+xss))
	submit(t, mem, "#act-post_hoc_decision")
	stage(t, mem, "POST_HOC_REVIEWED")
	accessible(t, mem, axe, "measure (post-hoc reviewed)")

	// Report, verification, notification of the affected, closure.
	officer := browser(t, exe)
	logIn(t, officer, base, "officer", pw["officer"])
	do(t, officer, chromedp.Navigate(page), chromedp.SendKeys(chromedp.CSS("#report-body"), "one C2 stopped; no collateral "+xss))
	submit(t, officer, "#act-report")
	stage(t, officer, "REPORTED")
	do(t, cmdr, chromedp.Navigate(page))
	submit(t, cmdr, "#act-verify_report")
	stage(t, cmdr, "NOTIFYING")
	do(t, officer, chromedp.Navigate(page), chromedp.SendKeys(chromedp.CSS("#notify-notices"), "\"hosting provider "+strings.ReplaceAll(xss, `"`, `""`)+"\",sent"))
	submit(t, officer, "#act-notify")
	do(t, officer, load("#act-close button")...)
	stage(t, officer, "CLOSED")
	if got := text(t, officer, ".timeline"); !strings.Contains(got, "緊急時の宣言") || !strings.Contains(got, "事後審査 Commissioner 1") {
		t.Fatalf("the timeline of the emergency: %q", got)
	}
	// The script typed everywhere is text on every page that shows it.
	for path, shown := range map[string]string{page: xss, base + "/": "", base + "/measures": xss, base + "/measures?target=203.0.113.": xss} {
		do(t, officer, chromedp.Navigate(path), chromedp.WaitVisible(chromedp.CSS("main")))
		inert(t, officer, shown)
	}
}
