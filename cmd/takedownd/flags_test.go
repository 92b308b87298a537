package main

import (
	"bytes"
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
}
