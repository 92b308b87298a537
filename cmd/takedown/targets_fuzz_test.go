package main

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadTargets: a target file as `takedown targets add` reads it, one per line or CSV with
// a header. Nothing panics, and every target read carries a value and a kind.
func FuzzReadTargets(f *testing.F) {
	for _, s := range []string{"203.0.113.10\nupdate.example-c2.jp\n", "kind,value,port\nip,203.0.113.1,443\n", "value,port\nx,notaport\n",
		"value,location\n\"a\nb\",domestic\n", "value\n", "# only a comment\n\n", "value,a,b\nx\n", "例え。jp\r\n"} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "targets")
	f.Fuzz(func(t *testing.T, content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		ts, err := readTargets(path, "domestic")
		if err != nil {
			return
		}
		for _, tg := range ts {
			if tg["kind"] == nil && tg["value"] != nil {
				t.Fatalf("a target without a kind: %v", tg)
			}
		}
	})
}
