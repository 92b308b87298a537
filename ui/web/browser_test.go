package web_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// chromium finds Debian's Chromium. Outside CI a machine without it skips the browser tests;
// in CI (.ci/run installs it) its absence fails them.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium: .ci/run installs Debian's chromium")
	}
	t.Skip("no Chromium here (apt-get install -y chromium)")
	return ""
}

// start finds Chromium and starts the product, and returns the demo users' passwords.
func start(t *testing.T) (string, *testenv.Env, map[string]string) {
	t.Helper()
	exe := chromium(t)
	e := testenv.Start(t, workflows.DefaultConfig())
	pw := map[string]string{}
	for _, c := range e.D.Credentials {
		pw[c.Username] = c.Password
	}
	return exe, e, pw
}

// chrome is the test binary's one Chromium, started by the first browser and stopped by
// TestMain. Starting Chromium costs about 1.6 CPU-seconds and its processes keep a core busy
// for a while; every person gets a browser context of their own in it instead.
var chrome struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

// browser is one person's browser: a browser context of their own (cookies, storage,
// authenticators), so their own session.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	chrome.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
			chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "ja"), chromedp.Flag("accept-lang", "ja"),
			chromedp.WindowSize(1280, 900),
			// One renderer for the pages of one site, not one per frame and navigation: half
			// the processes, and TestBrowserReview 78 → 68 busy core-seconds.
			chromedp.Flag("disable-features", "site-per-process,Translate,BlinkGenPropertyTrees"),
			chromedp.Flag("disable-site-isolation-trials", true))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		chrome.ctx, chrome.cancel = bctx, func() { cancelBrowser(); cancelAlloc() }
		chrome.err = chromedp.Do(bctx)
	})
	if chrome.err != nil {
		t.Fatalf("start Chromium: %v", chrome.err)
	}
	ctx, cancel := chromedp.NewContext(chrome.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// A bound on the whole walk, not a step: a browser opened first lives for most of the test,
	// which takes two minutes and more on a loaded two-core CI machine.
	ctx, cancel2 := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(cancel2)
	return ctx
}

// TestMain stops the shared Chromium and the tests' Temporal server once the tests have run.
func TestMain(m *testing.M) {
	testenv.Main(m, func() {
		if chrome.cancel != nil {
			chrome.cancel()
		}
	})
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// loaded waits until the page has finished loading.
func loaded() chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](`document.readyState === "complete"`, chromedp.WithPollingTimeout(30*time.Second))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	// The whole page first: under load a long page arrives in pieces, and a node read while
	// the rest is still parsed holds only its start (a timeline cut mid-entry, seen in CI).
	if err := chromedp.Do(ctx, loaded()); err != nil {
		t.Fatalf("the page did not finish loading: %v", err)
	}
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	// A page still being parsed when it is read can renumber its nodes under the query (seen
	// in CI): read it again.
	for try := 0; err != nil && strings.Contains(err.Error(), "No node with given id") && try < 5; try++ {
		time.Sleep(200 * time.Millisecond)
		s, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	}
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func logIn(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#waits")))
}

// stage waits for the measure page to show stage want.
func stage(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	// The whole page too: a click on a page still being parsed can find its node renumbered
	// under it ("Could not find node with given id", seen under load).
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#stage[data-stage="`+want+`"]`)), loaded())
}

