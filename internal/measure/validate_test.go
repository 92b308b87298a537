package measure

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTargetValidate(t *testing.T) {
	tests := []struct {
		in        Target
		wantField string // "" when valid
		wantValue string // normalised value when valid
	}{
		{Target{Kind: "ip", Value: "203.0.113.10"}, "", "203.0.113.10"},
		{Target{Kind: "ip", Value: "2001:DB8::1"}, "", "2001:db8::1"},
		{Target{Kind: "ip", Value: "203.0.113.300"}, "value", ""},
		{Target{Kind: "ip", Value: "fe80::1%eth0"}, "value", ""},
		{Target{Kind: "cidr", Value: "198.51.100.0/24"}, "", "198.51.100.0/24"},
		{Target{Kind: "cidr", Value: "198.51.100.7/24"}, "value", ""},
		{Target{Kind: "cidr", Value: "198.51.100.0"}, "value", ""},
		{Target{Kind: "domain", Value: "Update.Example-C2.jp."}, "", "update.example-c2.jp"},
		{Target{Kind: "domain", Value: "localhost"}, "value", ""},
		{Target{Kind: "domain", Value: "300.1.1.1"}, "value", ""},
		{Target{Kind: "domain", Value: "c2.example.123"}, "value", ""},
		{Target{Kind: "domain", Value: "3com.example"}, "", "3com.example"},
		{Target{Kind: "domain", Value: "-bad.example"}, "value", ""},
		{Target{Kind: "domain", Value: "例え.jp"}, "", "xn--r8jz45g.jp"},
		{Target{Kind: "domain", Value: "xn--r8jz45g.jp"}, "", "xn--r8jz45g.jp"},
		{Target{Kind: "domain", Value: "192.0.2.1"}, "value", ""},
		{Target{Kind: "url", Value: "https://c2.example.net/gate.php?id=1"}, "", "https://c2.example.net/gate.php?id=1"},
		{Target{Kind: "url", Value: "c2.example.net/gate.php"}, "value", ""},
		{Target{Kind: "url", Value: "javascript:alert(1)"}, "value", ""},
		{Target{Kind: "url", Value: "https://c2.example.net:8443/gate"}, "", "https://c2.example.net:8443/gate"},
		{Target{Kind: "url", Value: "https://c2.example.net:99999/gate"}, "value", ""},
		{Target{Kind: "url", Value: "https://c2.example.net:0/gate"}, "value", ""},
		{Target{Kind: "asn", Value: "as64500"}, "", "AS64500"},
		{Target{Kind: "asn", Value: "AS0"}, "value", ""},
		{Target{Kind: "asn", Value: "AS4294967296"}, "value", ""},
		{Target{Kind: "mac", Value: "00:11:22:33:44:55"}, "kind", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Port: 70000}, "port", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Location: "moon"}, "location", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Country: "jpn"}, "country", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Role: "victim"}, "role", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Ownership: "mine"}, "ownership", ""},
		// At the edges: lengths, ports, every scheme and character class, countries.
		{Target{Kind: "domain", Value: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.jp"}, "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.jp"},
		{Target{Kind: "domain", Value: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.jp"}, "value", ""},
		{Target{Kind: "domain", Value: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.jp"}, "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.jp"},
		{Target{Kind: "domain", Value: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.jp"}, "value", ""},
		{Target{Kind: "domain", Value: "a..jp"}, "value", ""},
		{Target{Kind: "domain", Value: "AZaz09_-x.jp"}, "", "azaz09_-x.jp"},
		{Target{Kind: "domain", Value: "a@b.jp"}, "value", ""},
		{Target{Kind: "domain", Value: "a{b.jp"}, "value", ""},
		{Target{Kind: "domain", Value: "a[b.jp"}, "value", ""},
		{Target{Kind: "domain", Value: "a`b.jp"}, "value", ""},
		{Target{Kind: "domain", Value: "a/b.jp"}, "value", ""},
		{Target{Kind: "domain", Value: "a:b.jp"}, "value", ""},
		{Target{Kind: "url", Value: "http://c2.example.net/"}, "", "http://c2.example.net/"},
		{Target{Kind: "url", Value: "ftp://files.example.net/x"}, "", "ftp://files.example.net/x"},
		{Target{Kind: "url", Value: "https://"}, "value", ""},
		{Target{Kind: "url", Value: "http://[2001:db8::1]:8080/gate"}, "", "http://[2001:db8::1]:8080/gate"},
		{Target{Kind: "url", Value: "http://203.0.113.9/gate"}, "", "http://203.0.113.9/gate"},
		{Target{Kind: "url", Value: "http://bad_host-.example/"}, "value", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Port: 65535}, "", "203.0.113.1"},
		{Target{Kind: "ip", Value: "203.0.113.1", Port: 65536}, "port", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Port: 0}, "", "203.0.113.1"},
		{Target{Kind: "ip", Value: "203.0.113.1", Port: -1}, "port", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Country: "JP"}, "", "203.0.113.1"},
		{Target{Kind: "ip", Value: "203.0.113.1", Country: "jp"}, "country", ""},
		{Target{Kind: "ip", Value: "203.0.113.1", Country: "J"}, "country", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in.Kind+" "+tt.in.Value, func(t *testing.T) {
			got := tt.in
			err := got.Validate()
			var fe *FieldError
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantField == "" && got.Value != tt.wantValue:
				t.Fatalf("value %q, want %q", got.Value, tt.wantValue)
			case tt.wantField != "" && (!errors.As(err, &fe) || fe.Field != tt.wantField):
				t.Fatalf("got %v, want a refusal of field %q", err, tt.wantField)
			}
			if tt.wantField == "" && (got.Location != "unknown" || got.Ownership != "unknown") {
				t.Fatalf("defaults not applied: %+v", got)
			}
		})
	}
}

func TestValidateTargetsNamesTheIndex(t *testing.T) {
	err := ValidateTargets([]Target{{Kind: "ip", Value: "192.0.2.1"}, {Kind: "cidr", Value: "10.0.0.1/8"}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "targets[1].value" {
		t.Fatalf("got %v", err)
	}
	if err := ValidateTargets(nil); err == nil || err.(*FieldError).Field != "targets" {
		t.Fatalf("empty list: got %v", err)
	}
}

func TestPlanValidate(t *testing.T) {
	good := func() Plan {
		return Plan{Title: "t", LegalBasis: "police_duties_act_6_2", Kind: SelfExecute, Technique: "block_c2",
			Operations: []string{"block"}, Executors: []string{"u-x"}, Necessity: "n", Proportionality: "p", Collateral: "c",
			RollbackPlan: "r", Alternatives: []Alternative{{Means: "ask", Outcome: "tried", Reason: "no answer"}}}
	}
	tests := []struct {
		field string
		edit  func(*Plan)
	}{
		{"", func(*Plan) {}},
		{"alternatives", func(p *Plan) { p.Alternatives = nil }},
		{"alternatives[0].outcome", func(p *Plan) { p.Alternatives[0].Outcome = "maybe" }},
		{"necessity", func(p *Plan) { p.Necessity = " " }},
		{"collateral", func(p *Plan) { p.Collateral = "" }},
		{"proportionality", func(p *Plan) { p.Proportionality = "" }},
		{"kind", func(p *Plan) { p.Kind = "hack_back" }},
		{"executors", func(p *Plan) { p.Executors = nil }},
		{"title", func(p *Plan) { p.Title = "\t" }},
		{"legal_basis", func(p *Plan) { p.LegalBasis = "self_defence" }},
		{"technique", func(p *Plan) { p.Technique = "wipe_server" }},
		{"operations", func(p *Plan) { p.Operations = nil }},
		{"alternatives[0].means", func(p *Plan) { p.Alternatives[0].Means = "" }},
		{"alternatives[1].reason", func(p *Plan) {
			p.Alternatives = append(p.Alternatives, Alternative{Means: "takedown notice", Outcome: "rejected", Reason: " "})
		}},
		{"rollback_plan", func(p *Plan) { p.RollbackPlan = "" }},
		{"requested_window", func(p *Plan) { p.RequestedWindow = -1 }},
		{"", func(p *Plan) { p.RequestedWindow = 0 }},
		{"operations[0]", func(p *Plan) { p.Operations[0] = "block\x00" }},
		{"executors[0]", func(p *Plan) { p.Executors[0] = strings.Repeat("u", MaxID+1) }},
	}
	for _, tt := range tests {
		p := good()
		tt.edit(&p)
		err := p.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("valid plan refused: %v", err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("want refusal of %s, got %v", tt.field, err)
		}
	}
}

// FuzzTargetValidate: any input is refused with a field or accepted, and an accepted target
// is already normal (validating it again changes nothing).
func FuzzTargetValidate(f *testing.F) {
	for _, s := range []string{"203.0.113.10", "198.51.100.0/24", "example.com", "https://x.example/a", "AS64500", "::1", "a..b", "%", ""} {
		for _, k := range []string{"ip", "cidr", "domain", "url", "asn"} {
			f.Add(k, s, 0)
		}
	}
	f.Fuzz(func(t *testing.T, kind, value string, port int) {
		tg := Target{Kind: kind, Value: value, Port: port}
		err := tg.Validate()
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refusal without a field: %v", err)
			}
			return
		}
		again := tg
		if err := again.Validate(); err != nil || again != tg {
			t.Fatalf("accepted %+v is not stable: %+v, %v", tg, again, err)
		}
	})
}

func TestParseDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"14d", 14 * 24 * time.Hour, true}, {"72h", 72 * time.Hour, true}, {"1d12h", 36 * time.Hour, true}, {" 90m ", 90 * time.Minute, true},
		{"0d", 0, true}, {"d", 0, false}, {"-1d", 0, false}, {"-5h", 0, false}, {"soon", 0, false}, {"1d-2h", 0, false}, {"9999d", 0, false}, {"", 0, false},
	} {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"3d"`), &d); err != nil || time.Duration(d) != 72*time.Hour {
		t.Errorf(`"3d" reads as %v (%v)`, time.Duration(d), err)
	}
}
