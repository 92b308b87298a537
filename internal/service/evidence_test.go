package service

import "testing"

// TestEvidenceNamesAreNames: an evidence file's name is kept as a name (what follows the last
// separator), never a path, and one that would display other than it is, is refused.
func TestEvidenceNamesAreNames(t *testing.T) {
	for name, want := range map[string]string{
		"c2.pcap":                "c2.pcap",
		"../../../../etc/passwd": "passwd",
		`C:\cases\beacon.pcap`:   "beacon.pcap",
		"/abs/dir/dump.bin ":     "dump.bin",
		"..":                     "",
		"dir/":                   "",
		"a/..":                   "",
		"x\u202egpj.exe":         "",
		"\u2067name\u2069.pdf":   "",
		"レポート.pdf":               "レポート.pdf",
	} {
		e := Evidence{Filename: name, Kind: "pcap", Provenance: "own_investigation"}
		err := e.check()
		switch {
		case want == "" && err == nil:
			t.Errorf("%q was taken as %q", name, e.Filename)
		case want != "" && (err != nil || e.Filename != want):
			t.Errorf("%q: kept as %q (%v), want %q", name, e.Filename, err, want)
		}
	}
}
