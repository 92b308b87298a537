package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSlimBuildLinksNoTemporalServer: `go build -tags nodev` makes a takedownd for serve and
// worker without the embedded Temporal server, and its `dev` says why it cannot run.
func TestSlimBuildLinksNoTemporalServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	t.Parallel() // waits on its own processes and databases more than it computes
	deps, err := exec.Command("go", "list", "-deps", "-tags", "nodev", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(deps)) {
		if strings.HasPrefix(p, "go.temporal.io/server") {
			t.Fatalf("the nodev build links %s", p)
		}
	}
	bin := filepath.Join(t.TempDir(), "takedownd")
	if out, err := exec.Command("go", "build", "-tags", "nodev", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nodev: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "dev", "-data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "built with -tags nodev") {
		t.Fatalf("dev in the slim build: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "serve", "-h").CombinedOutput(); err != nil || !strings.Contains(string(out), "-payload-key") {
		t.Fatalf("serve -h in the slim build: %v\n%s", err, out)
	}
}
