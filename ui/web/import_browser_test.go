package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserImport: in Chromium, an officer uploads OASIS's infrastructure bundle into a
// draft, reads the preview in Japanese (the documentation address and the reserved name noted),
// confirms it, and finds each imported target with its STIX id; a file that is not JSON is
// refused on the draft's page, saying why, and adds nothing.
func TestBrowserImport(t *testing.T) {
	fixture := filepath.Join("..", "..", "internal", "intel", "testdata", "stix", "infrastructure.json")
	if _, err := os.Stat(fixture); err != nil {
		t.Fatal("the fixtures are not in internal/intel/testdata")
	}
	fixture, _ = filepath.Abs(fixture)
	exe, e, pw := start(t)
	ctx := context.Background()
	off := e.Users["officer"]
	caseID, err := off.CreateCase(ctx, "Poison Ivy", "C2 infrastructure reported by a partner")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, map[string]any{"title": "Poison Ivy C2", "kind": "self_execute", "technique": "block_c2", "executors": []string{e.IDs["executor"]}})
	if err != nil {
		t.Fatal(err)
	}
	b := browser(t, exe)
	base := e.D.URL
	logIn(t, b, base, "officer", pw["officer"])

	garbage := filepath.Join(t.TempDir(), "notes.json")
	if err := os.WriteFile(garbage, []byte("this is not JSON\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	do(t, b, chromedp.Navigate(base+"/measures/"+m.ID), chromedp.SetUploadFiles(chromedp.CSS("#imp-file"), []string{garbage}),
		chromedp.Click(chromedp.CSS("#import-targets button")), chromedp.WaitVisible(chromedp.CSS(".error")))
	if got := text(t, b, ".error"); !strings.Contains(got, "JSON のオブジェクトではありません") {
		t.Fatalf("the refusal of a file that is not JSON: %q", got)
	}

	do(t, b, chromedp.SetUploadFiles(chromedp.CSS("#imp-file"), []string{fixture}),
		chromedp.Click(chromedp.CSS("#import-targets button")), chromedp.WaitVisible(chromedp.CSS("#import-counts")))
	if got := text(t, b, "#count-targets"); got != "2" {
		t.Fatalf("targets to add: %q", got)
	}
	list := text(t, b, "#import-target-list")
	for _, want := range []string{"198.51.100.3", "文書例示用のアドレスです(RFC 5737)", "example.com", "予約された名前です", "stix:ipv4-addr--1e4ffad7-0b88-41d4-ba4d-77d27490b956"} {
		if !strings.Contains(list, want) {
			t.Errorf("the preview's targets lack %q:\n%s", want, list)
		}
	}
	if got := text(t, b, "#import-attribution-list"); !strings.Contains(got, "Poison Ivy") || !strings.Contains(got, "マルウェア") {
		t.Errorf("the preview's attribution: %q", got)
	}
	if n, _ := off.Measure(ctx, m.ID); n.Targets != 0 {
		t.Fatalf("the preview added %d targets", n.Targets)
	}
	shoot(t, b, "import-preview")
	do(t, b, chromedp.Click(chromedp.CSS("#confirm-import button")), chromedp.WaitVisible(chromedp.CSS("#target-list")))
	if got := text(t, b, "#target-list"); !strings.Contains(got, "stix:domain-name--ecb120bf-2694-4902-a737-62b74539a41b") || !strings.Contains(got, "198.51.100.3") {
		t.Fatalf("the draft's targets after the import: %q", got)
	}
	if got := text(t, b, "#case-attribution"); !strings.Contains(got, "Poison Ivy") {
		t.Fatalf("the case's attribution after the import: %q", got)
	}
}
