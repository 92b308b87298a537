package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDeploymentFiles checks docs/deploy/ against the code, statically (no container engine or
// systemd here): each unit runs a command with flags that command reads, as an unprivileged
// user; the environment file sets variables takedownd reads; the image builds the slim binary
// and runs it as non-root.
func TestDeploymentFiles(t *testing.T) {
	dir := "../../docs/deploy"
	units, _ := filepath.Glob(filepath.Join(dir, "takedown-*.service"))
	if len(units) < 3 {
		t.Fatalf("%d unit files in %s, want serve, worker and witness", len(units), dir)
	}
	src, err := os.ReadFile("../../internal/daemon/config.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		raw, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "\nUser="} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %s", u, strings.TrimSpace(want))
			}
		}
		if strings.Contains(text, "User=root") {
			t.Errorf("%s runs as root", u)
		}
		exec := regexp.MustCompile(`(?m)^ExecStart=(\S+) (\S+)(.*)$`).FindStringSubmatch(text)
		if exec == nil {
			t.Fatalf("%s: no ExecStart", u)
		}
		if !strings.HasSuffix(exec[1], "/takedownd") {
			continue // the witness
		}
		own, ok := commandFlags[exec[2]]
		if !ok {
			t.Errorf("%s runs takedownd %s, not a command", u, exec[2])
		}
		for _, f := range regexp.MustCompile(`(?:^|\s)-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(exec[3], -1) {
			if !slices.Contains(own, f[1]) {
				t.Errorf("%s: takedownd %s does not read -%s", u, exec[2], f[1])
			}
		}
	}
	f, err := os.Open(filepath.Join(dir, "takedown.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok || !strings.Contains(string(src), `"`+name+`"`) {
			t.Errorf("takedown.env sets %s, which takedownd does not read", name)
		}
	}
	img, err := os.ReadFile(filepath.Join(dir, "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-tags nodev", "CGO_ENABLED=0", "USER nonroot", "distroless"} {
		if !strings.Contains(string(img), want) {
			t.Errorf("Containerfile: no %q", want)
		}
	}
}