func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("TAKEDOWN_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserReview: in Chromium, as the users would, a draft is submitted by its officer,
// endorsed by the legal reviewer and the commander, and voted on by the Commission; the
// requester never sees a reviewer's form, a refusal shows its rule in words, script typed into
// a reason comes back inert, and a cross-site form post is refused.
func TestBrowserReview(t *testing.T) {
	exe, e, pw := start(t)
	base := e.D.URL
	// Every main page is checked for accessibility (axe-core) and, when asked, photographed.
	axe := axeSource(t)
	look := func(ctx context.Context, name string) {
		t.Helper()
		accessible(t, ctx, axe, name)
		shoot(t, ctx, name)
	}

	// Script typed into free text must come back as text, wherever it is shown (more of it in
	// TestBrowserEmergency, whose pages are not photographed).

	// The officer opens a case and drafts the measure in forms, uploads evidence, submits.
	officer := browser(t, exe)
	do(t, officer, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#username")))
	look(officer, "login-ja")
	logIn(t, officer, base, "officer", pw["officer"])
	// Each click that leaves a page waits for the next one (load): a node of the page being
	// left can vanish under the next action.
	do(t, officer, load("#new-case-link")...)
	do(t, officer, chromedp.WaitVisible(chromedp.CSS("#new-case")))
	look(officer, "new-case-ja")
	do(t, officer, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#waits")))
	evidence := filepath.Join(t.TempDir(), "beacon.pcap")
	if err := os.WriteFile(evidence, []byte("pcap bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	do(t, officer, load("#new-case-link")...)
	do(t, officer, chromedp.WaitVisible(chromedp.CSS("#new-case")), chromedp.SendKeys(chromedp.CSS("#title"), "PlugX botnet"))
	do(t, officer, load("#new-case button")...)
	do(t, officer, chromedp.WaitVisible(chromedp.CSS("#new-measure")))
	look(officer, "new-measure-ja")
	do(t, officer,
		chromedp.SendKeys(chromedp.CSS("#m-title"), "Neutralise PlugX C2"),
		chromedp.SendKeys(chromedp.CSS("#operations"), "send the self-delete command"),
		chromedp.SendKeys(chromedp.CSS("#executors"), e.IDs["executor"]),
		chromedp.SendKeys(chromedp.CSS("#alternatives"), "ask the hosting provider,tried,no answer in 48 h"),
		chromedp.SendKeys(chromedp.CSS("#necessity"), "the C2 commands routers attacking a hospital"),
		chromedp.SendKeys(chromedp.CSS("#proportionality"), "only the implant is touched"),
		chromedp.SendKeys(chromedp.CSS("#collateral"), "none expected"),
		chromedp.SendKeys(chromedp.CSS("#rollback_plan"), "none needed"),
		chromedp.SendKeys(chromedp.CSS("#notification_plan"), "notify the provider"),
		chromedp.SendKeys(chromedp.CSS("#targets-in"), "203.0.113.10,domestic\nupdate.example-c2.jp,domestic"),
		chromedp.Click(chromedp.CSS("#new-measure button")),
		chromedp.WaitVisible(chromedp.CSS("#add-evidence")),
		chromedp.SetUploadFiles(chromedp.CSS("#ev-file"), []string{evidence}),
		chromedp.SendKeys(chromedp.CSS("#ev-kind"), "pcap"),
		chromedp.Click(chromedp.CSS("#add-evidence button")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	// The upload went with its progress shown (the page's own script, served by the server).
	sent, err := chromedp.Run(officer, chromedp.Evaluate[string](`document.documentElement.dataset.uploaded || ""`))
	if err != nil || !strings.Contains(sent, "/") || strings.HasPrefix(sent, "0/") {
		t.Fatalf("the upload's progress: %q (%v)", sent, err)
	}
	stage(t, officer, "DRAFT")
	loc, err := chromedp.Run(officer, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	m := struct{ ID string }{ID: loc[strings.LastIndex(loc, "/")+1:]}
	if got := text(t, officer, "#evidence + ul"); !strings.Contains(got, "beacon.pcap") || !strings.Contains(got, "sha256:") {
		t.Fatalf("the evidence list after the upload: %q", got)
	}
	if got := text(t, officer, "#targets"); !strings.Contains(got, "(2)") {
		t.Fatalf("the draft's targets: %q", got)
	}
	do(t, officer, chromedp.Click(chromedp.CSS("#act-submit button")))
	stage(t, officer, "LEGAL_REVIEW")
	look(officer, "measure-ja")

	// The legal reviewer finds it under My work; a return without a reason is refused and
	// says why; script in the reason comes back as text.
	legal := browser(t, exe)
	logIn(t, legal, base, "legal", pw["legal"])
	if got := text(t, legal, "#waits + table"); !strings.Contains(got, "Neutralise PlugX C2") {
		t.Fatalf("legal's My work lacks the measure: %q", got)
	}
	look(legal, "my-work-ja")
	do(t, legal, chromedp.Navigate(base+"/measures/"+m.ID),
		chromedp.Click(chromedp.CSS(`#act-legal_review input[value="return"]`)),
		chromedp.Click(chromedp.CSS("#act-legal_review button")),
		chromedp.WaitVisible(chromedp.CSS(".error")))
	stage(t, legal, "LEGAL_REVIEW")
	// An approval with a requirement left unticked is refused and names the checklist.
	do(t, legal, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.Click(chromedp.CSS(`#act-legal_review input[value="approve"]`)),
		chromedp.SendKeys(chromedp.CSS("#legal_review-reason"), "fine "+xss))
	tick(t, legal, 5)
	do(t, legal, chromedp.Click(chromedp.CSS("#act-legal_review button")), chromedp.WaitVisible(chromedp.CSS(".error")))
	if got := text(t, legal, ".error"); !strings.Contains(got, "checklist") {
		t.Fatalf("an approval without every requirement: %q", got)
	}
	// The refused form comes back as it was typed, at the measure's own address.
	if u, _ := chromedp.Run(legal, chromedp.Location()); strings.Contains(u, "/act/") {
		t.Fatalf("the refused form stays at %s", u)
	}
	if got, _ := chromedp.Run(legal, chromedp.Value(chromedp.CSS("#legal_review-reason"))); got != "fine "+xss {
		t.Fatalf("the refused form lost the reason typed: %q", got)
	}
	if n, _ := chromedp.Run(legal, chromedp.Evaluate[int](`document.querySelectorAll("#act-legal_review .checklist input:checked").length + document.querySelectorAll('#act-legal_review input[value="approve"]:checked').length`)); n != 6 {
		t.Fatalf("the refused form kept %d of the five ticks and the decision", n)
	}
	do(t, legal, chromedp.Click(chromedp.CSS(`#act-legal_review .checklist label:nth-of-type(6) input`)))
	do(t, legal, chromedp.Click(chromedp.CSS("#act-legal_review button")))
	stage(t, legal, "COMMAND_REVIEW")
	title, err := chromedp.Run(legal, chromedp.Evaluate[string]("document.title"))
	if err != nil || title == "pwned" {
		t.Fatalf("script typed into a reason ran: title %q (%v)", title, err)
	}
	if got := text(t, legal, ".timeline"); !strings.Contains(got, "<script>") {
		t.Fatalf("the reason is not shown as typed: %q", got)
	}

	// The requester sees no reviewer's form on their own request; withdrawing is theirs.
	do(t, officer, chromedp.Navigate(base+"/measures/"+m.ID))
	stage(t, officer, "COMMAND_REVIEW")
	if forms := formIDs(t, officer); len(forms) != 1 || forms[0] != "act-withdraw" {
		t.Fatalf("the officer sees the forms %v in COMMAND_REVIEW, want only act-withdraw", forms)
	}

	// The commander endorses; three members return it for a change, each seeing the digest.
	cmdr := browser(t, exe)
	logIn(t, cmdr, base, "commander", pw["commander"])
	do(t, cmdr, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.Click(chromedp.CSS(`#act-command_review input[value="approve"]`)), chromedp.Click(chromedp.CSS("#act-command_review button")))
	stage(t, cmdr, "COMMISSION_REVIEW")
	members := map[string]context.Context{}
	for _, who := range []string{"chair", "member1", "member2", "member3", "member4"} {
		members[who] = browser(t, exe)
		logIn(t, members[who], base, who, pw[who])
	}
	firstDigest := text(t, officer, "#digest")
	vote := func(who, decision, want string) {
		t.Helper()
		b := members[who]
		do(t, b, chromedp.Navigate(base+"/measures/"+m.ID))
		if got := text(t, b, "#act-vote"); !strings.Contains(got, "sha256:") {
			t.Fatalf("the vote form does not show the digest: %q", got)
		}
		do(t, b, chromedp.Click(chromedp.CSS(`#act-vote input[value="`+decision+`"]`)), chromedp.SendKeys(chromedp.CSS("#vote-reason"), "reasons of "+who))
		submit(t, b, "#act-vote")
		stage(t, b, want)
	}
	// member3 opens version 1 and leaves the tab open while it is returned and comes back changed.
	stale := members["member3"]
	do(t, stale, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS("#act-vote")))
	vote("chair", "return", "COMMISSION_REVIEW")
	vote("member1", "return", "COMMISSION_REVIEW")
	vote("member2", "return", "DRAFT")

	// The officer edits the returned draft: the page says what changed and that the votes on
	// the old version are void.
	do(t, officer, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.Click(chromedp.CSS("#edit-plan")),
		chromedp.WaitVisible(chromedp.CSS("#edit-plan-form")))
	look(officer, "edit-plan-ja")
	do(t, officer, chromedp.SetValue(chromedp.CSS("#operations"), "send the self-delete command\nblock the C2 port"),
		chromedp.SendKeys(chromedp.CSS("#targets-in"), "198.51.100.7,domestic"),
		chromedp.Click(chromedp.CSS("#edit-plan-form button")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	stage(t, officer, "DRAFT")
	if got := text(t, officer, "#field-changes"); !strings.Contains(got, "block the C2 port") || !strings.Contains(got, "実施内容") {
		t.Fatalf("the version diff does not show the operations changed: %q", got)
	}
	if got := text(t, officer, "#targets-added"); !strings.Contains(got, "198.51.100.7") {
		t.Fatalf("the version diff does not show the target added: %q", got)
	}
	void, err := chromedp.Run(officer, chromedp.Evaluate[int](`document.querySelectorAll("#decision-list tr.void").length`))
	if err != nil || void != 5 {
		t.Fatalf("%d decisions shown void after the return, want 5 (two reviews, three votes) (%v)", void, err)
	}
	look(officer, "changes-ja")
	do(t, officer, chromedp.Click(chromedp.CSS("#act-submit button")))
	stage(t, officer, "LEGAL_REVIEW")
	if got := text(t, officer, "#digest"); got == firstDigest || !strings.HasPrefix(got, "sha256:") {
		t.Fatalf("the new version's digest %q (the old was %q)", got, firstDigest)
	}
	do(t, legal, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.Click(chromedp.CSS(`#act-legal_review input[value="approve"]`)))
	tick(t, legal, 6)
	do(t, legal, chromedp.Click(chromedp.CSS("#act-legal_review button")))
	stage(t, legal, "COMMAND_REVIEW")
	do(t, cmdr, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.Click(chromedp.CSS(`#act-command_review input[value="approve"]`)), chromedp.Click(chromedp.CSS("#act-command_review button")))
	stage(t, cmdr, "COMMISSION_REVIEW")

	// member3's approval from the tab still showing version 1 is refused: nothing is recorded,
	// and the page they land on shows what changed since the version they saw.
	do(t, stale, chromedp.Click(chromedp.CSS(`#act-vote input[value="approve"]`)))
	do(t, stale, load("#act-vote button")...)
	do(t, stale, chromedp.WaitVisible(chromedp.CSS(".error")))
	if got := text(t, stale, ".error"); !strings.Contains(got, "表示していた版から措置が変わりました") || !strings.Contains(got, "v1 → v2") {
		t.Fatalf("the stale vote's refusal: %q", got)
	}
	if got := text(t, stale, "#changes-versions"); !strings.HasPrefix(got, "v1 ") {
		t.Fatalf("the stale vote's page compares with %q, want the version seen (v1)", got)
	}
	if got := text(t, stale, "#targets-added"); !strings.Contains(got, "198.51.100.7") {
		t.Fatalf("the stale vote's page does not show the target added since version 1: %q", got)
	}
	if n, _ := chromedp.Run(stale, chromedp.Evaluate[int](`document.querySelectorAll('#act-vote input[name="decision"]:checked').length`)); n != 0 {
		t.Fatalf("after the stale refusal the vote form comes back with its choice made: one click would carry it to the new version")
	}
	look(stale, "stale-vote-ja")
	if ds, err := e.Users["chair"].Decisions(context.Background(), m.ID); err != nil || slices.ContainsFunc(ds, func(d client.Decision) bool { return d.By == e.IDs["member3"] }) {
		t.Fatalf("a vote from the stale page was recorded: %+v (%v)", ds, err)
	}

	// One member recuses; three vote on the new digest and approve, member3 among them now
	// that they have read it.
	do(t, members["member4"], chromedp.Navigate(base+"/measures/"+m.ID),
		chromedp.Click(chromedp.CSS(`#act-declare_conflict input[value="true"]`)),
		chromedp.SendKeys(chromedp.CSS("#declare_conflict-reason"), "advised the hosting provider"),
		chromedp.Click(chromedp.CSS("#act-declare_conflict button")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if forms := formIDs(t, members["member4"]); contains(forms, "act-vote") || contains(forms, "act-request_info") {
		t.Fatalf("a recused member is offered a part in the review: %v", forms)
	}
	vote("chair", "approve", "COMMISSION_REVIEW")
	vote("member1", "approve", "COMMISSION_REVIEW")
	vote("member3", "approve", "APPROVED")
	do(t, cmdr, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS("#stage")))
	if forms := formIDs(t, cmdr); contains(forms, "act-issue_order") {
		t.Fatalf("a self-execution measure offers an order to its administrator: %v", forms)
	}
	now, err := e.Users["chair"].Measure(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.Users["chair"].Decisions(context.Background(), m.ID)
	if err != nil || !slices.ContainsFunc(ds, func(d client.Decision) bool {
		return d.By == e.IDs["member3"] && d.Kind == "vote" && d.Digest == now.Digest && d.Version == now.Version
	}) {
		t.Fatalf("member3's vote after reading is not recorded on version %d %s: %+v (%v)", now.Version, now.Digest, ds, err)
	}
	look(members["member2"], "approved-ja")

	// Another organisation's executor cannot open it by its address.
	pref := browser(t, exe)
	logIn(t, pref, base, "executor-pref", pw["executor-pref"])
	do(t, pref, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS(".error")))
	if got := text(t, pref, "main"); strings.Contains(got, "Neutralise PlugX C2") || strings.Contains(got, "203.0.113.10") {
		t.Fatalf("another organisation's executor sees the measure: %q", got)
	}

	// The executor logs steps: one outside the approved targets is refused with its rule.
	ex := browser(t, exe)
	logIn(t, ex, base, "executor", pw["executor"])
	do(t, ex, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.Click(chromedp.CSS("#act-start_execution button")))
	stage(t, ex, "EXECUTING")
	step := func(target string) chromedp.Action[chromedp.Void] {
		return chromedp.SendKeys(chromedp.CSS("#log_steps-steps"), target+",disable_malware,sent self-delete,success,"+e.IDs["executor2"]+","+time.Now().UTC().Format(time.RFC3339Nano))
	}
	// The page that shows EXECUTING may still be replaced (the form's answer, then its
	// redirect): the nodes typed into went stale under the query (seen in CI, twice). The
	// page is loaded afresh, to its load event, before anything is typed.
	do(t, ex, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS("#act-log_steps button")))
	do(t, ex, step("192.0.2.99"), chromedp.Click(chromedp.CSS("#act-log_steps button")), chromedp.WaitVisible(chromedp.CSS(".error")))
	if got := text(t, ex, ".error"); !strings.Contains(got, "scope") {
		t.Fatalf("the out-of-scope step's refusal: %q", got)
	}
	look(ex, "refused-scope-ja")
	// The steps in scope come as a CSV file.
	stepsFile := filepath.Join(t.TempDir(), "steps.csv")
	if err := os.WriteFile(stepsFile, []byte("203.0.113.10,disable_malware,sent self-delete,success,"+e.IDs["executor2"]+","+time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	do(t, ex, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.SetUploadFiles(chromedp.CSS("#log_steps-steps-file"), []string{stepsFile}),
		chromedp.Click(chromedp.CSS("#act-log_steps button")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	// The flash shows at the top of a page still arriving: click on it once it is whole.
	do(t, ex, loaded(), chromedp.Click(chromedp.CSS("#act-finish_execution button")))
	stage(t, ex, "EXECUTED")
	if got := text(t, ex, ".timeline"); !strings.Contains(got, "実施記録 Executor") || !strings.Contains(got, "実施中 → 実施中") || strings.Contains(got, e.IDs["executor"]) {
		t.Fatalf("the uploaded steps are not in the timeline: %q", got)
	}
	do(t, officer, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.SendKeys(chromedp.CSS("#report-body"), "1 target neutralised, no collateral"),
		chromedp.Click(chromedp.CSS("#act-report button")))
	stage(t, officer, "REPORTED")
	do(t, cmdr, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS(".report-body")))
	if got := text(t, cmdr, ".report-body"); got != "1 target neutralised, no collateral" {
		t.Fatalf("the commander verifies a report the page shows as %q", got)
	}
	if got := text(t, cmdr, "#step-list tbody"); !strings.Contains(got, "203.0.113.10") || !strings.Contains(got, "Executor (NPA, witness)") {
		t.Fatalf("the execution steps on the page: %q", got)
	}
	do(t, cmdr, chromedp.Click(chromedp.CSS("#act-verify_report button")))
	stage(t, cmdr, "NOTIFYING")
	look(cmdr, "notifying-ja")
	// The case the measure belongs to, and the case list.
	do(t, cmdr, chromedp.Click(chromedp.CSS("#case a")), chromedp.WaitVisible(chromedp.CSS("#case-measure-list")))
	if got := text(t, cmdr, "#case-measure-list"); !strings.Contains(got, "Neutralise PlugX C2") {
		t.Fatalf("the case page lists %q", got)
	}
	look(cmdr, "case-ja")
	do(t, cmdr, chromedp.Click(chromedp.CSS("#cases-link")), chromedp.WaitVisible(chromedp.CSS("#case-list")))
	if got := text(t, cmdr, "#case-list"); !strings.Contains(got, "PlugX botnet") {
		t.Fatalf("the case list: %q", got)
	}
	look(cmdr, "cases-ja")

	// The auditor downloads the evidence (audited) and sees a timeline entry's inclusion verified.
	aud := browser(t, exe)
	logIn(t, aud, base, "auditor", pw["auditor"])
	do(t, aud, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS("#evidence + ul a")))
	// The page's own policy forbids script fetches; downloads go with the browser's cookie.
	href, err := chromedp.Run(aud, chromedp.Evaluate[string](`document.querySelector("#evidence + ul a").href`))
	if err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, aud, "GET", href); string(got) != "pcap bytes" {
		t.Fatalf("the auditor's evidence download: %q", got)
	}
	do(t, aud, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".timeline")))
	if got := text(t, aud, ".timeline"); !strings.Contains(got, "証拠資料の閲覧") {
		t.Fatalf("the download is not in the timeline: %q", got)
	}
	do(t, aud, chromedp.Click(chromedp.CSS(".timeline a.proof")), chromedp.WaitVisible(chromedp.CSS(`#inclusion-result[data-verified="true"]`)))
	look(aud, "inclusion-ja")
	proofURL, err := chromedp.Run(aud, chromedp.Evaluate[string](`document.querySelector("#download-proof").href`))
	if err != nil {
		t.Fatal(err)
	}
	doc := fetch(t, aud, "GET", proofURL)
	rec := fetch(t, aud, "GET", strings.Replace(proofURL, "download=proof", "download=record", 1))

	// The audit page gives the policy and the archive; both verify offline as it says.
	do(t, aud, chromedp.Click(chromedp.CSS("#audit-link")), chromedp.WaitVisible(chromedp.CSS("#verify-command")))
	if got := text(t, aud, "#signers"); !strings.Contains(got, "ログ自身の署名") {
		t.Fatalf("the audit page's signers: %q", got)
	}
	look(aud, "audit-ja")
	pol, err := audit.ParsePolicy(text(t, aud, "#policy"))
	if err != nil {
		t.Fatalf("the policy the audit page shows: %v", err)
	}
	if _, i, err := audit.VerifyProof(doc, rec, pol); err != nil {
		t.Fatalf("the downloaded proof of entry %d does not verify offline: %v", i, err)
	}
	archive := fetch(t, aud, "POST", base+"/audit/export")
	dir := t.TempDir()
	untar(t, archive, dir)
	rep, err := audit.VerifyArchive(filepath.Join(dir, "takedown-log"), pol, nil)
	if err != nil || !rep.OK() || rep.Records < 40 {
		t.Fatalf("the exported archive: %v, %+v", err, rep)
	}

	// The Commission's chair finds the measure by a target and reads the year's figures.
	chair := members["chair"]
	do(t, chair, chromedp.Navigate(base+"/measures"), chromedp.SendKeys(chromedp.CSS("#f-target"), "198.51.100."))
	do(t, chair, load("#measure-search button")...)
	if got := text(t, chair, "#measure-list tbody"); !strings.Contains(got, "Neutralise PlugX C2") {
		t.Fatalf("the search by target: %q", got)
	}
	look(chair, "measures-ja")
	do(t, chair, chromedp.Click(chromedp.CSS("#statistics-link")), chromedp.WaitVisible(chromedp.CSS("#quarters")))
	if got := text(t, chair, "#quarters tbody tr:first-child td:last-child"); got != "2" {
		t.Fatalf("the year's approval requests: %q, want 2 (the first version and the second)", got)
	}
	look(chair, "statistics-ja")
	// The same year counted by fiscal year (年度): the period says which, and the requests are
	// the same two (both made today).
	do(t, chair, chromedp.SetValue(chromedp.CSS("#basis"), "fiscal"), chromedp.Click(chromedp.CSS("#year-form button")))
	for i := 0; ; i++ {
		got, _ := chromedp.Run(chair, chromedp.Text(chromedp.CSS("#period")))
		if strings.Contains(got, "年度") && strings.Contains(got, "-04-01") {
			break
		}
		if i > 50 {
			t.Fatalf("the fiscal year's period: %q", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := text(t, chair, "#quarters tbody tr:first-child td:last-child"); got != "2" {
		t.Fatalf("the fiscal year's approval requests: %q, want 2", got)
	}

	// Two administrators hire someone: one proposes, the other (and only the other) approves,
	// and the enrolment code is shown once.
	adm := browser(t, exe)
	logIn(t, adm, base, "admin", pw["admin"])
	do(t, adm, chromedp.Click(chromedp.CSS("#admin-link")), chromedp.WaitVisible(chromedp.CSS("#propose-change")),
		chromedp.SetValue(chromedp.CSS("#kind-in"), "create_user"), chromedp.SetValue(chromedp.CSS("#role-in"), "officer"),
		chromedp.SendKeys(chromedp.CSS("#org-id-in"), "npa-cyber"), chromedp.SendKeys(chromedp.CSS("#username-in"), "tanaka"),
		chromedp.SendKeys(chromedp.CSS("#display-in"), "田中 一郎"), chromedp.SendKeys(chromedp.CSS("#change-reason"), "joins the unit"))
	submit(t, adm, "#propose-change")
	if got := text(t, adm, "#pending ~ form.card"); !strings.Contains(got, "tanaka") || strings.Contains(got, "この変更を承認する") {
		t.Fatalf("the proposer's view of the pending change: %q", got)
	}
	look(adm, "admin-ja")
	adm2 := browser(t, exe)
	logIn(t, adm2, base, "admin2", pw["admin2"])
	do(t, adm2, chromedp.Navigate(base+"/admin"), chromedp.Click(chromedp.CSS("#pending ~ form.card button")),
		chromedp.WaitVisible(chromedp.CSS("#enrolment-code")))
	if got := text(t, adm2, "#user-list"); !strings.Contains(got, "tanaka") {
		t.Fatalf("the new user is not listed: %q", got)
	}

	// Japanese first (the browser asks for it), English on the switch, and the switch sticks.
	do(t, officer, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#waits")), chromedp.WaitReady(chromedp.CSS(`html[lang="ja"]`)),
		chromedp.Click(chromedp.CSS("#language")), chromedp.WaitReady(chromedp.CSS(`html[lang="en"]`)),
		chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS(`html[lang="en"]`)), chromedp.WaitVisible(chromedp.CSS("#waits")))
	look(officer, "my-work-en")
	// Every main page in English too.
	for _, pg := range []struct{ path, sel, name string }{
		{"/measures/" + m.ID, "#stage", "measure-en"},
		{"/measures?target=198.51.100.", "#measure-list", "measures-en"},
		{"/statistics", "#quarters", "statistics-en"},
		{"/audit", "#checkpoint-text", "audit-en"},
		{"/cases/new", "#new-case", "new-case-en"},
		{"/measures/new", "#new-measure", "new-measure-en"},
		{"/cases", "#case-list", "cases-en"},
		{"/enrol", "#enrol", "enrol-en"},
	} {
		do(t, officer, chromedp.Navigate(base+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.sel)), chromedp.WaitReady(chromedp.CSS(`html[lang="en"]`)))
		look(officer, pg.name)
	}
	do(t, adm2, chromedp.Navigate(base+"/lang?to=en&back=/admin"), chromedp.WaitVisible(chromedp.CSS("#user-list")))
	look(adm2, "admin-en")

	// On a tablet (820 px wide, portrait) no main page scrolls sideways.
	do(t, officer, chromedp.EmulateViewport(820, 1180))
	for _, path := range []string{"/", "/measures/" + m.ID, "/measures", "/statistics", "/audit", "/measures/new"} {
		do(t, officer, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("main")))
		wide, err := chromedp.Run(officer, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
		if err != nil || wide > 0 {
			t.Errorf("%s at 820 px scrolls sideways by %d px (%v)", path, wide, err)
		}
	}
	do(t, officer, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitVisible(chromedp.CSS("#stage")))
	shoot(t, officer, "measure-tablet-en")

	// Another site's form cannot post into a session.
	req, _ := http.NewRequest("POST", base+"/measures/"+m.ID+"/act/withdraw", strings.NewReader(url.Values{"reason": {"csrf"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site post: %s, want 403", resp.Status)
	}
}

// formIDs are the decision forms the page offers.
func formIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	forms, err := chromedp.Run(ctx, chromedp.Evaluate[[]string]("[...document.querySelectorAll('form.action')].map(f => f.id)"))
	if err != nil {
		t.Fatal(err)
	}
	return forms
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// submit sends a form and waits for the answer: a refusal fails the test with its words.
func submit(t *testing.T, ctx context.Context, form string) {
	t.Helper()
	do(t, ctx, load(form+" button")...)
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(".flash, .error")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".error").length`)); err != nil || n > 0 {
		t.Fatalf("%s was refused: %s (%v)", form, text(t, ctx, ".error"), err)
	}
}

// fetch sends a request with the browser's session cookie and returns the 200 answer's body.
func fetch(t *testing.T, ctx context.Context, method, u string) []byte {
	t.Helper()
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, u, nil)
	for _, c := range cookies.Cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s (%v) %.300s", method, u, resp.Status, err, body)
	}
	return body
}

// untar unpacks a gzipped tar into dir.
func untar(t *testing.T, data []byte, dir string) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("the archive names a path outside it: %s", h.Name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tick ticks the first n of the legal review's statutory requirements.
func tick(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#act-legal_review .checklist label:nth-of-type(%d) input`, i))))
	}
}

// axeSource is axe-core's script (.ci/run fetches it from the npm registry), or "" where it
// is missing outside CI.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("TAKEDOWN_AXE")
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".cache", "takedown", "axe-4.11.0.min.js")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("axe-core: %v (.ci/run fetches it)", err)
		}
		t.Logf("no axe-core at %s: pages are not checked for accessibility (run .ci/run once to fetch it)", path)
		return ""
	}
	return string(src)
}

// accessible runs axe-core on the page and fails on a serious or critical violation of WCAG
// 2.1 A or AA. DevTools evaluation is not bound by the page's content security policy, so
// the page itself still allows no script.
func accessible(t *testing.T, ctx context.Context, axe, page string) {
	t.Helper()
	if axe == "" {
		return
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axe+";true")); err != nil {
		t.Fatalf("inject axe-core into %s: %v", page, err)
	}
	found, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.passes.length === 0 ? "axe-core checked nothing" : JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => ({rule: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe-core on %s: %v", page, err)
	}
	if found != "[]" {
		t.Errorf("accessibility of %s: %s", page, found)
	}
}

// load clicks sel and waits for the page it leads to: the old page is marked first, so that
// nothing on it is taken for the new one.
func load(sel string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[bool](`document.body.dataset.old = "1"; true`)(ctx, tg)
			return chromedp.Void{}, err
		},
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitReady(chromedp.CSS("body:not([data-old])")),
	}
}

// xss is script as someone might type it into any free-text field.
const xss = `<script>document.title="pwned"</script><img src=x onerror=alert(1)>`

// inert checks that script typed into free text is shown as text on the page: no element it
// would have made exists, and (unless typed is "") the text reads as typed.
func inert(t *testing.T, ctx context.Context, typed string) {
	t.Helper()
	made, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`))
	if err != nil || made != 0 {
		t.Fatalf("typed script made %d elements (%v)", made, err)
	}
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.title"))
	if err != nil || title == "pwned" {
		t.Fatalf("typed script ran: title %q (%v)", title, err)
	}
	if got := text(t, ctx, "main"); typed != "" && !strings.Contains(got, typed) {
		t.Fatalf("the typed text is not shown as typed on the page")
	}
}
