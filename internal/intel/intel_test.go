package intel

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/measure"
)

var now = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return data
}

// TestFixturesAreUnchanged: testdata holds the shared fixtures (OASIS's STIX examples, the
// MISP event) byte for byte, as others wrote them.
func TestFixturesAreUnchanged(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "fixtures")
	if _, err := os.Stat(shared); err != nil {
		t.Skip("the shared fixtures are not beside this checkout")
	}
	for _, name := range []string{"stix/apt1.json", "stix/indicator-for-c2-ip-address.json", "stix/indicator-to-campaign-relationship.json",
		"stix/indicators-for-C2-with-COA.json", "stix/infrastructure.json", "stix/LICENSE", "misp/sednit-event.json", "misp/LICENSE"} {
		want, err := os.ReadFile(filepath.Join(shared, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fixture(t, name); string(got) != string(want) {
			t.Errorf("testdata/%s differs from the shared fixture", name)
		}
	}
}

// summary is a target as a test names it: kind value[:port] role ownership location.
func summary(c Candidate) string {
	t := c.Target
	s := t.Kind + " " + t.Value
	if t.Port != 0 {
		s += fmt.Sprintf(":%d", t.Port)
	}
	return s + " " + t.Role + "/" + t.Ownership + "/" + t.Location
}

// TestFixtures imports OASIS's published STIX 2.1 examples and a real MISP event, unchanged,
// and checks the targets and attribution each yields (counted by hand from the files).
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		file        string
		format      string
		targets     []string // every target, in order
		sources     []string // the source of each, when checked
		attribution []string // kind:name, in order
		skipped     map[string]int
		producer    string
	}{
		{file: "stix/indicator-for-c2-ip-address.json", format: STIX,
			targets: []string{"ip 10.0.0.0 /unknown/unknown"}, sources: []string{"stix:indicator--33fe3b22-0201-47cf-85d0-97c02164528d"}},
		{file: "stix/indicators-for-C2-with-COA.json", format: STIX, producer: "The MITRE Corporation - DHS Support Team",
			targets: []string{"ip 10.0.0.0 /unknown/unknown"}, attribution: []string{"malware:Poison Ivy"},
			skipped: map[string]int{"indicator": 1, "course-of-action": 1}},
		{file: "stix/infrastructure.json", format: STIX,
			targets:     []string{"ip 198.51.100.3 c2/unknown/unknown", "domain example.com staging/unknown/unknown"},
			sources:     []string{"stix:ipv4-addr--1e4ffad7-0b88-41d4-ba4d-77d27490b956", "stix:domain-name--ecb120bf-2694-4902-a737-62b74539a41b"},
			attribution: []string{"malware:Poison Ivy", "malware:IMDDOS"}},
		{file: "stix/indicator-to-campaign-relationship.json", format: STIX,
			targets: []string{"ip 10.0.0.0 /unknown/unknown"}, attribution: []string{"campaign:Operation Omega"}},
		{file: "stix/apt1.json", format: STIX,
			targets: []string{"cidr 223.166.0.0/15 /unknown/unknown", "cidr 58.246.0.0/15 /unknown/unknown", "cidr 112.64.0.0/15 /unknown/unknown",
				"cidr 139.226.0.0/15 /unknown/unknown", "domain hugesoft.org /unknown/unknown", "domain arrowservice.net /unknown/unknown",
				"domain msnhome.org /unknown/unknown"},
			attribution: []string{"intrusion-set:APT1", "threat-actor:Ugly Gorilla", "threat-actor:DOTA", "threat-actor:SuperHard",
				"threat-actor:Communist Party of China", "threat-actor:Unit 61398", "malware:MANITSME", "malware:WEBC2-UGX",
				"malware:WEBC2 Backdoor", "malware:HUC Packet Transmit Tool (HTRAN)", "malware:AURIGA", "malware:BANGAT",
				"tool:cachedump", "tool:fgdump", "tool:gsecdump", "tool:lslsass", "tool:mimikatz", "tool:pass-the-hash toolkit",
				"tool:pwdump7", "tool:pwdumpX", "tool:GETMAIL", "tool:MAPIGET"},
			skipped: map[string]int{"indicator": 5, "attack-pattern": 7, "report": 1}},
		{file: "misp/sednit-event.json", format: MISP, producer: "CIRCL",
			targets: []string{"domain movieultimate.com /unknown/unknown", "domain meteost.com /unknown/unknown",
				"domain faststoragefiles.org /unknown/unknown", "domain nethostnet.com /unknown/unknown", "domain fsportal.net /unknown/unknown",
				"domain fastdataexchange.org /unknown/unknown", "domain newfilmts.com /unknown/unknown",
				"ip 87.236.211.182 /unknown/unknown", "domain servicecdp.com /unknown/unknown", "ip 95.215.45.43 /unknown/unknown",
				"domain wmdmediacodecs.com /unknown/unknown", "ip 89.45.67.144 /unknown/unknown", "domain mvband.net /unknown/unknown",
				"ip 89.33.246.117 /unknown/unknown", "domain mvtband.net /unknown/unknown", "ip 185.156.173.70 /unknown/unknown",
				"domain runvercheck.com /unknown/unknown", "ip 191.101.31.96 /unknown/unknown", "domain remsupport.org /unknown/unknown",
				"ip 89.187.150.44 /unknown/unknown", "domain viters.org /unknown/unknown", "ip 146.185.253.132 /unknown/unknown",
				"domain myinvestgroup.com /unknown/unknown", "ip 86.106.131.141 /unknown/unknown", "domain space-delivery.com /unknown/unknown",
				"ip 89.34.111.160 /unknown/unknown", "domain satellitedeluxpanorama.com /unknown/unknown", "ip 185.216.35.26 /unknown/unknown",
				"domain webviewres.net /unknown/unknown"},
			attribution: []string{"threat-actor:Sofacy", "tool:Sednit EK", "tool:DealersChoice", "tool:GAMEFISH", "tool:X-Tunnel",
				"tool:EVILTOSS", "tool:X-Agent", "malware:JHUHUGIT", "malware:XTunnel", "malware:ADVSTORESHELL", "malware:USBStealer",
				"malware:XAgentOSX", "malware:CHOPSTICK", "malware:Downdelph"},
			skipped: map[string]int{"sha1": 37, "filename": 15, "text": 38, "link": 1, "domain": 1, "ip-dst": 1}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := Parse("", fixture(t, tc.file), now)
			if err != nil {
				t.Fatal(err)
			}
			if p.Format != tc.format {
				t.Errorf("detected %q, want %q", p.Format, tc.format)
			}
			var got []string
			for _, c := range p.Targets {
				got = append(got, summary(c))
				if c.Target.Source == "" {
					t.Errorf("%s has no source", summary(c))
				}
			}
			if !slices.Equal(got, tc.targets) {
				t.Errorf("targets:\n got %q\nwant %q", got, tc.targets)
			}
			for i, s := range tc.sources {
				if p.Targets[i].Target.Source != s {
					t.Errorf("target %d comes from %q, want %q", i, p.Targets[i].Target.Source, s)
				}
			}
			var attr []string
			for _, a := range p.Attribution {
				attr = append(attr, a.Kind+":"+a.Name)
			}
			if !slices.Equal(attr, tc.attribution) {
				t.Errorf("attribution:\n got %q\nwant %q", attr, tc.attribution)
			}
			if tc.skipped != nil {
				n := map[string]int{}
				for _, s := range p.Skipped {
					n[s.Type]++
					if s.Reason == "" {
						t.Errorf("%s skipped without a reason", s.Ref)
					}
				}
				if fmt.Sprint(n) != fmt.Sprint(tc.skipped) {
					t.Errorf("skipped by type: %v, want %v", n, tc.skipped)
				}
			}
			if p.Source.Producer != tc.producer {
				t.Errorf("producer %q, want %q", p.Source.Producer, tc.producer)
			}
			if len(p.Source.SHA256) != 64 || p.Source.ID == "" {
				t.Errorf("source %+v", p.Source)
			}
		})
	}
}

