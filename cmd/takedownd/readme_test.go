package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/takedown/takedown/internal/testdb"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// takedowndBinary builds takedownd once for the tests that run it as a user would.
func takedowndBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "takedownd-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "takedownd")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = &buildError{err, out}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string {
	return "build takedownd: " + e.err.Error() + "\n" + string(e.out)
}

// walkthrough returns the README's shell blocks marked <!-- walkthrough -->, in order.
func walkthrough(readme string) string {
	var script strings.Builder
	for _, part := range strings.Split(readme, "<!-- walkthrough -->")[1:] {
		part = strings.TrimLeft(part, "\n")
		body, ok := strings.CutPrefix(part, "```sh\n")
		if !ok {
			continue
		}
		end := strings.Index(body, "\n```")
		script.WriteString(body[:end+1])
	}
	return script.String()
}

// copyCheckout copies the repository's tracked files to dir: the walkthrough runs in a fresh
// checkout, as a newcomer's does.
func copyCheckout(t *testing.T, root, dir string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src, dst := filepath.Join(root, f), filepath.Join(dir, f)
		info, err := os.Stat(src)
		if err != nil {
			continue // deleted in the working tree
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		o, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(o, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		o.Close()
	}
}

// TestREADMEWalkthrough runs every command of the README's walkthrough verbatim, in a copy of
// the checkout, against a fresh `takedownd dev`: if the README says it, it works.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	t.Parallel() // waits on its own processes and databases more than it computes
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script := walkthrough(string(readme))
	if strings.Count(script, "./takedown act") < 15 {
		t.Fatalf("the walkthrough found in README.md is too short:\n%s", script)
	}
	bin := takedowndBinary(t)
	checkout := t.TempDir()
	copyCheckout(t, "../..", checkout)
	dbURL := testdb.New(t)
	addr := freeAddr(t)
	srv, _ := startDev(t, bin, filepath.Join(checkout, ".takedown"), dbURL, addr)
	defer func() {
		srv.cmd.Process.Signal(syscall.SIGINT)
		srv.cmd.Wait()
	}()

	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir = checkout
	cmd.Env = append(os.Environ(), "TAKEDOWN_SERVER="+srv.url, "DATABASE_URL="+dbURL, "XDG_CONFIG_HOME="+t.TempDir(), "TAKEDOWN_TOKEN=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"CLOSED (version 1)", "npa-cyber    PlugX botnet", "CLOSED               v1", "COMMISSION_REVIEW (version 1)", "OK: signature, every entry", "witnesses: quorum \"dev\" met", "OK: the record is entry 5",
		"tanaka enrolled", "logged in as tanaka", "1 decisions personally signed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, out.String())
		}
	}

	// --help on every command prints its usage and exits 0.
	cli := filepath.Join(checkout, "takedown")
	for _, c := range [][]string{{bin, "-h"}, {bin, "dev", "-h"}, {bin, "serve", "--help"}, {bin, "audit", "export", "-h"},
		{cli, "help"}, {cli, "act", "-h"}, {cli, "audit", "verify", "--help"}, {cli, "case", "create", "-h"}} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err != nil || !strings.Contains(strings.ToLower(string(out)), "usage") {
			t.Errorf("%s: %v\n%s", strings.Join(c[1:], " "), err, out)
		}
	}
}
