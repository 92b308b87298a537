package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// authenticator gives a browser a virtual platform authenticator that verifies its user, as
// a laptop's fingerprint reader would.
func authenticator(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}}); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserPasskeys: in Chromium with virtual authenticators, the reviewers and three
// Commission members register passkeys, another administrator approves them, and under a
// policy requiring signed decisions each decision page shows the statement and its hash
// before the passkey signs it; the measure is executed and the exported log verifies offline
// with every decision's signature checked against the key the log registered.
func TestBrowserPasskeys(t *testing.T) {
	exe, e, pw := start(t)
	// A passkey is bound to a domain name, not an address: the browser goes to localhost.
	base := strings.Replace(e.D.URL, "127.0.0.1", "localhost", 1)
	ctx := context.Background()
	u := e.Users

	deciders := []string{"legal", "commander", "chair", "member1", "member2", "executor"}
	browsers := map[string]context.Context{}
	for _, who := range deciders {
		b := browser(t, exe)
		do(t, b, chromedp.Navigate(base+"/login"))
		authenticator(t, b)
		logIn(t, b, base, who, pw[who])
		do(t, b, chromedp.Navigate(base+"/keys"),
			chromedp.SendKeys(chromedp.CSS("#passkey-label"), who+"'s laptop"),
			chromedp.Click(chromedp.CSS("#register-passkey")),
			chromedp.WaitVisible(chromedp.CSS("#key-list")))
		if s := text(t, b, "#key-list"); !strings.Contains(s, "承認待ち") {
			t.Fatalf("%s's keys after registering: %q", who, s)
		}
		browsers[who] = b
	}
	shoot(t, browsers["chair"], "keys")

	// At an address rather than a name, the browser refuses passkeys: the page says what to do,
	// in its language.
	ip := browser(t, exe)
	do(t, ip, chromedp.Navigate(e.D.URL+"/login"))
	authenticator(t, ip)
	logIn(t, ip, e.D.URL, "member3", pw["member3"])
	do(t, ip, chromedp.Navigate(e.D.URL+"/keys"), chromedp.Click(chromedp.CSS("#register-passkey")))
	for i := 0; ; i++ {
		if s, _ := chromedp.Run(ip, chromedp.Text(chromedp.CSS("#passkey-form .sign-error"))); strings.Contains(s, "ドメイン名") {
			break
		} else if i > 50 {
			t.Fatalf("registering a passkey at 127.0.0.1 says %q", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// member4's passkey waits for approval: the vote form says so rather than "register one".
	pending := browser(t, exe)
	do(t, pending, chromedp.Navigate(base+"/login"))
	authenticator(t, pending)
	logIn(t, pending, base, "member4", pw["member4"])
	do(t, pending, chromedp.Navigate(base+"/keys"), chromedp.Click(chromedp.CSS("#register-passkey")), chromedp.WaitVisible(chromedp.CSS("#key-list")))

	// The second administrator approves every key from the administration page.
	adm := browser(t, exe)
	logIn(t, adm, base, "admin2", pw["admin2"])
	do(t, adm, chromedp.Navigate(base+"/admin#keys"))
	for range deciders {
		id, err := chromedp.Run(adm, chromedp.Evaluate[string](`[...document.querySelectorAll('#pending-keys tr')].filter(r => !r.textContent.includes("member4")).map(r => r.querySelector('button[id^="approve-key-"]')).find(b => b).id`))
		if err != nil {
			t.Fatal(err)
		}
		do(t, adm, chromedp.Click(chromedp.CSS("#"+id)), chromedp.WaitNotPresent(chromedp.CSS("#"+id)), chromedp.WaitVisible(chromedp.CSS("#keys")))
	}
	if n, _ := chromedp.Run(adm, chromedp.Evaluate[int](`document.querySelectorAll('#pending-keys button[id^="approve-key-"]').length`)); n != 1 {
		t.Fatalf("%d keys still wait after approving all but member4's", n)
	}

	// admin2 registers a passkey too; the other administrator approves it.
	do(t, adm, chromedp.Navigate(base+"/login"))
	authenticator(t, adm)
	logIn(t, adm, base, "admin2", pw["admin2"])
	do(t, adm, chromedp.Navigate(base+"/keys"), chromedp.Click(chromedp.CSS("#register-passkey")), chromedp.WaitVisible(chromedp.CSS("#key-list")))
	var mine struct{ Keys []struct{ ID string } }
	if err := u["admin2"].Do(ctx, "GET", "/api/v1/keys", nil, &mine); err != nil || len(mine.Keys) != 1 {
		t.Fatalf("admin2's keys: %v %v", mine, err)
	}
	if err := u["admin"].Do(ctx, "POST", "/api/v1/keys/"+mine.Keys[0].ID+"/approve", nil, nil); err != nil {
		t.Fatal(err)
	}

	// Under the first policy, which requires no signature, the administration page says so and
	// offers the signing policy.
	do(t, adm, chromedp.Navigate(base+"/admin#policy"), chromedp.WaitVisible(chromedp.CSS("#unsigned-policy #propose-signing-policy")))

	// admin2 proposes the signing policy with the page's button; the other administrator
	// approves it. Every review, vote, batch of steps and approval is signed from then on.
	do(t, adm, chromedp.Click(chromedp.CSS("#propose-signing-policy button")), chromedp.WaitVisible(chromedp.CSS(`form[id^="policy-v"]`)))
	// The card the approver reads lists what the version adds: a sign rule per signable operation.
	if n, err := chromedp.Run(adm, chromedp.Evaluate[int](`document.querySelectorAll('form[id^="policy-v"] .rule-changes tr.added').length`)); err != nil || n != len(authz.SignableOps) {
		t.Fatalf("the proposed version's card lists %d added rules (%v), want %d", n, err, len(authz.SignableOps))
	}
	shoot(t, adm, "policy-changes")
	var proposals struct{ Proposals []struct{ Version string } }
	if err := u["admin"].Do(ctx, "GET", "/api/v1/admin/policy/proposals", nil, &proposals); err != nil || len(proposals.Proposals) != 1 {
		t.Fatalf("the proposals after the button: %v %v", proposals, err)
	}
	v := proposals.Proposals[0]
	if err := u["admin"].Do(ctx, "POST", "/api/v1/admin/policy/"+v.Version+"/approve", nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		var p struct{ Version string }
		if err := u["officer"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &p); err == nil && p.Version == v.Version {
			break
		}
		if i > 200 {
			t.Fatal("the signing policy never came in force")
		}
		time.Sleep(50 * time.Millisecond)
	}

	do(t, adm, chromedp.Navigate(base+"/keys"), chromedp.Navigate(base+"/admin"), chromedp.WaitVisible(chromedp.CSS("#policy")))
	if n, err := chromedp.Run(adm, chromedp.Evaluate[int](`document.querySelectorAll("#unsigned-policy").length`)); err != nil || n != 0 {
		t.Fatalf("the administration page still says no signature is required under %s: %d %v", v.Version, n, err)
	}

	off := u["officer"]
	caseID, err := off.CreateCase(ctx, "PlugX botnet", "PlugX variant controlling SOHO routers")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, map[string]any{"title": "Neutralise PlugX C2", "legal_basis": "police_duties_act_6_2",
		"kind": "self_execute", "technique": "disable_malware", "operations": []string{"send the self-delete command"},
		"executors":    []string{e.IDs["executor"]},
		"alternatives": []map[string]string{{"means": "ask the hosting provider", "outcome": "tried", "reason": "no answer within 48 h"}},
		"necessity":    "the C2 commands 4,000 routers", "proportionality": "only the implant is touched", "collateral": "none expected",
		"rollback_plan": "none needed", "notification_plan": "notify the provider after execution"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": "203.0.113.10", "location": "domestic", "role": "c2", "ownership": "attacker_controlled"}}); err != nil {
		t.Fatal(err)
	}
	if m, err = off.Act(ctx, m.ID, "submit", nil); err != nil {
		t.Fatal(err)
	}

	// decide fills op's form on who's page, presses its button, reads the statement shown,
	// and signs it with the passkey.
	decide := func(who, op, next string, fill ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		b := browsers[who]
		form := "#act-" + op
		do(t, b, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS(form)))
		do(t, b, fill...)
		do(t, b, chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(form+" .statement .words")))
		words := text(t, b, form+" .statement .words")
		if !strings.Contains(words, m.Digest) || !strings.Contains(words, m.ID) {
			t.Fatalf("%s is shown %q before signing, without the measure and digest %s", who, words, m.Digest)
		}
		if sha := text(t, b, form+" .statement .sha"); len(sha) != 64 {
			t.Fatalf("%s is shown the hash %q", who, sha)
		}
		if who == "chair" {
			shoot(t, b, "sign-vote")
		}
		do(t, b, chromedp.Click(chromedp.CSS(form+" button.sign")))
		stage(t, b, next)
	}
	checklist := []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(`#act-legal_review input[value="approve"]`))}
	for _, req := range measure.LegalRequirements {
		checklist = append(checklist, chromedp.Click(chromedp.CSS(`#act-legal_review input[value="`+req+`"]`)))
	}
	checklist = append(checklist, chromedp.SendKeys(chromedp.CSS("#legal_review-reason"), "art. 6-2 met:\nevery requirement confirmed"))
	decide("legal", "legal_review", "COMMAND_REVIEW", checklist...)
	decide("commander", "command_review", "COMMISSION_REVIEW", chromedp.Click(chromedp.CSS(`#act-command_review input[value="approve"]`)))
	do(t, pending, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS("#act-vote")))
	if s := text(t, pending, "#act-vote .sign-needed"); !strings.Contains(s, "承認待ち") {
		t.Fatalf("member4, whose passkey waits, reads %q on the vote form", s)
	}
	for i, who := range []string{"chair", "member1", "member2"} {
		next := "COMMISSION_REVIEW"
		if i == 2 {
			next = "APPROVED"
		}
		decide(who, "vote", next, chromedp.Click(chromedp.CSS(`#act-vote input[value="approve"]`)),
			chromedp.SendKeys(chromedp.CSS("#vote-conditions"), fmt.Sprintf("report within %d h", 24*(i+1))))
	}
	// The timeline marks each signed decision.
	if s := text(t, browsers["member2"], "#history + ol, .timeline"); strings.Count(s, "本人署名") != 5 {
		t.Fatalf("the timeline marks %d decisions as signed, want 5:\n%s", strings.Count(s, "本人署名"), s)
	}

	// admin2 approves member4's waiting key on the page: the statement names the key and its
	// holder, and the passkey signs it.
	do(t, adm, chromedp.Navigate(base+"/admin#keys"), chromedp.WaitVisible(chromedp.CSS(`#pending-keys button[id^="approve-key-"]`)))
	do(t, adm, chromedp.Click(chromedp.CSS(`#pending-keys button[id^="approve-key-"]`)), chromedp.WaitVisible(chromedp.CSS("#pending-keys .statement .words")))
	if words := text(t, adm, "#pending-keys .statement .words"); !strings.Contains(words, e.IDs["member4"]) || !strings.Contains(words, "承認") {
		t.Fatalf("admin2 is shown %q before signing the approval of member4's key", words)
	}
	shoot(t, adm, "sign-key-approval")
	do(t, adm, chromedp.Click(chromedp.CSS("#pending-keys button.sign")), chromedp.WaitNotPresent(chromedp.CSS(`#pending-keys button[id^="approve-key-"]`)))
	var m4 struct{ Keys []struct{ State string } }
	if err := u["admin"].Do(ctx, "GET", "/api/v1/keys?user="+e.IDs["member4"], nil, &m4); err != nil || len(m4.Keys) != 1 || m4.Keys[0].State != "active" {
		t.Fatalf("member4's key after the signed approval: %v %v", m4, err)
	}

	// Executed as approved; then the auditor's offline check.
	ex := u["executor"]
	if _, err := ex.Act(ctx, m.ID, "start_execution", nil); err != nil {
		t.Fatal(err)
	}
	// The executor logs a step on the page and signs the batch: the statement names the list
	// by its hash before the passkey is touched.
	b := browsers["executor"]
	do(t, b, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS("#act-log_steps")),
		chromedp.SendKeys(chromedp.CSS("#log_steps-steps"), "203.0.113.10,disable_malware,sent self-delete,success,"+e.IDs["executor2"]+","+
			time.Now().UTC().Format(time.RFC3339)),
		chromedp.Click(chromedp.CSS(`#act-log_steps button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#act-log_steps .statement .words")))
	if words := text(t, b, "#act-log_steps .statement .words"); !strings.Contains(words, "sha256:") || !strings.Contains(words, m.ID) {
		t.Fatalf("the executor is shown %q before signing the batch", words)
	}
	do(t, b, chromedp.Click(chromedp.CSS("#act-log_steps button.sign")), chromedp.WaitVisible(chromedp.CSS("#steps")))
	if _, err := ex.Act(ctx, m.ID, "finish_execution", nil); err != nil {
		t.Fatal(err)
	}
	if rep := e.Exported(t); !rep.OK() || rep.Signed != 7 {
		t.Fatalf("the exported log: %d signed decisions, failures %v", rep.Signed, rep.Failures)
	}
}
