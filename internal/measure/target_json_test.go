package measure

import (
	"encoding/json"
	"testing"
)

// FuzzTargetJSON: a target written by AppendJSON is byte for byte what encoding/json writes
// (the seal's hash of every version depends on it).
func FuzzTargetJSON(f *testing.F) {
	f.Add("ip", "203.0.113.10", 443, "domestic", "JP", "c2", "", "", "", "")
	f.Add("domain", "<a&b>\u2028\u2029\x00\x1f\"\\\b\f\n\r\t\x7f", -1, "", "\xff\xfe", "例え", "\xe2\x80", "é", "\U0001F600", "stix:indicator--1")
	f.Fuzz(func(t *testing.T, kind, value string, port int, location, country, role, ownership, hosting, registrar, source string) {
		tg := Target{Kind: kind, Value: value, Port: port, Location: location, Country: country, Role: role, Ownership: ownership,
			HostingProvider: hosting, Registrar: registrar, Source: source}
		want, err := json.Marshal(tg)
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON differs from encoding/json:\n got  %s\n want %s", got, want)
		}
	})
}
