package web

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// Every message key a page names literally exists in both languages: a missing one would show
// its key to the user.
func TestEveryMessageKeyExists(t *testing.T) {
	files, err := filepath.Glob("*.templ")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("*.go")
	files = append(files, more...)
	literal := regexp.MustCompile(`\bT\((?:p\.Lang|lang|language\(r\)|p\.Lang), "([^"]+)"\)`)
	found := 0
	for _, f := range files {
		if filepath.Ext(f) == ".go" && (len(f) > 9 && f[len(f)-9:] == "_templ.go" || len(f) > 8 && f[len(f)-8:] == "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			found++
			if _, ok := messages[m[1]]; !ok {
				t.Errorf("%s: message %q has no translation", f, m[1])
			}
		}
	}
	if found < 50 {
		t.Fatalf("found only %d message keys: the pattern no longer matches the pages", found)
	}
	// Keys made at run time.
	for _, k := range []string{"decision:legal", "decision:command", "decision:post_hoc", "decision:report_verification",
		"decision:vote", "decision:conflict", "decision:gate", "keys:configuration", "keys:database", "log", "witness",
		"approve", "return", "reject", "accepted", "impropriety", "complied", "not_complied", "recused", "no_conflict",
		"foreign_ministry", "pm_order"} {
		if _, ok := messages[k]; !ok {
			t.Errorf("message %q has no translation", k)
		}
	}
	for _, k := range service.Kinds {
		if _, ok := messages["kind:"+k]; !ok {
			t.Errorf("change kind %q has no translation", k)
		}
	}
	for _, row := range countRows {
		if _, ok := messages["stat:"+row.key]; !ok {
			t.Errorf("figure %q has no translation", row.key)
		}
	}
	for _, r := range measure.LegalRequirements {
		k := "req:" + r
		if _, ok := messages[k]; !ok {
			t.Errorf("message %q has no translation", k)
		}
	}
	for k, m := range messages {
		if m[0] == "" || m[1] == "" {
			t.Errorf("message %q lacks a language: %q", k, m)
		}
	}
}

// TestEveryWordExists: every key a page names literally, and every key it builds from a
// list, is in the catalogue: a missing one would show the key itself, in English, on a
// Japanese page.
func TestEveryWordExists(t *testing.T) {
	files, err := filepath.Glob("*.templ")
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	key := regexp.MustCompile(`T\(p\.Lang, "([^"]+)"\)`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(b), -1) {
			n++
			if _, ok := messages[m[1]]; !ok {
				t.Errorf("%s: no words for %q", f, m[1])
			}
		}
	}
	if n < 200 {
		t.Fatalf("found %d keys in the templates; the reader has lost them", n)
	}
	var built []string
	for _, k := range service.NoticeKinds {
		built = append(built, "notice:"+k)
	}
	for _, k := range []string{"threat-actor", "intrusion-set", "campaign", "malware", "tool"} {
		built = append(built, "intel:"+k)
	}
	built = append(built, "channel:email", "channel:webhook", "notice:sent", "notice:deferred")
	for _, k := range built {
		if _, ok := messages[k]; !ok {
			t.Errorf("no words for %q", k)
		}
	}
}
