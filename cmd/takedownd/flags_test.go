package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEachCommandShowsItsOwnFlags: `takedownd <command> -h` lists the flags the command
// reads, each of them defined, and a flag of another command is refused by name.
func TestEachCommandShowsItsOwnFlags(t *testing.T) {
	for cmd, own := range commandFlags {
		var out bytes.Buffer
		if err := run(append(strings.Fields(cmd), "-h"), &out, &out); err == nil || !strings.Contains(err.Error(), "help") {
			t.Errorf("%s -h: %v", cmd, err)
		}
		var shown []string
		for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
			shown = append(shown, m[1])
		}
		want := slices.Clone(own)
		slices.Sort(want)
		want = slices.Compact(want)
		if !slices.Equal(shown, want) {
			t.Errorf("%s -h shows %v, want %v", cmd, shown, want)
		}
	}
	var out bytes.Buffer
	err := run([]string{"migrate", "-signing-key", "audit.key", "-database-url", "postgres://x"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "-signing-key") {
		t.Errorf("migrate with a worker's flag: %v", err)
	}
	// A command that does not exist has no help of its own, whatever follows it.
	for _, args := range [][]string{{"witness", "-h"}, {"nosuch", "-h"}, {"audit", "nosuch", "-h"}, {"audit"}} {
		out.Reset()
		if err := run(args, &out, &out); err == nil || !strings.Contains(err.Error(), "unknown command") || strings.Contains(out.String(), "usage: takedownd "+args[0]+" [flags]") {
			t.Errorf("takedownd %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
	// keygen refuses an origin no signed note can carry, and writes nothing.
	dir := t.TempDir()
	for _, origin := range []string{"a+b", "a b", "a\nb", "a\tb", "a\x00b", "\xff"} {
		out.Reset()
		path := filepath.Join(dir, "k.key")
		if err := run([]string{"keygen", "-out", path, "-log-origin", origin}, &out, &out); err == nil || !strings.Contains(err.Error(), "-log-origin") {
			t.Errorf("keygen -log-origin %q: %v", origin, err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("keygen -log-origin %q wrote a key", origin)
		}
	}
}

// TestREADMEDocumentsEveryFlag: every flag a command reads is in README.md, with its
// environment variable when it has one.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for cmd := range commandFlags {
		var out bytes.Buffer
		_ = run(append(strings.Fields(cmd), "-h"), &out, &out)
		for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+).*\n((?:    \t.*\n?)*)`).FindAllStringSubmatch(out.String(), -1) {
			name, usage := m[1], m[2]
			if !strings.Contains(string(readme), "`-"+name+"`") && !strings.Contains(string(readme), "-"+name+" ") {
				t.Errorf("README.md does not mention -%s (takedownd %s)", name, cmd)
			}
			for _, env := range regexp.MustCompile(`\((TAKEDOWN_[A-Z_]+|TEMPORAL_[A-Z_]+|DATABASE_URL)[,)]`).FindAllStringSubmatch(usage, -1) {
				if !strings.Contains(string(readme), "`"+env[1]+"`") {
					t.Errorf("README.md does not mention %s (-%s)", env[1], name)
				}
			}
		}
	}
}
