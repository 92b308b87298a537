package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestImportFromTheCLI: `takedown targets import` prints the preview of the shared MISP event
// and, without a terminal or -yes, imports nothing but prints the command that does; that
// command imports exactly the previewed targets; -yes imports a STIX bundle at once.
func TestImportFromTheCLI(t *testing.T) {
	fixtures := filepath.Join("..", "..", "internal", "intel", "testdata")
	if _, err := os.Stat(fixtures); err != nil {
		t.Fatal("the fixtures are not in internal/intel/testdata")
	}
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	t.Setenv("TAKEDOWN_SERVER", e.D.URL)
	t.Setenv("TAKEDOWN_TOKEN", e.Users["officer"].Token)
	no := false
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		fs := args
		err := runWith(ctx, fs, &out, strings.NewReader(""), &no)
		return out.String(), err
	}
	off := e.Users["officer"]
	caseID, err := off.CreateCase(ctx, "Sednit", "APT28 C2")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, map[string]any{"title": "Sednit C2", "kind": "self_execute", "technique": "block_c2", "executors": []string{e.IDs["executor"]}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cli("targets", "import", "-measure", m.ID, filepath.Join(fixtures, "misp", "sednit-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MISP file 5a3c2fcd-8328-42bb-a95e-4f4402de0b81", "producer  CIRCL", "marking   TLP:WHITE",
		"29 targets to add", "+ domain movieultimate.com", "attribution: threat-actor Sofacy", "skipped    38 text:", "nothing imported yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("the preview lacks %q:\n%s", want, out)
		}
	}
	if got, _ := off.Measure(ctx, m.ID); got.Targets != 0 {
		t.Fatalf("the preview imported %d targets", got.Targets)
	}
	confirm := regexp.MustCompile(`takedown (targets import -confirm \S+ -targets-sha256 [0-9a-f]{64})`).FindStringSubmatch(out)
	if confirm == nil {
		t.Fatalf("no confirm command in:\n%s", out)
	}
	if out, err := cli(strings.Fields(confirm[1])...); err != nil || !strings.Contains(out, "has 29 targets") {
		t.Fatalf("confirming: %v\n%s", err, out)
	}
	if _, err := cli(strings.Fields(confirm[1])...); err == nil || !strings.Contains(err.Error(), "confirmed already") {
		t.Fatalf("confirming twice: %v", err)
	}
	out, err = cli("targets", "import", "-measure", m.ID, "-yes", filepath.Join(fixtures, "stix", "apt1.json"))
	if err != nil || !strings.Contains(out, "has 36 targets") {
		t.Fatalf("-yes: %v\n%s", err, out)
	}
	if _, err := cli("targets", "import", "-measure", m.ID, "-format", "misp", filepath.Join(fixtures, "stix", "apt1.json")); err == nil {
		t.Fatal("a STIX bundle read as MISP was accepted")
	}
}