// TestFixtureDetails: what a reviewer relies on beside the values: aliases, notes on
// documentation and private addresses, the MISP event's TLP and the APT1 report's name.
func TestFixtureDetails(t *testing.T) {
	p, _ := Parse("", fixture(t, "stix/infrastructure.json"), now)
	if p.Targets[0].Notes[0] != "a documentation address (RFC 5737)" || p.Targets[1].Notes[0] != "a reserved name (RFC 2606, RFC 6761)" {
		t.Errorf("notes: %q %q", p.Targets[0].Notes, p.Targets[1].Notes)
	}
	p, _ = Parse("", fixture(t, "stix/apt1.json"), now)
	if p.Source.Name != "APT1: Exposing One of China's Cyber Espionage Units" || !slices.Contains(p.Attribution[0].Aliases, "Comment Crew") {
		t.Errorf("APT1: %+v %+v", p.Source, p.Attribution[0])
	}
	p, _ = Parse("", fixture(t, "misp/sednit-event.json"), now)
	if p.Source.TLP != "TLP:WHITE" || !slices.Contains(p.Attribution[0].Aliases, "APT28") || p.Attribution[0].Ref != `misp-galaxy:threat-actor="Sofacy"` {
		t.Errorf("MISP: %+v %+v", p.Source, p.Attribution[0])
	}
}

func bundle(objects ...string) []byte {
	return []byte(`{"type":"bundle","id":"bundle--5330e3e3-8f58-4d21-9f4b-793a054c0d33","objects":[` + strings.Join(objects, ",") + `]}`)
}

func indicator(n int, pattern string, extra ...string) string {
	x, typ := "", `,"pattern_type":"stix"`
	for _, e := range extra {
		if strings.HasPrefix(e, `"pattern_type":`) {
			typ = "" // the extra one says it: a key written twice is a file refused
		}
		x += "," + e
	}
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d"%s,"pattern":%q%s}`, n, typ, pattern, x)
}

// TestPatterns: what each pattern names, or the reason it names no target.
func TestPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    []string // targets
		skip    string   // part of the reason
	}{
		{pattern: "[ipv4-addr:value = '203.0.113.5']", want: []string{"ip 203.0.113.5"}},
		{pattern: "[ipv4-addr:value = '203.0.113.5/32']", want: []string{"ip 203.0.113.5"}},
		{pattern: "[ipv4-addr:value ISSUBSET '203.0.113.0/24']", want: []string{"cidr 203.0.113.0/24"}},
		{pattern: "[ipv6-addr:value = '2001:db8::1']", want: []string{"ip 2001:db8::1"}},
		{pattern: "[ipv4-addr:value IN ('198.51.100.1', '198.51.100.2')]", want: []string{"ip 198.51.100.1", "ip 198.51.100.2"}},
		{pattern: "[domain-name:value = 'C2.Example-Bad.jp'] OR [url:value = 'https://c2.example-bad.jp/gate.php']",
			want: []string{"domain c2.example-bad.jp", "url https://c2.example-bad.jp/gate.php"}},
		{pattern: "[autonomous-system:number = 64500]", want: []string{"asn AS64500"}},
		{pattern: "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '198.51.100.7' AND network-traffic:dst_port = 443]",
			want: []string{"ip 198.51.100.7:443"}},
		{pattern: "[network-traffic:dst_ref.value = 'c2.example-bad.jp' AND network-traffic:dst_port = 8443]", want: []string{"domain c2.example-bad.jp:8443"}},
		{pattern: "([ipv4-addr:value = '198.51.100.1'] FOLLOWEDBY [domain-name:value = 'a.example-bad.jp']) WITHIN 300 SECONDS",
			want: []string{"ip 198.51.100.1", "domain a.example-bad.jp"}},
		{pattern: "[ipv4-addr:value = '198.51.100.1'] REPEATS 5 TIMES START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'", want: []string{"ip 198.51.100.1"}},
		{pattern: "[(ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '198.51.100.2')]", want: []string{"ip 198.51.100.1", "ip 198.51.100.2"}},
		{pattern: `[domain-name:value = 'it\'s.example-bad.jp']`, skip: "is not a domain name"},
		{pattern: "[file:hashes.'SHA-256' = 'ef53']", skip: "file:hashes.'SHA-256' names no server"},
		{pattern: "[domain-name:value MATCHES '^c2\\\\.']", skip: "MATCHES names no single target"},
		{pattern: "[ipv4-addr:value != '198.51.100.1']", skip: "!= names no single target"},
		{pattern: "[ipv4-addr:value NOT = '198.51.100.1']", skip: "names what the target is not"},
		{pattern: "[ipv4-addr:value = '198.51.100.1' AND domain-name:value = 'a.example-bad.jp']", skip: "is not one target"},
		{pattern: "[ipv4-addr:value = '198.51.100.0/15']", skip: "host bits set"},
		{pattern: "[ipv4-addr:value = 42]", skip: "needs a quoted address"},
		{pattern: "[network-traffic:dst_port = 443]", skip: "names no address"},
		{pattern: "[ipv4-addr:value = '198.51.100.1'", skip: "at character 34: expected \"]\""},
		{pattern: "ipv4-addr:value = '198.51.100.1'", skip: "expected '[' or '('"},
		{pattern: "[ipv4-addr:value = '198.51.100.1]", skip: "a string is not closed"},
		{pattern: "[ipv4-addr:value = '198.51.100.1'] WITHIN SECONDS", skip: "WITHIN needs a number"},
		{pattern: "[ipv4-addr:value ~ '1']", skip: "unexpected character"},
		{pattern: strings.Repeat("(", 100) + "[ipv4-addr:value = '198.51.100.1']" + strings.Repeat(")", 100), skip: "nested deeper than 64"},
		{pattern: "[" + strings.Repeat("(ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '198.51.100.2') AND ", 13) + "ipv4-addr:value = '1.1.1.1']", skip: "more than 4096 alternatives"},
		{pattern: "", skip: "expected '[' or '('"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			p, err := Parse(STIX, bundle(indicator(1, tc.pattern)), now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range p.Targets {
				s := c.Target.Kind + " " + c.Target.Value
				if c.Target.Port != 0 {
					s += fmt.Sprintf(":%d", c.Target.Port)
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("targets %q, want %q (skipped %+v)", got, tc.want, p.Skipped)
			}
			if tc.skip != "" && (len(p.Skipped) == 0 || !strings.Contains(p.Skipped[0].Reason, tc.skip)) {
				t.Errorf("skipped %+v, want a reason with %q", p.Skipped, tc.skip)
			}
		})
	}
}

