package web_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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

// browser is one person's browser: its own cookies, so its own session.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	actx, cancel := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true), chromedp.Flag("lang", "ja"), chromedp.Flag("accept-lang", "ja"),
		chromedp.WindowSize(1280, 900))
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
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
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#stage[data-stage="`+want+`"]`)))
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
	exe := chromium(t)
	e := testenv.Start(t, workflows.DefaultConfig())
	base := e.D.URL
	pw := map[string]string{}
	for _, c := range e.D.Credentials {
		pw[c.Username] = c.Password
	}
	// The officer opens a case and drafts the measure in forms, uploads evidence, submits.
	officer := browser(t, exe)
	logIn(t, officer, base, "officer", pw["officer"])
	evidence := filepath.Join(t.TempDir(), "beacon.pcap")
	if err := os.WriteFile(evidence, []byte("pcap bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	do(t, officer, chromedp.Click(chromedp.CSS("#new-case-link")),
		chromedp.SendKeys(chromedp.CSS("#title"), "PlugX botnet"),
		chromedp.Click(chromedp.CSS("#new-case button")),
		chromedp.WaitVisible(chromedp.CSS("#new-measure")),
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
	shoot(t, officer, "measure-ja")

	// The legal reviewer finds it under My work; a return without a reason is refused and
	// says why; script in the reason comes back as text.
	legal := browser(t, exe)
	logIn(t, legal, base, "legal", pw["legal"])
	if got := text(t, legal, "#waits + table"); !strings.Contains(got, "Neutralise PlugX C2") {
		t.Fatalf("legal's My work lacks the measure: %q", got)
	}
	shoot(t, legal, "my-work-ja")
	do(t, legal, chromedp.Navigate(base+"/measures/"+m.ID),
		chromedp.Click(chromedp.CSS(`#act-legal_review input[value="return"]`)),
		chromedp.Click(chromedp.CSS("#act-legal_review button")),
		chromedp.WaitVisible(chromedp.CSS(".error")))
	stage(t, legal, "LEGAL_REVIEW")
	xss := `<script>document.title="pwned"</script><img src=x onerror=alert(1)>`
	do(t, legal, chromedp.SendKeys(chromedp.CSS("#legal_review-reason"), "fine "+xss),
		chromedp.Click(chromedp.CSS("#act-legal_review button")))
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
	forms, err := chromedp.Run(officer, chromedp.Evaluate[[]string]("[...document.querySelectorAll('form.action')].map(f => f.id)"))
	if err != nil || len(forms) != 1 || forms[0] != "act-withdraw" {
		t.Fatalf("the officer sees the forms %v in COMMAND_REVIEW, want only act-withdraw (%v)", forms, err)
	}

	// Commander, then three votes: the page shows the digest voted on.
	cmdr := browser(t, exe)
	logIn(t, cmdr, base, "commander", pw["commander"])
	do(t, cmdr, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.Click(chromedp.CSS("#act-command_review button")))
	stage(t, cmdr, "COMMISSION_REVIEW")
	for i, who := range []string{"chair", "member1", "member2"} {
		b := browser(t, exe)
		logIn(t, b, base, who, pw[who])
		do(t, b, chromedp.Navigate(base+"/measures/"+m.ID))
		if got := text(t, b, "#act-vote"); !strings.Contains(got, "sha256:") {
			t.Fatalf("the vote form does not show the digest: %q", got)
		}
		do(t, b, chromedp.Click(chromedp.CSS("#act-vote button")))
		if i == 2 {
			stage(t, b, "APPROVED")
			shoot(t, b, "approved-ja")
		}
	}

	// Japanese first (the browser asks for it), English on the switch, and the switch sticks.
	do(t, officer, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#waits")), chromedp.WaitReady(chromedp.CSS(`html[lang="ja"]`)),
		chromedp.Click(chromedp.CSS("#language")), chromedp.WaitReady(chromedp.CSS(`html[lang="en"]`)),
		chromedp.Navigate(base+"/measures/"+m.ID), chromedp.WaitReady(chromedp.CSS(`html[lang="en"]`)))
	shoot(t, officer, "my-work-en")

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
