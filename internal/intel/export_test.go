package intel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/takedown/takedown/internal/measure"
)

// oasisSchemas compiles the OASIS STIX 2.1 schemas from testdata, under the identifiers they
// name themselves by.
func oasisSchemas(t *testing.T) (*jsonschema.Compiler, string) {
	t.Helper()
	const base = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"
	c := jsonschema.NewCompiler()
	root := filepath.Join("testdata", "oasis-schemas", "schemas")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		return c.AddResource(base+filepath.ToSlash(rel), doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, base
}

func exportInput(targets []measure.Target, attribution []Attribution) ExportInput {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	return ExportInput{Measure: "m-abc", Title: "PlugX C2", Org: "npa-cyber", OrgName: "National Police Agency",
		Kind: "self_execute", Technique: "disable_malware", Operations: []string{"send the self-delete command"},
		WindowStart: at.Add(-72 * time.Hour), WindowEnd: at.Add(-24 * time.Hour), Closed: at, Report: "All nodes answered the command.",
		Attribution: attribution, TLP: "TLP:AMBER", StepsByResult: map[string]int{"success": 5, "failure": 1},
		ExecutedFrom: at.Add(-70 * time.Hour), ExecutedUntil: at.Add(-69 * time.Hour),
		Targets: func(yield func(measure.Target) bool) {
			for _, t := range targets {
				if !yield(t) {
					return
				}
			}
		}}
}

// TestExportIsValidSTIX: a closed measure's bundle, with targets of every kind and the APT1
// report's attribution, is valid against OASIS's STIX 2.1 schemas, object by object, and the
// importer reads back the same targets from it.
func TestExportIsValidSTIX(t *testing.T) {
	targets := []measure.Target{
		{Kind: "ip", Value: "203.0.113.10", Port: 443, Role: "c2", Ownership: "attacker_controlled", Location: "domestic"},
		{Kind: "ip", Value: "2001:db8::7", Role: "proxy", Ownership: "unknown", Location: "abroad"},
		{Kind: "cidr", Value: "198.51.100.0/24", Role: "botnet_node", Ownership: "compromised_third_party", Location: "unknown"},
		{Kind: "domain", Value: "update.example-c2.jp", Role: "c2", Ownership: "unknown", Location: "domestic"},
		{Kind: "domain", Value: "update2.example-c2.jp", Port: 8443, Ownership: "unknown", Location: "unknown"},
		{Kind: "url", Value: `https://c2.example-bad.jp/gate.php?a='b'\c`, Role: "staging", Ownership: "unknown", Location: "unknown"},
		{Kind: "asn", Value: "AS64500", Ownership: "unknown", Location: "unknown"},
	}
	apt1, err := Parse("", fixture(t, "stix/apt1.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	misp, err := Parse("", fixture(t, "misp/sednit-event.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ExportSTIX(&out, exportInput(targets, append(apt1.Attribution, misp.Attribution[:3]...))); err != nil {
		t.Fatal(err)
	}
	c, base := oasisSchemas(t)
	bundle, err := c.Compile(base + "common/bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Validate(doc); err != nil {
		t.Fatalf("the bundle is not valid STIX 2.1: %v", err)
	}
	// Each object against its own type's schema, which says more than the bundle's oneOf.
	var b struct {
		Objects []json.RawMessage `json:"objects"`
	}
	_ = json.Unmarshal(out.Bytes(), &b)
	dirs := map[string]string{"relationship": "sros", "marking-definition": "common"}
	types := map[string]int{}
	for _, raw := range b.Objects {
		var head struct{ Type string }
		_ = json.Unmarshal(raw, &head)
		types[head.Type]++
		s, err := c.Compile(base + cmpOr(dirs[head.Type], "sdos") + "/" + head.Type + ".json")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err := s.Validate(v); err != nil {
			t.Errorf("%s is not valid: %v", raw, err)
		}
	}
	// One relationship per indicator (it indicates its infrastructure) and no other: no source
	// said which actor or malware used which server, so the export says it of none.
	want := map[string]int{"marking-definition": 1, "identity": 1, "indicator": 7, "infrastructure": 5, "relationship": 7,
		"course-of-action": 1, "report": 1, "intrusion-set": 1, "threat-actor": 6, "malware": 6, "tool": 12}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("objects by type: %v, want %v", types, want)
	}
	// The importer reads the same targets back (ownership and location aside: a partner's
	// bundle says them through objects this export does not write).
	back, err := Parse(STIX, out.Bytes(), now)
	if err != nil {
		t.Fatal(err)
	}
	var got, sent []string
	for _, c := range back.Targets {
		got = append(got, fmt.Sprintf("%s %s %d %s", c.Target.Kind, c.Target.Value, c.Target.Port, c.Target.Role))
	}
	for _, tg := range targets {
		sent = append(sent, fmt.Sprintf("%s %s %d %s", tg.Kind, tg.Value, tg.Port, tg.Role))
	}
	if !slices.Equal(got, sent) {
		t.Errorf("read back:\n got %q\nwant %q\nskipped %+v", got, sent, back.Skipped)
	}
	if strings.Count(out.String(), "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82") < len(b.Objects) {
		t.Error("an object lacks the TLP:AMBER marking")
	}
	// Exported twice, the same objects under the same identifiers.
	var again bytes.Buffer
	_ = ExportSTIX(&again, exportInput(targets, append(apt1.Attribution, misp.Attribution[:3]...)))
	if again.String() != out.String() {
		t.Error("two exports of one measure differ")
	}
	// Another marking, other objects: no identifier of one export is in the other but the
	// identity's and the markings'.
	green := exportInput(targets, apt1.Attribution)
	green.TLP = "green"
	var g bytes.Buffer
	if err := ExportSTIX(&g, green); err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`"id":"([a-z-]+--[0-9a-f-]{36})"`)
	amberIDs := map[string]bool{}
	for _, m := range ids.FindAllStringSubmatch(out.String(), -1) {
		amberIDs[m[1]] = true
	}
	for _, m := range ids.FindAllStringSubmatch(g.String(), -1) {
		if amberIDs[m[1]] && !strings.HasPrefix(m[1], "identity--") {
			t.Errorf("%s names an object in both the amber and the green export", m[1])
		}
	}
	// Another producer's objects are not re-versioned: the copy points at the original.
	if strings.Contains(out.String(), `"id":"intrusion-set--da1065ce-972c-4605-8755-9cd1074e3b5a"`) ||
		!strings.Contains(out.String(), `"external_id":"intrusion-set--da1065ce-972c-4605-8755-9cd1074e3b5a"`) {
		t.Error("the APT1 intrusion set is re-issued under its producer's id, or not referred to")
	}
	if err := ExportSTIX(&again, ExportInput{TLP: "purple"}); err == nil {
		t.Error("an unknown TLP was accepted")
	}
}