// TestBundleRelationships: role, ownership and country come from what the bundle says of the
// infrastructure; victims, revoked and expired indicators and custom objects are skipped.
func TestBundleRelationships(t *testing.T) {
	data := bundle(
		`{"type":"infrastructure","id":"infrastructure--11111111-1111-4111-8111-111111111111","name":"C2","infrastructure_types":["command-and-control"]}`,
		`{"type":"intrusion-set","id":"intrusion-set--22222222-2222-4222-8222-222222222222","name":"MirrorFace","aliases":["Earth Kasha"]}`,
		`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333331","relationship_type":"owns","source_ref":"intrusion-set--22222222-2222-4222-8222-222222222222","target_ref":"infrastructure--11111111-1111-4111-8111-111111111111"}`,
		`{"type":"location","id":"location--44444444-4444-4444-8444-444444444444","country":"nl"}`,
		`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333332","relationship_type":"located-at","source_ref":"infrastructure--11111111-1111-4111-8111-111111111111","target_ref":"location--44444444-4444-4444-8444-444444444444"}`,
		indicator(1, "[ipv4-addr:value = '198.51.100.9']"),
		`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333333","relationship_type":"indicates","source_ref":"indicator--00000000-0000-4000-8000-000000000001","target_ref":"infrastructure--11111111-1111-4111-8111-111111111111"}`,
		`{"type":"infrastructure","id":"infrastructure--55555555-5555-4555-8555-555555555555","name":"hacked router","infrastructure_types":["botnet"]}`,
		`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333334","relationship_type":"compromises","source_ref":"intrusion-set--22222222-2222-4222-8222-222222222222","target_ref":"infrastructure--55555555-5555-4555-8555-555555555555"}`,
		`{"type":"ipv4-addr","id":"ipv4-addr--66666666-6666-4666-8666-666666666666","value":"203.0.113.77"}`,
		`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333335","relationship_type":"consists-of","source_ref":"infrastructure--55555555-5555-4555-8555-555555555555","target_ref":"ipv4-addr--66666666-6666-4666-8666-666666666666"}`,
		`{"type":"domain-name","id":"domain-name--77777777-7777-4777-8777-777777777777","value":"victim.example-bank.jp"}`,
		`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333336","relationship_type":"targets","source_ref":"intrusion-set--22222222-2222-4222-8222-222222222222","target_ref":"domain-name--77777777-7777-4777-8777-777777777777"}`,
		indicator(2, "[ipv4-addr:value = '198.51.100.10']", `"revoked":true`),
		indicator(3, "[ipv4-addr:value = '198.51.100.11']", `"valid_until":"2020-01-01T00:00:00Z"`),
		indicator(4, "alert tcp any any", `"pattern_type":"snort"`),
		`{"type":"x-acme-thing","id":"x-acme-thing--88888888-8888-4888-8888-888888888888"}`,
		`{"type":"ipv4-addr","id":"ipv4-addr--99999999-9999-4999-8999-999999999999","value":"198.51.100.20"}`,
		`{"type":"network-traffic","id":"network-traffic--aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","dst_ref":"ipv4-addr--99999999-9999-4999-8999-999999999999","dst_port":8080,"protocols":["tcp"]}`,
		`{"type":"marking-definition","id":"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82","definition_type":"tlp","definition":{"tlp":"amber"}}`,
		`{"type":"weird","id":"weird--bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"}`,
	)
	p, err := Parse("", data, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Targets {
		got = append(got, summary(c)+" "+c.Target.Country)
	}
	want := []string{"ip 198.51.100.9 c2/attacker_controlled/abroad NL", "ip 203.0.113.77 botnet_node/compromised_third_party/unknown ",
		"ip 198.51.100.20:8080 /unknown/unknown "}
	if !slices.Equal(got, want) {
		t.Errorf("targets:\n got %q\nwant %q", got, want)
	}
	reasons := map[string]string{}
	for _, s := range p.Skipped {
		reasons[s.Ref] = s.Reason
	}
	for ref, want := range map[string]string{
		"stix:domain-name--77777777-7777-4777-8777-777777777777":  "a victim",
		"stix:indicator--00000000-0000-4000-8000-000000000002":    "revoked",
		"stix:indicator--00000000-0000-4000-8000-000000000003":    "expired: valid until 2020-01-01T00:00:00Z",
		"stix:indicator--00000000-0000-4000-8000-000000000004":    "a pattern in the snort language",
		"stix:x-acme-thing--88888888-8888-4888-8888-888888888888": "custom",
		"stix:ipv4-addr--99999999-9999-4999-8999-999999999999":    "imported with its port from network-traffic--",
		"stix:weird--bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb":        "not a STIX 2.1 object type",
	} {
		if !strings.Contains(reasons[ref], want) {
			t.Errorf("%s: skipped because %q, want %q", ref, reasons[ref], want)
		}
	}
	if len(p.Attribution) != 1 || p.Attribution[0].Name != "MirrorFace" || p.Attribution[0].Aliases[0] != "Earth Kasha" {
		t.Errorf("attribution %+v", p.Attribution)
	}
}

// manyKeys is n distinct keys of one object.
func manyKeys(n int) string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	return strings.Join(ks, ",")
}

