package intel

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/takedown/takedown/internal/measure"
)

// ExportInput is a closed measure as its STIX bundle tells partners of it.
type ExportInput struct {
	Measure, Title    string
	Org, OrgName      string // the requesting agency, the bundle's producer
	Kind, Technique   string
	Operations        []string
	WindowStart       time.Time // the approved window (zero after an emergency)
	WindowEnd         time.Time
	Closed            time.Time // when the measure was closed: every object's created time
	Report            string    // the post-execution report
	Attribution       []Attribution
	Targets           func(yield func(measure.Target) bool) // in order; read once
	TLP               string                                // white (clear), green, amber or red
	StepsByResult     map[string]int
	ExecutedFrom      time.Time
	ExecutedUntil     time.Time
	NotificationsSent int
}

// TLP markings as STIX 2.1 defines them (section 7.2.1.4), by name.
var tlpDefinitions = map[string]string{
	"white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
	"green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
	"amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
	"red":   "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}

// TLPName reads a TLP as people write it (TLP:AMBER, amber, clear) into the name ExportSTIX
// takes, or "".
func TLPName(s string) string {
	s = strings.ToLower(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "TLP:"))
	if s == "clear" {
		s = "white"
	}
	if _, ok := tlpDefinitions[s]; ok {
		return s
	}
	return ""
}

// tlpOrder ranks the TLP names, least strict first (TLP 2.0's CLEAR is TLP 1.0's WHITE).
var tlpOrder = []string{"white", "green", "amber", "amber+strict", "red"}

// TLPRank ranks a marking as written in an import's source or an export's request (TLP:RED,
// amber, clear): higher is stricter; -1 when it names none.
func TLPRank(s string) int {
	s = strings.ToLower(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "TLP:"))
	if s == "clear" {
		s = "white"
	}
	return slices.Index(tlpOrder, s)
}

// tlpOrStrictest ranks a TLP name as a file writes it; a name TLP does not define (MISP's
// tlp:ex:chr, a typing error) is taken as RED: what it restricts is not known.
func tlpOrStrictest(name string) int {
	if r := TLPRank(name); r >= 0 {
		return r
	}
	return TLPRank("red")
}

// tlpLabel is a rank as a source's marking is shown and kept ("TLP:AMBER+STRICT"), or "".
func tlpLabel(rank int) string {
	if rank < 0 {
		return ""
	}
	return "TLP:" + strings.ToUpper(tlpOrder[rank])
}

// stixNamespace makes the export's identifiers: the same measure exported twice names its
// objects alike, so a partner's store merges the second into the first.
var stixNamespace = uuid.MustParse("5f0c1c56-8a1b-4b8e-9d2a-7c3e1f4b6a90")

func stixID(typ string, parts ...string) string {
	return typ + "--" + uuid.NewSHA1(stixNamespace, []byte(typ+"\x00"+strings.Join(parts, "\x00"))).String()
}

// roleTypes gives each target role the STIX infrastructure type that says it.
var roleTypes = map[string]string{"c2": "command-and-control", "botnet_node": "botnet", "exfil": "exfiltration",
	"proxy": "anonymization", "staging": "staging", "": "unknown"}

