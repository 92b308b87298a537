package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadTargets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lines := write("lines.txt", "# C2 list\n203.0.113.10\n\n198.51.100.0/24\nupdate.example-c2.jp\nhttps://c2.example.net/gate\nAS64500\n")
	got, err := readTargets(lines, "abroad")
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"kind": "ip", "value": "203.0.113.10", "location": "abroad"},
		{"kind": "cidr", "value": "198.51.100.0/24", "location": "abroad"},
		{"kind": "domain", "value": "update.example-c2.jp", "location": "abroad"},
		{"kind": "url", "value": "https://c2.example.net/gate", "location": "abroad"},
		{"kind": "asn", "value": "AS64500", "location": "abroad"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lines:\n got  %v\n want %v", got, want)
	}

	csvFile := write("t.csv", "value,port,location,country,role\n203.0.113.10,443,domestic,JP,c2\n\"bad.example\",,unknown,,proxy\n")
	got, err = readTargets(csvFile, "")
	if err != nil {
		t.Fatal(err)
	}
	want = []map[string]any{
		{"kind": "ip", "value": "203.0.113.10", "port": 443, "location": "domestic", "country": "JP", "role": "c2"},
		{"kind": "domain", "value": "bad.example", "location": "unknown", "role": "proxy"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("csv:\n got  %v\n want %v", got, want)
	}
	// Saved by a spreadsheet on Windows: a byte-order mark before the header, CRLF lines.
	got, err = readTargets(write("excel.csv", "\xef\xbb\xbfvalue,port,location,country,role\r\n203.0.113.10,443,domestic,JP,c2\r\n\"bad.example\",,unknown,,proxy\r\n"), "")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("csv with a byte-order mark:\n got  %v (%v)\n want %v", got, err, want)
	}
	got, err = readTargets(write("bom.txt", "\xef\xbb\xbf203.0.113.10\n"), "domestic")
	if err != nil || len(got) != 1 || got[0]["value"] != "203.0.113.10" || got[0]["kind"] != "ip" {
		t.Fatalf("a list with a byte-order mark: %v (%v)", got, err)
	}
	if _, err := readTargets(write("bad.csv", "value,port\n203.0.113.1,https\n"), ""); err == nil {
		t.Fatal("a non-numeric port must be refused")
	}
	if _, err := readTargets(write("empty.txt", "# nothing\n"), ""); err == nil {
		t.Fatal("an empty file must be refused")
	}
}