// TestHostileFiles: files refused whole, each with a reason naming where.
func TestHostileFiles(t *testing.T) {
	deep := `{"type":"bundle","id":"bundle--1","objects":[` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `]}`
	huge := `{"type":"bundle","id":"bundle--1","objects":[{"type":"note","id":"note--1","content":"` + strings.Repeat("a", MaxString+1) + `"}]}`
	for _, tc := range []struct {
		name, format, data, want string
	}{
		{"empty", "", "", "not a JSON object"},
		{"array", "", "[1]", "not a JSON object"},
		{"truncated", "", `{"type":"bundle","objects":[{"type":`, "line 1, column"},
		{"deep", "", deep, "nested deeper than 32"},
		{"huge string", "", huge, "a string of 1048577 bytes"},
		{"neither", "", `{"hello":1}`, "neither a STIX 2.1 bundle"},
		{"not a bundle", STIX, `{"type":"indicator"}`, "a STIX 2.1 file is a bundle"},
		{"bad bundle id", STIX, `{"type":"bundle","id":"x","objects":[]}`, "must start with bundle--"},
		{"object without id", STIX, `{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator"}]}`, "objects[0]: an object needs a type and an id"},
		{"id of another type", STIX, `{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","id":"malware--1"}]}`, "objects[0]"},
		{"objects not a list", STIX, `{"type":"bundle","id":"bundle--1","objects":{}}`, "not a STIX bundle"},
		{"unknown format", "csv", `{}`, "unknown format"},
		{"two MISP events", MISP, `{"response":[{"Event":{"uuid":"a"}},{"Event":{"uuid":"b"}}]}`, "holds 2 MISP events"},
		{"empty MISP event", MISP, `{"Event":{}}`, "no uuid and no attributes"},
		{"MISP attributes not a list", MISP, `{"Event":{"uuid":"a","Attribute":{}}}`, "not a MISP event"},
		// A key twice: one reader keeps the first value, encoding/json the last.
		{"repeated key", STIX, `{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","id":"indicator--1","pattern":"[ipv4-addr:value = '203.0.113.1']","pattern":"[ipv4-addr:value = '8.8.8.8']"}]}`,
			`repeats the key "pattern" at byte`},
		{"repeated key escaped", STIX, `{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","id":"indicator--1","pattern":"x","\u0070attern":"y"}]}`,
			`repeats the key "pattern"`},
		{"repeated key in MISP", MISP, `{"Event":{"uuid":"a","Attribute":[{"type":"ip-dst","value":"203.0.113.1","value":"8.8.8.8","to_ids":true}]}}`,
			`repeats the key "value"`},
		{"not UTF-8", STIX, "{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":[{\"type\":\"threat-actor\",\"id\":\"threat-actor--1\",\"name\":\"a\xffc\"}]}",
			"not UTF-8 at line 1, column 101 (byte 100)"},
		{"repeated key among many", STIX, `{"type":"bundle","id":"bundle--1","objects":[{` + manyKeys(40) + `,"k7":0}]}`, `repeats the key "k7"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.format, []byte(tc.data), now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestMISPAttributes: each MISP attribute type, to_ids, deletion and warning lists.
func TestMISPAttributes(t *testing.T) {
	data := []byte(`{"Event":{"uuid":"5a3c2fcd-8328-42bb-a95e-4f4402de0b81","info":"test","Orgc":{"name":"JPCERT"},"Tag":[{"name":"tlp:amber"}],"Attribute":[
		{"uuid":"00000000-0000-4000-8000-000000000001","type":"ip-dst","value":"198.51.100.1","to_ids":true},
		{"uuid":"00000000-0000-4000-8000-000000000002","type":"ip-dst|port","value":"198.51.100.2|8443","to_ids":"1"},
		{"uuid":"00000000-0000-4000-8000-000000000003","type":"domain|ip","value":"c2.example-bad.jp|198.51.100.3","to_ids":1},
		{"uuid":"00000000-0000-4000-8000-000000000004","type":"url","value":"https://c2.example-bad.jp/gate","to_ids":true},
		{"uuid":"00000000-0000-4000-8000-000000000005","type":"AS","value":"AS64500","to_ids":true},
		{"uuid":"00000000-0000-4000-8000-000000000006","type":"ip-dst","value":"198.51.100.6","to_ids":false},
		{"uuid":"00000000-0000-4000-8000-000000000007","type":"ip-dst","value":"198.51.100.7","to_ids":true,"deleted":true},
		{"uuid":"00000000-0000-4000-8000-000000000008","type":"domain","value":"google.com","to_ids":true,"warnings":[{"warninglist_name":"Top 1000 website from Alexa"}]},
		{"uuid":"00000000-0000-4000-8000-000000000009","type":"ip-src","value":"198.51.100.9","to_ids":true},
		{"uuid":"00000000-0000-4000-8000-000000000010","type":"ip-dst|port","value":"198.51.100.10|99999","to_ids":true},
		{"uuid":"00000000-0000-4000-8000-000000000011","type":"hostname","value":"bad host","to_ids":true},
		{"uuid":"00000000-0000-4000-8000-000000000012","type":"md5","value":"0123","to_ids":true}
	]}}`)
	p, err := Parse("", data, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	uuidTail := regexp.MustCompile(`misp:00000000-0000-4000-8000-0*`)
	for _, c := range p.Targets {
		got = append(got, fmt.Sprintf("%s %s %d %s %q", c.Target.Kind, c.Target.Value, c.Target.Port, uuidTail.ReplaceAllString(c.Target.Source, "misp:a"), c.Notes))
	}
	doc := `"a documentation address (RFC 5737)"`
	want := []string{`ip 198.51.100.1 0 misp:a1 [` + doc + `]`, `ip 198.51.100.2 8443 misp:a2 [` + doc + `]`, `domain c2.example-bad.jp 0 misp:a3 []`,
		`ip 198.51.100.3 0 misp:a3 [` + doc + `]`, `url https://c2.example-bad.jp/gate 0 misp:a4 []`, `asn AS64500 0 misp:a5 []`,
		`domain google.com 0 misp:a8 ["on the MISP warning list \"Top 1000 website from Alexa\""]`,
		`ip 198.51.100.9 0 misp:a9 ["the source of the attack (ip-src), not a server it reached" ` + doc + `]`}
	if !slices.Equal(got, want) {
		t.Errorf("targets:\n got %q\nwant %q", got, want)
	}
	reasons := map[string]string{}
	for _, s := range p.Skipped {
		reasons[s.Ref] = s.Reason
	}
	for ref, want := range map[string]string{"misp:00000000-0000-4000-8000-000000000006": "to_ids is off", "misp:00000000-0000-4000-8000-000000000007": "deleted", "misp:00000000-0000-4000-8000-000000000010": "not an address and a port",
		"misp:00000000-0000-4000-8000-000000000011": "is not a domain name", "misp:00000000-0000-4000-8000-000000000012": "names no server"} {
		if !strings.Contains(reasons[ref], want) {
			t.Errorf("%s: %q, want %q", ref, reasons[ref], want)
		}
	}
	if p.Source.TLP != "TLP:AMBER" || p.Source.Producer != "JPCERT" {
		t.Errorf("source %+v", p.Source)
	}
}

// TestLargeBundle: 100,000 indicators are read, each its own target.
func TestLargeBundle(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	// 100,000 indicators; 20,000 under the race detector, which adds nothing at the larger
	// size but 15 s to the test run.
	n := 100_000
	if raceEnabled {
		n = 20_000
	}
	p, err := Parse("", LargeBundle(n), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Targets) != n || len(p.Skipped) != 0 {
		t.Fatalf("%d targets, %d skipped", len(p.Targets), len(p.Skipped))
	}
}

// FuzzParse: no input makes the reader panic, and whatever it accepts yields valid targets.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"stix/apt1.json", "stix/infrastructure.json", "misp/sednit-event.json"} {
		f.Add(fixture(f, name))
	}
	f.Add(bundle(indicator(1, "[network-traffic:dst_ref.value = 'a.example-bad.jp' AND network-traffic:dst_port = 1] OR [ipv4-addr:value IN ('1.2.3.4')]")))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("", data, now)
		if err != nil {
			return
		}
		for _, c := range p.Targets {
			tg := c.Target
			if err := tg.Validate(); err != nil || tg != c.Target {
				t.Fatalf("an accepted target does not validate as it is: %+v (%v)", c.Target, err)
			}
		}
	})
}