// ExportSTIX writes a closed measure as a STIX 2.1 bundle: the agency as an identity, the
// targets as indicators of infrastructure (one per role), the attribution the case holds,
// the course of action taken, and a report holding them all, every object under one TLP
// marking. It streams: a measure of hundreds of thousands of targets is written as read.
func ExportSTIX(w io.Writer, in ExportInput) error {
	tlp := TLPName(in.TLP)
	if tlp == "" {
		return fmt.Errorf("TLP %q is not one of white (clear), green, amber, red", clip(in.TLP, 20))
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	ts := in.Closed.UTC().Format("2006-01-02T15:04:05.000Z")
	marking := tlpDefinitions[tlp]
	identity := stixID("identity", in.Org)
	// Each marking makes other objects: the same measure shared at two TLPs is two sets of
	// objects, never one version with two contents (STIX 2.1 section 3.6).
	id := func(typ string, parts ...string) string {
		return stixID(typ, append([]string{in.Measure, tlp}, parts...)...)
	}
	var refs []string // every object the report names
	first := true
	put := func(obj map[string]any) error {
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteString("\n")
		_, err = bw.Write(b)
		return err
	}
	common := func(typ, id string) map[string]any {
		return map[string]any{"type": typ, "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
			"created_by_ref": identity, "object_marking_refs": []string{marking}}
	}
	rel := func(kind, from, to string) error {
		o := common("relationship", id("relationship", kind, from, to))
		o["relationship_type"], o["source_ref"], o["target_ref"] = kind, from, to
		refs = append(refs, o["id"].(string))
		return put(o)
	}
	fmt.Fprintf(bw, `{"type":"bundle","id":"%s","objects":[`, id("bundle"))
	if err := put(map[string]any{"type": "marking-definition", "spec_version": "2.1", "id": marking, "created": "2017-01-20T00:00:00.000Z",
		"definition_type": "tlp", "name": "TLP:" + strings.ToUpper(tlp), "definition": map[string]string{"tlp": tlp}}); err != nil {
		return err
	}
	if err := put(map[string]any{"type": "identity", "spec_version": "2.1", "id": identity, "created": ts, "modified": ts,
		"name": cmpOr(in.OrgName, in.Org), "identity_class": "organization", "object_marking_refs": []string{marking}}); err != nil {
		return err
	}

	// The attribution, as this agency's objects: another producer's object is versioned only
	// by its producer (STIX 2.1 section 3.6), so the copy names where it came from instead.
	// The report holds it beside the infrastructure; no relationship is drawn between them,
	// since no source said which actor, malware or tool used which server.
	for _, a := range in.Attribution {
		typ := a.Kind
		if !slices.Contains(attributionTypes, typ) {
			continue
		}
		oid := id(typ, a.Ref)
		o := common(typ, oid)
		o["name"] = a.Name
		if len(a.Aliases) > 0 {
			o["aliases"] = a.Aliases
		}
		if typ == "malware" {
			o["is_family"] = true
		}
		if src, ok := strings.CutPrefix(a.Ref, "stix:"); ok {
			o["external_references"] = []map[string]string{{"source_name": "stix", "external_id": src}}
		} else if a.Ref != "" {
			o["external_references"] = []map[string]string{{"source_name": "misp", "external_id": a.Ref}}
		}
		refs = append(refs, oid)
		if err := put(o); err != nil {
			return err
		}
	}

	// One infrastructure object per role; its indicators point at it. No location objects:
	// the OASIS bundle schema (cti-stix2-json-schemas 3bf9e69) admits none, so a partner
	// reading this bundle back sees locations as unknown, which asks for the safeguards of a
	// target abroad rather than waiving them.
	infra := map[string]string{}
	infraFor := func(t measure.Target) (string, error) {
		if iid, ok := infra[t.Role]; ok {
			return iid, nil
		}
		iid := id("infrastructure", t.Role)
		infra[t.Role] = iid
		o := common("infrastructure", iid)
		o["name"] = fmt.Sprintf("%s (%s)", in.Title, roleTypes[t.Role])
		o["infrastructure_types"] = []string{roleTypes[t.Role]}
		refs = append(refs, iid)
		if err := put(o); err != nil {
			return "", err
		}
		return iid, nil
	}
	valid := ts
	if !in.WindowStart.IsZero() {
		valid = in.WindowStart.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	var err error
	n := 0
	in.Targets(func(t measure.Target) bool {
		var inf string
		if inf, err = infraFor(t); err != nil {
			return false
		}
		iid := id("indicator", t.Kind, t.Value, fmt.Sprint(t.Port))
		o := common("indicator", iid)
		o["name"] = t.Value
		o["pattern"], o["pattern_type"], o["valid_from"] = PatternOf(t), "stix", valid
		o["indicator_types"] = []string{map[bool]string{true: "compromised", false: "malicious-activity"}[t.Ownership == "compromised_third_party"]}
		refs = append(refs, iid)
		n++
		if err = put(o); err != nil {
			return false
		}
		err = rel("indicates", iid, inf)
		return err == nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("the measure has no targets to export")
	}

	coa := common("course-of-action", id("course-of-action"))
	coa["name"] = fmt.Sprintf("%s: %s", in.Title, in.Technique)
	var desc strings.Builder
	fmt.Fprintf(&desc, "Access and neutralisation measure %s (%s, %s).", in.Measure, in.Kind, in.Technique)
	for _, op := range in.Operations {
		fmt.Fprintf(&desc, "\n- %s", op)
	}
	if !in.WindowStart.IsZero() {
		fmt.Fprintf(&desc, "\nApproved window: %s to %s.", in.WindowStart.UTC().Format(time.RFC3339), in.WindowEnd.UTC().Format(time.RFC3339))
	}
	if len(in.StepsByResult) > 0 {
		keys := make([]string, 0, len(in.StepsByResult))
		for k := range in.StepsByResult {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		desc.WriteString("\nExecution steps:")
		for _, k := range keys {
			fmt.Fprintf(&desc, " %s %d;", k, in.StepsByResult[k])
		}
		if !in.ExecutedFrom.IsZero() {
			fmt.Fprintf(&desc, " from %s to %s.", in.ExecutedFrom.UTC().Format(time.RFC3339), in.ExecutedUntil.UTC().Format(time.RFC3339))
		}
	}
	coa["description"] = desc.String()
	refs = append(refs, coa["id"].(string))
	if err := put(coa); err != nil {
		return err
	}
	rep := common("report", id("report"))
	rep["name"] = fmt.Sprintf("%s (%s)", in.Title, in.Measure)
	rep["report_types"] = []string{"threat-report"}
	rep["published"] = ts
	if in.Report != "" {
		rep["description"] = in.Report
	}
	rep["object_refs"] = refs
	if err := put(rep); err != nil {
		return err
	}
	bw.WriteString("\n]}\n")
	return bw.Flush()
}

// PatternOf is a target as a STIX pattern.
func PatternOf(t measure.Target) string {
	q := func(s string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
	}
	addrType := "ipv4-addr"
	if a, err := netip.ParseAddr(strings.Split(t.Value, "/")[0]); err == nil && a.Is6() {
		addrType = "ipv6-addr"
	}
	switch t.Kind {
	case "ip", "cidr":
		if t.Port != 0 {
			return fmt.Sprintf("[network-traffic:dst_ref.type = '%s' AND network-traffic:dst_ref.value = %s AND network-traffic:dst_port = %d]", addrType, q(t.Value), t.Port)
		}
		if t.Kind == "cidr" {
			return fmt.Sprintf("[%s:value ISSUBSET %s]", addrType, q(t.Value))
		}
		return fmt.Sprintf("[%s:value = %s]", addrType, q(t.Value))
	case "domain":
		if t.Port != 0 {
			return fmt.Sprintf("[network-traffic:dst_ref.type = 'domain-name' AND network-traffic:dst_ref.value = %s AND network-traffic:dst_port = %d]", q(t.Value), t.Port)
		}
		return fmt.Sprintf("[domain-name:value = %s]", q(t.Value))
	case "url":
		return fmt.Sprintf("[url:value = %s]", q(t.Value))
	case "asn":
		return fmt.Sprintf("[autonomous-system:number = %s]", strings.TrimPrefix(t.Value, "AS"))
	}
	return fmt.Sprintf("[x-unknown:value = %s]", q(t.Value))
}