// FuzzPattern: no pattern makes the reader panic or loop.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"[ipv4-addr:value = '1.2.3.4']", "([a:b = 1] AND [c:d.'e'[*] IN (1, 'x', t'2020-01-01T00:00:00Z')]) WITHIN 5 SECONDS",
		"[x:y NOT MATCHES '\\\\']", "[a:b = h'00' OR EXISTS a:c]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parsePattern(s)
	})
}

// TestStrangerFindings: what a tester from outside found, each held: victims named by victim
// infrastructure or by value are not imported; wide and special ranges are noted; a location
// the file gives as Japan is noted; a byte-order mark, MISP booleans as words and an upper-case
// pattern language are read; values are written as typed ones are; ids that are not UUIDs and
// repeated ids are said.
func TestStrangerFindings(t *testing.T) {
	t.Run("victims", func(t *testing.T) {
		p, err := Parse("", bundle(
			`{"type":"infrastructure","id":"infrastructure--11111111-1111-4111-8111-111111111111","name":"bank","infrastructure_types":["victim-infrastructure"]}`,
			`{"type":"ipv4-addr","id":"ipv4-addr--22222222-2222-4222-8222-222222222222","value":"198.51.100.50"}`,
			`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333331","relationship_type":"consists-of","source_ref":"infrastructure--11111111-1111-4111-8111-111111111111","target_ref":"ipv4-addr--22222222-2222-4222-8222-222222222222"}`,
			`{"type":"campaign","id":"campaign--44444444-4444-4444-8444-444444444444","name":"x"}`,
			`{"type":"domain-name","id":"domain-name--55555555-5555-4555-8555-555555555555","value":"victim-bank.co.jp"}`,
			`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333332","relationship_type":"targets","source_ref":"campaign--44444444-4444-4444-8444-444444444444","target_ref":"domain-name--55555555-5555-4555-8555-555555555555"}`,
			indicator(1, "[domain-name:value = 'VICTIM-BANK.co.jp']"),
			indicator(2, "[ipv4-addr:value = '198.51.100.51']"),
			`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333333","relationship_type":"indicates","source_ref":"indicator--00000000-0000-4000-8000-000000000002","target_ref":"infrastructure--11111111-1111-4111-8111-111111111111"}`,
			indicator(3, "[ipv4-addr:value = '198.51.100.52']"),
		), now)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Targets) != 1 || p.Targets[0].Target.Value != "198.51.100.52" {
			t.Fatalf("targets %+v, skipped %+v", p.Targets, p.Skipped)
		}
	})
	t.Run("notes", func(t *testing.T) {
		for value, want := range map[string]string{
			"0.0.0.0/0":          "a range of 4294967296 addresses",
			"::/0":               "holds special-use addresses, among them 2001:db8::/32 (a documentation address (RFC 3849)); a range of 2^128 addresses",
			"223.166.0.0/15":     "a range of 131072 addresses",
			"198.51.100.0/25":    "a documentation address (RFC 5737)",
			"255.255.255.255":    "the broadcast address",
			"240.0.0.1":          "a reserved address (RFC 1112)",
			"192.0.0.5":          "an IETF protocol address (RFC 6890)",
			"198.18.0.1":         "a benchmarking address (RFC 2544)",
			"::":                 "an unspecified address",
			"ff02::1":            "a multicast address",
			"http://10.0.0.1/":   "a private address (RFC 1918)",
			"http://example.com": "a reserved name",
			"45.76.1.2":          "",
		} {
			kind := map[bool]string{true: "url", false: "ip"}[strings.HasPrefix(value, "http")]
			if strings.Contains(value, "/") && kind == "ip" {
				kind = "cidr"
			}
			got := strings.Join(addressNotes(measureTarget(kind, value)), "; ")
			if (want == "" && got != "") || !strings.Contains(got, want) {
				t.Errorf("%s: notes %q, want %q", value, got, want)
			}
		}
	})
	t.Run("domestic from the file", func(t *testing.T) {
		p, _ := Parse("", bundle(
			`{"type":"infrastructure","id":"infrastructure--11111111-1111-4111-8111-111111111111","name":"c2","infrastructure_types":["command-and-control"]}`,
			`{"type":"location","id":"location--44444444-4444-4444-8444-444444444444","country":"JP"}`,
			`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333332","relationship_type":"located-at","source_ref":"infrastructure--11111111-1111-4111-8111-111111111111","target_ref":"location--44444444-4444-4444-8444-444444444444"}`,
			indicator(1, "[ipv4-addr:value = '45.76.1.2']"),
			`{"type":"relationship","id":"relationship--33333333-3333-4333-8333-333333333333","relationship_type":"indicates","source_ref":"indicator--00000000-0000-4000-8000-000000000001","target_ref":"infrastructure--11111111-1111-4111-8111-111111111111"}`,
		), now)
		if len(p.Targets) != 1 || p.Targets[0].Target.Location != "domestic" || !strings.Contains(strings.Join(p.Targets[0].Notes, ";"), "no Foreign Minister consultation") {
			t.Fatalf("%+v", p.Targets)
		}
	})
	t.Run("lenient reading", func(t *testing.T) {
		p, err := Parse("", append([]byte("\ufeff"), bundle(indicator(1, "[ipv4-addr:value = '::ffff:45.76.1.2'] OR [url:value = 'HTTP://DUP.Example-Bad.jp/a']", `"pattern_type":"STIX"`))...), now)
		if err != nil || len(p.Targets) != 2 || p.Targets[0].Target.Value != "45.76.1.2" || p.Targets[1].Target.Value != "http://dup.example-bad.jp/a" {
			t.Fatalf("%+v %v", p, err)
		}
		m, err := Parse("", []byte(`{"Event":{"uuid":"5a3c2fcd-8328-42bb-a95e-4f4402de0b81","Attribute":[
			{"uuid":"5a3c2fcd-8328-42bb-a95e-4f4402de0b82","type":"ip-dst","value":"45.76.1.3","to_ids":"False"},
			{"uuid":"not-a-uuid","type":"ip-dst","value":"45.76.1.4","to_ids":"yes"}]}}`), now)
		if err != nil || len(m.Targets) != 0 || !strings.Contains(m.Skipped[0].Reason, "to_ids is off") || !strings.Contains(m.Skipped[1].Reason, "is not a UUID") {
			t.Fatalf("%+v %v", m, err)
		}
	})
	t.Run("ids", func(t *testing.T) {
		p, _ := Parse("", bundle(indicator(1, "[ipv4-addr:value = '45.76.1.2']"), indicator(1, "[ipv4-addr:value = '45.76.1.3']"),
			`{"type":"indicator","id":"indicator--<script>","pattern":"[ipv4-addr:value = '45.76.1.4']"}`), now)
		reasons := fmt.Sprint(p.Skipped)
		if len(p.Targets) != 1 || p.Targets[0].Target.Value != "45.76.1.3" || !strings.Contains(reasons, "another object of the file has this id") || !strings.Contains(reasons, "is not the type, -- and a UUID") {
			t.Fatalf("targets %+v skipped %s", p.Targets, reasons)
		}
	})
}

func measureTarget(kind, value string) measure.Target {
	return measure.Target{Kind: kind, Value: value}
}

// TestAttributionIsKeptOrSaidSkipped: every actor in a file is in the preview's attribution
// or among what is skipped, with why; none is lost in silence (a stranger's bell, bidi, long
// and empty names, and bad aliases, were).
func TestAttributionIsKeptOrSaidSkipped(t *testing.T) {
	actor := func(n int, name string, aliases ...string) string {
		a, _ := json.Marshal(aliases)
		nm, _ := json.Marshal(name)
		return fmt.Sprintf(`{"type":"threat-actor","spec_version":"2.1","id":"threat-actor--00000000-0000-4000-8000-%012d","name":%s,"aliases":%s}`, n, nm, a)
	}
	long := strings.Repeat("長", 140) // 420 bytes
	p, err := Parse(STIX, bundle(
		indicator(1, "[ipv4-addr:value = '203.0.113.9']"),
		actor(1, "Evil\u0007Bell"),
		actor(2, "Bidi\u202eActor"),
		actor(3, long),
		actor(4, ""),
		actor(5, "Good", "ok alias", "bad\x00alias", strings.Repeat("a", 300), " "),
	), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]Attribution{}
	for _, a := range p.Attribution {
		kept[a.Ref] = a
	}
	skipped := map[string][]string{}
	for _, s := range p.Skipped {
		skipped[s.Ref] = append(skipped[s.Ref], s.Reason)
	}
	ref := func(n int) string { return fmt.Sprintf("stix:threat-actor--00000000-0000-4000-8000-%012d", n) }
	for n, want := range map[int]string{1: "control character", 2: "bidirectional", 4: "no name"} {
		if _, ok := kept[ref(n)]; ok || len(skipped[ref(n)]) != 1 || !strings.Contains(skipped[ref(n)][0], want) {
			t.Errorf("actor %d: kept %v, skipped %q; want it skipped saying %q", n, ok, skipped[ref(n)], want)
		}
	}
	if a, ok := kept[ref(3)]; !ok || len(a.Name) > 256 || !strings.HasSuffix(a.Name, "…") {
		t.Errorf("a long name is kept shortened: %v %q", ok, a.Name)
	}
	if a := kept[ref(5)]; !slices.Equal(a.Aliases, []string{"ok alias"}) || len(skipped[ref(5)]) != 3 {
		t.Errorf("aliases: kept %q, skipped %q; want the good one kept and three said left out", a.Aliases, skipped[ref(5)])
	}
}

// TestSourceMarking: the file's strictest TLP, wherever it is marked: on an object, on one of
// its properties (granular), on a MISP attribute; a TLP the importer does not know, or a
// marking named and not defined, is taken as RED; a statement restricts nothing.
func TestSourceMarking(t *testing.T) {
	const red, amber = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	for _, c := range []struct {
		name, format, file, want string
	}{
		{"none", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']"))), ""},
		{"object", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']", `"object_marking_refs":["`+amber+`"]`))), "TLP:AMBER"},
		{"granular", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']", `"object_marking_refs":["`+amber+`"]`,
			`"granular_markings":[{"marking_ref":"`+red+`","selectors":["pattern"]}]`))), "TLP:RED"},
		{"defined in capitals", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']", `"object_marking_refs":["marking-definition--00000000-0000-4000-8000-000000000001"]`),
			`{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-000000000001","definition_type":"tlp","definition":{"tlp":"RED"}}`)), "TLP:RED"},
		{"named, not defined", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']", `"object_marking_refs":["marking-definition--00000000-0000-4000-8000-000000000002"]`))), "TLP:RED"},
		{"a statement", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']", `"object_marking_refs":["marking-definition--00000000-0000-4000-8000-000000000003"]`),
			`{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-000000000003","definition_type":"statement","definition":{"statement":"Copyright"}}`)), ""},
		{"MISP event", MISP, `{"Event":{"uuid":"a","Tag":[{"name":"tlp:green"}],"Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true}]}}`, "TLP:GREEN"},
		{"MISP attribute", MISP, `{"Event":{"uuid":"a","Tag":[{"name":"tlp:green"}],"Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true,"Tag":[{"name":"tlp:red"}]}]}}`, "TLP:RED"},
		{"MISP object attribute", MISP, `{"Event":{"uuid":"a","Object":[{"name":"ip-port","Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true,"Tag":[{"name":"TLP:AMBER+STRICT"}]}]}]}}`, "TLP:AMBER+STRICT"},
		{"MISP EventTag", MISP, `{"Event":{"uuid":"a","EventTag":[{"Tag":{"name":"tlp:red"}}],"Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true}]}}`, "TLP:RED"},
		{"MISP AttributeTag", MISP, `{"Event":{"uuid":"a","Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true,"AttributeTag":[{"Tag":{"name":"tlp:amber"}}]}]}}`, "TLP:AMBER"},
		{"MISP full-width", MISP, `{"Event":{"uuid":"a","Tag":[{"name":"ｔｌｐ:ｒｅｄ"}],"Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true}]}}`, "TLP:RED"},
		{"statement with a TLP 2.0 extension", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']", `"object_marking_refs":["marking-definition--00000000-0000-4000-8000-000000000004"]`),
			`{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-000000000004","definition_type":"statement","definition":{"statement":"x"},"extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"red"}}}`)), "TLP:RED"},
		{"a marking defined RED, then WHITE", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']", `"object_marking_refs":["marking-definition--00000000-0000-4000-8000-000000000005"]`),
			`{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-000000000005","definition_type":"tlp","definition":{"tlp":"red"}}`,
			`{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--00000000-0000-4000-8000-000000000005","definition_type":"tlp","definition":{"tlp":"white"}}`)), "TLP:RED"},
		{"an object that cannot be read", STIX, string(bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']"),
			indicator(2, "[ipv4-addr:value = '203.0.113.10']", `"object_marking_refs":"`+red+`"`))), "TLP:RED"},
		{"MISP object", MISP, `{"Event":{"uuid":"a","Object":[{"name":"ip-port","Tag":[{"name":"tlp:red"}],"Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true}]}]}}`, "TLP:RED"},
		{"MISP proposal", MISP, `{"Event":{"uuid":"a","Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true}],"ShadowAttribute":[{"type":"ip-dst","value":"203.0.113.10","Tag":[{"name":"tlp:red"}]}]}}`, "TLP:RED"},
		{"MISP unknown TLP", MISP, `{"Event":{"uuid":"a","Tag":[{"name":"tlp:ex:chr"}],"Attribute":[{"type":"ip-dst","value":"203.0.113.9","to_ids":true}]}}`, "TLP:RED"},
	} {
		p, err := Parse(c.format, []byte(c.file), now)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p.Source.TLP != c.want {
			t.Errorf("%s: marking %q, want %q", c.name, p.Source.TLP, c.want)
		}
	}
}

// TestPlacesThatDisagree: an infrastructure located in two countries at once is of unknown
// location whatever the order the file gives them in (a stranger's swapped relationships made
// a Russian server domestic, asking no Foreign Minister consultation).
func TestPlacesThatDisagree(t *testing.T) {
	objs := []string{
		indicator(1, "[ipv4-addr:value = '203.0.113.9']"),
		`{"type":"infrastructure","spec_version":"2.1","id":"infrastructure--00000000-0000-4000-8000-000000000001","name":"c2","infrastructure_types":["command-and-control"]}`,
		`{"type":"relationship","spec_version":"2.1","id":"relationship--00000000-0000-4000-8000-000000000001","relationship_type":"indicates","source_ref":"indicator--00000000-0000-4000-8000-000000000001","target_ref":"infrastructure--00000000-0000-4000-8000-000000000001"}`,
		`{"type":"location","spec_version":"2.1","id":"location--00000000-0000-4000-8000-000000000001","country":"RU"}`,
		`{"type":"location","spec_version":"2.1","id":"location--00000000-0000-4000-8000-000000000002","country":"JP"}`,
	}
	at := func(n int) string {
		return fmt.Sprintf(`{"type":"relationship","spec_version":"2.1","id":"relationship--00000000-0000-4000-8000-00000000001%d","relationship_type":"located-at","source_ref":"infrastructure--00000000-0000-4000-8000-000000000001","target_ref":"location--00000000-0000-4000-8000-00000000000%d"}`, n, n)
	}
	for _, order := range [][]string{{at(1), at(2)}, {at(2), at(1)}} {
		p, err := Parse(STIX, bundle(append(slices.Clone(objs), order...)...), now)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Targets) != 1 {
			t.Fatalf("%d targets", len(p.Targets))
		}
		c := p.Targets[0]
		if c.Target.Location != "unknown" || c.Target.Country != "" || !strings.Contains(strings.Join(c.Notes, "; "), "JP and RU at once") {
			t.Errorf("located in RU and JP: %s %q, notes %q", c.Target.Location, c.Target.Country, c.Notes)
		}
	}
	// One country: as the file says.
	p, _ := Parse(STIX, bundle(append(slices.Clone(objs), at(1))...), now)
	if c := p.Targets[0].Target; c.Location != "abroad" || c.Country != "RU" {
		t.Errorf("located in RU: %s %q", c.Location, c.Country)
	}
}

// TestPlacesThatDisagreeAnywhere: places are gathered from everything that says where a
// target is (the observable, the indicator, each infrastructure, every definition of a
// location, every mention of the same address); any disagreement leaves it unknown, in
// every order (a stranger had a server in Russia imported as domestic five ways).
func TestPlacesThatDisagreeAnywhere(t *testing.T) {
	id := func(typ string, n int) string { return fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", typ, n) }
	rel := func(n int, kind, from, to string) string {
		return fmt.Sprintf(`{"type":"relationship","spec_version":"2.1","id":%q,"relationship_type":%q,"source_ref":%q,"target_ref":%q}`, id("relationship", n), kind, from, to)
	}
	loc := func(n int, field, value string) string {
		return fmt.Sprintf(`{"type":"location","spec_version":"2.1","id":%q,%q:%q}`, id("location", n), field, value)
	}
	infra := func(n int) string {
		return fmt.Sprintf(`{"type":"infrastructure","spec_version":"2.1","id":%q,"name":"c2","infrastructure_types":["command-and-control"]}`, id("infrastructure", n))
	}
	sco := func(n int) string {
		return fmt.Sprintf(`{"type":"ipv4-addr","spec_version":"2.1","id":%q,"value":"203.0.113.9"}`, id("ipv4-addr", n))
	}
	ind := indicator(1, "[ipv4-addr:value = '203.0.113.9']")
	ru, jp := loc(1, "country", "RU"), loc(2, "country", "JP")
	cases := map[string][]string{
		"indicator RU, its infrastructure JP": {ind, infra(1), ru, jp, rel(1, "indicates", id("indicator", 1), id("infrastructure", 1)),
			rel(2, "located-at", id("indicator", 1), id("location", 1)), rel(3, "located-at", id("infrastructure", 1), id("location", 2))},
		"observable JP, indicator of it RU": {sco(1), infra(1), ind, ru, jp, rel(1, "consists-of", id("infrastructure", 1), id("ipv4-addr", 1)),
			rel(2, "located-at", id("infrastructure", 1), id("location", 2)), rel(3, "located-at", id("indicator", 1), id("location", 1))},
		"two observables, JP and RU": {sco(1), sco(2), infra(1), infra(2), ru, jp,
			rel(1, "consists-of", id("infrastructure", 1), id("ipv4-addr", 1)), rel(2, "consists-of", id("infrastructure", 2), id("ipv4-addr", 2)),
			rel(3, "located-at", id("infrastructure", 1), id("location", 2)), rel(4, "located-at", id("infrastructure", 2), id("location", 1))},
		"a location defined twice": {ind, infra(1), ru, loc(1, "country", "JP"), rel(1, "indicates", id("indicator", 1), id("infrastructure", 1)),
			rel(2, "located-at", id("infrastructure", 1), id("location", 1))},
		"JP and a region": {ind, infra(1), jp, loc(3, "region", "eastern-europe"), rel(1, "indicates", id("indicator", 1), id("infrastructure", 1)),
			rel(2, "located-at", id("infrastructure", 1), id("location", 2)), rel(3, "located-at", id("infrastructure", 1), id("location", 3))},
		"JP and JPN": {ind, infra(1), jp, loc(4, "country", "JPN"), rel(1, "indicates", id("indicator", 1), id("infrastructure", 1)),
			rel(2, "located-at", id("infrastructure", 1), id("location", 2)), rel(3, "located-at", id("infrastructure", 1), id("location", 4))},
	}
	for name, objs := range cases {
		reversed := slices.Clone(objs)
		slices.Reverse(reversed)
		for _, order := range [][]string{objs, reversed} {
			p, err := Parse(STIX, bundle(order...), now)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var got []string
			for _, c := range p.Targets {
				if c.Target.Value == "203.0.113.9" {
					got = append(got, c.Target.Location+" "+c.Target.Country+" "+strings.Join(c.Notes, "; "))
				}
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], "unknown  ") || !strings.Contains(got[0], "at once") {
				t.Errorf("%s: %q, want one target of unknown location with a note", name, got)
			}
		}
	}
}

// TestSameActorUnderAnotherID: one actor given twice under two ids (two producers' copies) is
// one entry; the other is said among what is skipped.
func TestSameActorUnderAnotherID(t *testing.T) {
	actor := func(n int, name string) string {
		return fmt.Sprintf(`{"type":"threat-actor","spec_version":"2.1","id":"threat-actor--00000000-0000-4000-8000-%012d","name":%q}`, n, name)
	}
	p, err := Parse(STIX, bundle(indicator(1, "[ipv4-addr:value = '203.0.113.9']"), actor(1, "Fancy Whale"), actor(2, "fancy whale "), actor(3, "Another")), now)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range p.Attribution {
		names = append(names, a.Name)
	}
	skipped := 0
	for _, s := range p.Skipped {
		if strings.Contains(s.Reason, "names the same threat-actor") {
			skipped++
		}
	}
	if strings.Join(names, ",") != "Fancy Whale,Another" || skipped != 1 {
		t.Errorf("attribution %q, %d said the same", names, skipped)
	}
}
