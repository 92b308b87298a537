package intel

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/takedown/takedown/internal/measure"
)

// stixObject holds the properties of every STIX 2.1 object type the importer reads; one
// struct, since an object's type decides which of them it has.
type stixObject struct {
	Type         string `json:"type"`
	ID           string `json:"id"`
	CreatedByRef string `json:"created_by_ref"`
	Name         string `json:"name"`
	Revoked      bool   `json:"revoked"`
	// indicator
	Pattern     string `json:"pattern"`
	PatternType string `json:"pattern_type"`
	ValidUntil  string `json:"valid_until"`
	// threat-actor, intrusion-set, campaign, malware, tool
	Aliases []string `json:"aliases"`
	// infrastructure
	InfrastructureTypes []string `json:"infrastructure_types"`
	// cyber observables
	Value   json.RawMessage `json:"value"`
	Number  json.Number     `json:"number"`
	DstRef  string          `json:"dst_ref"`
	DstPort int             `json:"dst_port"`
	// relationship
	RelationshipType string `json:"relationship_type"`
	SourceRef        string `json:"source_ref"`
	TargetRef        string `json:"target_ref"`
	// location
	Country string `json:"country"`
	// marking-definition
	DefinitionType string `json:"definition_type"`
	Definition     struct {
		TLP string `json:"tlp"`
	} `json:"definition"`
	ObjectMarkingRefs []string `json:"object_marking_refs"`
	// Markings of single properties (STIX 2.1 section 7.2.3): a TLP on a pattern or a name
	// restricts the object as much as one on the whole of it.
	GranularMarkings []struct {
		MarkingRef string `json:"marking_ref"`
	} `json:"granular_markings"`
	// TLP 2.0 markings are written as an extension (tlp_2_0), on any kind of definition.
	Extensions map[string]struct {
		TLP20 any `json:"tlp_2_0"`
	} `json:"extensions"`
	Region string `json:"region"`
}

// The TLP 2.0 and 1.0 marking definitions STIX 2.1 fixes by identifier.
var tlpMarkings = map[string]string{
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "white",
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
	"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber+strict",
	"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber",
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
	"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
}

// infrastructureRoles maps STIX's infrastructure-type vocabulary to a target's role; the
// first listed wins when an object has several.
var infrastructureRoles = []struct{ stix, role string }{
	{"command-and-control", "c2"}, {"botnet", "botnet_node"}, {"exfiltration", "exfil"},
	{"anonymization", "proxy"}, {"staging", "staging"}, {"hosting-malware", "staging"},
	{"hosting-target-lists", "staging"}, {"phishing", "staging"},
}

// attributionTypes are the object types whose names make up a case's attribution.
var attributionTypes = []string{"threat-actor", "intrusion-set", "campaign", "malware", "tool"}

// networkTypes are the cyber-observable types that are themselves a target.
var networkTypes = []string{"ipv4-addr", "ipv6-addr", "domain-name", "url", "autonomous-system"}

// knownTypes are every STIX 2.1 object type; one outside them is named as unknown.
var knownTypes = []string{
	"attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident", "indicator", "infrastructure",
	"intrusion-set", "location", "malware", "malware-analysis", "note", "observed-data", "opinion", "report",
	"threat-actor", "tool", "vulnerability", "relationship", "sighting", "marking-definition", "language-content",
	"extension-definition", "artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message",
	"file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process", "software", "url",
	"user-account", "windows-registry-key", "x509-certificate",
}

// infra is what the bundle says of the infrastructure a target belongs to.
type infra struct {
	role, ownership string
}

// stixBundle is the read state of one bundle.
type stixBundle struct {
	objects []stixObject
	byID    map[string]int
	rels    []stixObject
	// unreadable counts objects that could not be decoded: one may carry a marking.
	unreadable int
	// marks is the strictest rank each marking id is defined with, over every definition of
	// it in the file (a later one may not weaken an earlier).
	marks map[string]int
	// places are the places each location id names, over every definition of it.
	places map[string][]string
	now    time.Time
	// victimValues are the values of what the bundle says was attacked (kind, NUL, value);
	// victimIndicators the indicators of victim infrastructure.
	victimValues     map[string]bool
	victimIndicators map[string]bool
}

// add adds a target unless the bundle names its value as a victim's.
func (bu *stixBundle) add(b *builder, t measure.Target, typ string, notes ...string) {
	v := t
	if v.Validate() == nil && bu.victimValues[v.Kind+"\x00"+v.Value] {
		b.skip(t.Source, typ, "the bundle names %s as targeted by the attack (a victim), not as the attacker's", clip(v.Value, 100))
		return
	}
	if t.Location == "domestic" {
		// The location decides whether a Foreign Minister consultation is asked: the file
		// alone should not settle it unseen.
		notes = append(notes, notef("the file places it in Japan: no Foreign Minister consultation is asked for it; check this"))
	}
	b.add(t, typ, notes...)
}

func parseSTIX(data []byte, now time.Time) (*Preview, error) {
	bu := &stixBundle{byID: map[string]int{}, marks: map[string]int{}, places: map[string][]string{}, now: now}
	b := newBuilder()
	var head struct {
		Type    string            `json:"type"`
		ID      string            `json:"id"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, errorf("", "not a STIX bundle: %v", err)
	}
	if head.Type != "bundle" {
		return nil, errorf("", "the file's type is %q; a STIX 2.1 file is a bundle", clip(head.Type, 40))
	}
	if !strings.HasPrefix(head.ID, "bundle--") {
		return nil, errorf("", "the bundle's id is %q; it must start with bundle--", clip(head.ID, 60))
	}
	if len(head.Objects) > MaxObjects {
		return nil, errorf("", "the bundle holds %d objects; at most %d are read", len(head.Objects), MaxObjects)
	}
	b.p.Source.ID = head.ID
	for i, raw := range head.Objects {
		var o stixObject
		if err := json.Unmarshal(raw, &o); err != nil {
			var t struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			}
			_ = json.Unmarshal(raw, &t)
			ref := fmt.Sprintf("objects[%d]", i)
			if t.ID != "" {
				ref = "stix:" + t.ID
			}
			b.skip(ref, t.Type, "the object cannot be read: %v", jsonReason(err))
			bu.unreadable++
			continue
		}
		if o.Type == "" || o.ID == "" || !strings.HasPrefix(o.ID, o.Type+"--") {
			return nil, errorf(fmt.Sprintf("objects[%d]", i), "an object needs a type and an id of that type (type--uuid); found type %q, id %q",
				clip(o.Type, 40), clip(o.ID, 80))
		}
		if uuid.Validate(strings.TrimPrefix(o.ID, o.Type+"--")) != nil {
			b.skip(fmt.Sprintf("objects[%d]", i), o.Type, "its id %q is not the type, -- and a UUID", clip(o.ID, 80))
			continue
		}
		bu.note(o)
		if _, dup := bu.byID[o.ID]; dup {
			// Versions of one object share its id; the later in the file is kept.
			b.skip("stix:"+o.ID, o.Type, "another object of the file has this id; the later is kept")
			bu.objects[bu.byID[o.ID]] = o
			continue
		}
		bu.byID[o.ID] = len(bu.objects)
		bu.objects = append(bu.objects, o)
		if o.Type == "relationship" {
			bu.rels = append(bu.rels, o)
		}
	}
	b.p.Objects = len(head.Objects)
	head.Objects = nil
	bu.source(b)
	// Victims: what a relationship says is targeted, and what victim infrastructure consists
	// of. Their values are never imported, whichever object names them.
	victims := map[string]bool{}
	victimInfra := map[string]bool{}
	for _, o := range bu.objects {
		if o.Type == "infrastructure" && slices.Contains(o.InfrastructureTypes, "victim-infrastructure") {
			victimInfra[o.ID] = true
		}
	}
	for _, r := range bu.rels {
		if r.RelationshipType == "targets" || (victimInfra[r.SourceRef] && (r.RelationshipType == "consists-of" || r.RelationshipType == "has")) {
			victims[r.TargetRef] = true
		}
	}
	bu.victimIndicators = map[string]bool{}
	for _, r := range bu.rels {
		if r.RelationshipType == "indicates" && (victimInfra[r.TargetRef] || victims[r.TargetRef]) {
			bu.victimIndicators[r.SourceRef] = true
		}
	}
	bu.victimValues = map[string]bool{}
	for id := range victims {
		if i, ok := bu.byID[id]; ok && slices.Contains(networkTypes, bu.objects[i].Type) {
			if t, err := bu.observable(bu.objects[i], 0); err == nil && t.Validate() == nil {
				bu.victimValues[t.Kind+"\x00"+t.Value] = true
			}
		}
	}
	covered := bu.coveredByTraffic()
	for _, o := range bu.objects {
		ref := "stix:" + o.ID
		switch {
		case o.Revoked:
			b.skip("stix:"+o.ID, o.Type, "revoked by its producer")
		case o.Type == "indicator":
			bu.indicator(b, o)
		case slices.Contains(networkTypes, o.Type):
			switch {
			case victims[o.ID]:
				b.skip("stix:"+o.ID, o.Type, "the bundle names it as targeted by the attack (a victim), not as the attacker's")
			case covered[o.ID] != "":
				b.skip("stix:"+o.ID, o.Type, "imported with its port from %s", covered[o.ID])
			default:
				t, err := bu.observable(o, 0)
				if err != nil {
					b.skip("stix:"+o.ID, o.Type, "%v", err)
					continue
				}
				notes := bu.describe(&t, o.ID, "")
				t.Source = ref
				bu.add(b, t, o.Type, notes...)
			}
		case o.Type == "network-traffic":
			bu.traffic(b, o, victims)
		case slices.Contains(attributionTypes, o.Type):
			b.attribute(Attribution{Kind: o.Type, Name: o.Name, Aliases: o.Aliases, Ref: ref})
		case o.Type == "relationship" || o.Type == "marking-definition" || o.Type == "identity" || o.Type == "location" || o.Type == "infrastructure":
			// Read into the targets they describe and the source: not listed as skipped.
		case strings.HasPrefix(o.Type, "x-"):
			b.skip("stix:"+o.ID, o.Type, "a custom object type, not read")
		case slices.Contains(knownTypes, o.Type):
			b.skip("stix:"+o.ID, o.Type, "names no server, domain or address a measure can act on, nor an attacker")
		default:
			b.skip("stix:"+o.ID, o.Type, "not a STIX 2.1 object type")
		}
	}
	return b.p, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// jsonReason says a decoding error without Go's type names.
func jsonReason(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return whyf("%s has the wrong JSON kind (%s)", te.Field, te.Value)
	}
	return err.Error()
}

// source fills in who made the bundle and its TLP: the identity most objects were created by,
// the report's name, the strictest TLP marking.
func (bu *stixBundle) source(b *builder) {
	count := map[string]int{}
	tlp := -1
	for _, o := range bu.objects {
		if o.CreatedByRef != "" {
			count[o.CreatedByRef]++
		}
		if o.Type == "report" && b.p.Source.Name == "" {
			b.p.Source.Name = clip(o.Name, measure.MaxLine)
		}
		refs := slices.Clone(o.ObjectMarkingRefs)
		for _, g := range o.GranularMarkings {
			refs = append(refs, g.MarkingRef)
		}
		for _, m := range refs {
			tlp = max(tlp, bu.markingRank(m))
		}
	}
	best := ""
	for id, n := range count {
		if n > count[best] || (n == count[best] && id < best) {
			best = id
		}
	}
	if i, ok := bu.byID[best]; ok {
		b.p.Source.Producer = clip(bu.objects[i].Name, measure.MaxLine)
	}
	if bu.unreadable > 0 {
		tlp = TLPRank("red") // an object not read may have carried a marking
	}
	b.p.Source.TLP = tlpLabel(tlp)
}

// markingRank ranks a marking an object names (TLPRank): a TLP marking STIX fixes by
// identifier, or one the bundle defines; a statement or other marking the bundle defines
// restricts nothing (-1); a marking the bundle names but does not define, or a TLP it does not
// know, is taken as the strictest, since what it restricts cannot be told.
func (bu *stixBundle) markingRank(ref string) int {
	if name, ok := tlpMarkings[ref]; ok {
		return max(TLPRank(name), bu.marksOf(ref))
	}
	if r, ok := bu.marks[ref]; ok {
		return r
	}
	return TLPRank("red")
}

func (bu *stixBundle) marksOf(ref string) int {
	if r, ok := bu.marks[ref]; ok {
		return r
	}
	return -1
}

// note records what every definition of an id says, before a later one replaces it: the
// strictest rank of a marking, each place of a location.
func (bu *stixBundle) note(o stixObject) {
	switch o.Type {
	case "marking-definition":
		r := -1
		switch o.DefinitionType {
		case "tlp":
			r = tlpOrStrictest(fmt.Sprint(o.Definition.TLP))
		case "statement":
		default:
			r = TLPRank("red") // defined otherwise: not read, so taken as strictest
		}
		for _, e := range o.Extensions {
			if e.TLP20 != nil {
				name, _ := e.TLP20.(string)
				r = max(r, tlpOrStrictest(name))
			}
		}
		if old, ok := bu.marks[o.ID]; !ok || r > old {
			bu.marks[o.ID] = r
		}
	case "location":
		place := placeOf(o)
		if !slices.Contains(bu.places[o.ID], place) {
			bu.places[o.ID] = append(bu.places[o.ID], place)
		}
	}
}

// placeOf names the place a location object gives: its country code, else its region or
// whatever it is, which is not Japan as far as the importer can tell.
func placeOf(o stixObject) string {
	if _, cc := locationOf(o.Country); cc != "" {
		return cc
	}
	if o.Country != "" {
		return "country " + clip(o.Country, 20)
	}
	if o.Region != "" {
		return "region " + clip(o.Region, 40)
	}
	return "a place with no country"
}

// coveredByTraffic maps each address a network-traffic object reaches with a port to that
// object: the target is imported once, with its port.
func (bu *stixBundle) coveredByTraffic() map[string]string {
	out := map[string]string{}
	for _, o := range bu.objects {
		if o.Type == "network-traffic" && o.DstRef != "" && o.DstPort > 0 && !o.Revoked {
			if _, seen := out[o.DstRef]; !seen {
				out[o.DstRef] = o.ID
			}
		}
	}
	return out
}

// observable turns a network cyber-observable into a target.
func (bu *stixBundle) observable(o stixObject, port int) (measure.Target, error) {
	t := measure.Target{Port: port}
	var value string
	if o.Type != "autonomous-system" {
		if err := json.Unmarshal(o.Value, &value); err != nil || value == "" {
			return t, fmt.Errorf("its value is not text")
		}
	}
	switch o.Type {
	case "ipv4-addr", "ipv6-addr":
		t.Kind, t.Value = address(value)
	case "domain-name":
		t.Kind, t.Value = "domain", value
	case "url":
		t.Kind, t.Value = "url", value
	case "autonomous-system":
		n, err := strconv.ParseUint(string(o.Number), 10, 32)
		if err != nil {
			return t, fmt.Errorf("its number %q is not an AS number", clip(string(o.Number), 20))
		}
		t.Kind, t.Value = "asn", "AS"+strconv.FormatUint(n, 10)
	}
	return t, nil
}

// address reads an address value as STIX and MISP write it: a prefix may stand in an
// address's place, and /32 (/128) is one address.
func address(v string) (kind, value string) {
	if a, bits, ok := strings.Cut(v, "/"); ok {
		if (bits == "32" && !strings.Contains(a, ":")) || (bits == "128" && strings.Contains(a, ":")) {
			return "ip", a
		}
		return "cidr", v
	}
	return "ip", v
}

// traffic imports a network-traffic object's destination with its port.
func (bu *stixBundle) traffic(b *builder, o stixObject, victims map[string]bool) {
	if o.DstRef == "" {
		b.skip("stix:"+o.ID, o.Type, "names no destination (dst_ref)")
		return
	}
	i, ok := bu.byID[o.DstRef]
	if !ok {
		b.skip("stix:"+o.ID, o.Type, "its destination %s is not in the bundle", clip(o.DstRef, 80))
		return
	}
	dst := bu.objects[i]
	if !slices.Contains(networkTypes, dst.Type) || victims[dst.ID] || dst.Revoked {
		b.skip("stix:"+o.ID, o.Type, "its destination %s is not the attacker's address", clip(o.DstRef, 80))
		return
	}
	if o.DstPort < 0 || o.DstPort > 65535 {
		b.skip("stix:"+o.ID, o.Type, "its destination port %d is not a port", o.DstPort)
		return
	}
	t, err := bu.observable(dst, o.DstPort)
	if err != nil {
		b.skip("stix:"+o.ID, o.Type, "%v", err)
		return
	}
	notes := bu.describe(&t, dst.ID, o.ID)
	t.Source = "stix:" + o.ID
	bu.add(b, t, o.Type, notes...)
}

// indicator imports what an indicator's pattern names.
func (bu *stixBundle) indicator(b *builder, o stixObject) {
	if bu.victimIndicators[o.ID] {
		b.skip("stix:"+o.ID, o.Type, "it indicates what the attack targets (a victim), not the attacker's")
		return
	}
	if pt := cmpOr(o.PatternType, "stix"); !strings.EqualFold(pt, "stix") {
		b.skip("stix:"+o.ID, o.Type, "a pattern in the %s language, which is not read (only STIX patterns are)", clip(pt, 40))
		return
	}
	if o.ValidUntil != "" {
		until, err := time.Parse(time.RFC3339Nano, o.ValidUntil)
		if err != nil {
			b.skip("stix:"+o.ID, o.Type, "valid_until %q is not an RFC 3339 time", clip(o.ValidUntil, 40))
			return
		}
		if !until.After(bu.now) {
			b.skip("stix:"+o.ID, o.Type, "expired: valid until %s", until.UTC().Format(time.RFC3339))
			return
		}
	}
	obs, err := parsePattern(o.Pattern)
	if err != nil {
		b.skip("stix:"+o.ID, o.Type, "the pattern cannot be read, %v", err)
		return
	}
	for _, ob := range obs {
		for _, conj := range ob {
			ts, why := targetsOf(conj)
			if why != "" {
				b.skip("stix:"+o.ID, o.Type, "%s", why)
				continue
			}
			for _, t := range ts {
				notes := bu.describe(&t, "", o.ID)
				t.Source = "stix:" + o.ID
				bu.add(b, t, o.Type, notes...)
			}
		}
	}
}

// targetsOf reads the targets one conjunction of a pattern names, or says why it names none.
func targetsOf(conj conjunction) ([]measure.Target, string) {
	var addr *comparison
	port := 0
	for i := range conj {
		c := &conj[i]
		switch {
		case c.Path == "network-traffic:dst_ref.type" || strings.HasPrefix(c.Path, "network-traffic:protocols"):
			// Narrows the traffic, not the server: the address is still the target.
			continue
		case c.Path == "network-traffic:dst_port":
			if c.Op != "=" || c.Not || len(c.Values) != 1 || c.Kinds[0] != 'n' {
				return nil, whyf("%s %s %s: a port is named by = and a number", c.Path, c.Op, clip(strings.Join(c.Values, ", "), 40))
			}
			p, err := strconv.Atoi(c.Values[0])
			if err != nil || p < 1 || p > 65535 {
				return nil, whyf("%s = %s is not a port", c.Path, clip(c.Values[0], 20))
			}
			port = p
			continue
		}
		kind := pathKind(c.Path)
		if kind == "" {
			return nil, whyf("%s names no server, domain or address a measure can act on", clip(c.Path, 80))
		}
		if addr != nil {
			return nil, whyf("%s and %s in one observation: the object they must both describe is not one target", clip(addr.Path, 80), clip(c.Path, 80))
		}
		switch {
		case c.Not:
			return nil, whyf("%s NOT %s names what the target is not", clip(c.Path, 80), c.Op)
		case c.Op == "=" || c.Op == "IN":
		case c.Op == "ISSUBSET" && (kind == "ip" || kind == "net"):
		default:
			return nil, whyf("%s %s names no single target (only =, IN, and ISSUBSET of an address, do)", clip(c.Path, 80), c.Op)
		}
		addr = c
	}
	if addr == nil {
		return nil, whyf("names no address, domain, URL or AS number")
	}
	kind := pathKind(addr.Path)
	var out []measure.Target
	for i, v := range addr.Values {
		t := measure.Target{Port: port, Value: v}
		switch kind {
		case "asn":
			if addr.Kinds[i] != 'n' {
				return nil, whyf("%s = %s is not a number", addr.Path, clip(v, 40))
			}
			t.Kind, t.Value = "asn", "AS"+v
		case "ip", "net":
			if addr.Kinds[i] != 's' {
				return nil, whyf("%s needs a quoted address, found %s", addr.Path, clip(v, 40))
			}
			t.Kind, t.Value = address(v)
			if addr.Op == "ISSUBSET" && !strings.Contains(v, "/") {
				return nil, whyf("%s ISSUBSET %s needs a prefix such as 198.51.100.0/24", addr.Path, clip(v, 40))
			}
		case "host":
			if addr.Kinds[i] != 's' {
				return nil, whyf("%s needs a quoted name, found %s", addr.Path, clip(v, 40))
			}
			t.Kind, t.Value = guessHost(v)
		default:
			if addr.Kinds[i] != 's' {
				return nil, whyf("%s needs quoted text, found %s", addr.Path, clip(v, 40))
			}
			t.Kind = kind
		}
		out = append(out, t)
	}
	return out, ""
}

// whyf says why a pattern names no target; catalogued in Japanese for the pages.
func whyf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// pathKind is the target kind an object path's value is, or "".
func pathKind(path string) string {
	switch path {
	case "ipv4-addr:value", "ipv6-addr:value":
		return "ip"
	case "domain-name:value":
		return "domain"
	case "url:value":
		return "url"
	case "autonomous-system:number":
		return "asn"
	case "network-traffic:dst_ref.value":
		return "host" // an address or a domain name
	}
	return ""
}

func guessHost(v string) (kind, value string) {
	if strings.ContainsAny(v, ":") || (strings.Trim(v, "0123456789./") == "" && strings.Contains(v, ".")) {
		return address(v)
	}
	return "domain", v
}

// describe completes a target from what the bundle says of its infrastructure: role,
// ownership and country. sco is the observable's id, ind the indicator's or traffic's. Places
// that disagree leave the location unknown, which asks for the safeguards of a target
// abroad, and are said in a note: file order must not decide whether a target is in Japan.
func (bu *stixBundle) describe(t *measure.Target, sco, ind string) []string {
	var infras []string
	for _, r := range bu.rels {
		switch {
		case sco != "" && r.TargetRef == sco && strings.HasPrefix(r.SourceRef, "infrastructure--") &&
			(r.RelationshipType == "consists-of" || r.RelationshipType == "has"):
			infras = append(infras, r.SourceRef)
		case ind != "" && r.SourceRef == ind && r.RelationshipType == "indicates" && strings.HasPrefix(r.TargetRef, "infrastructure--"):
			infras = append(infras, r.TargetRef)
		}
	}
	var in infra
	for _, id := range infras {
		got := bu.infrastructure(id)
		if in.role == "" {
			in.role = got.role
		}
		if in.ownership == "" {
			in.ownership = got.ownership
		}
	}
	t.Role, t.Ownership = in.role, cmpOr(in.ownership, "unknown")
	// Where: every place a located-at gives the observable, the indicator or any of their
	// infrastructure, every definition of each location counted.
	var places []string
	for _, r := range bu.rels {
		if r.RelationshipType != "located-at" || r.Revoked || !(r.SourceRef == sco && sco != "" || r.SourceRef == ind && ind != "" || slices.Contains(infras, r.SourceRef)) {
			continue
		}
		named, ok := bu.places[r.TargetRef]
		if !ok {
			named = []string{"a location the file does not give"}
		}
		for _, p := range named {
			if !slices.Contains(places, p) {
				places = append(places, p)
			}
		}
	}
	t.Location, t.Country = "unknown", ""
	switch {
	case len(places) == 1:
		if loc, cc := locationOf(places[0]); cc != "" {
			t.Location, t.Country = loc, cc
		}
	case len(places) > 1:
		slices.Sort(places)
		return []string{notef("the file places it in %s at once: its location is left unknown", strings.Join(places, " and "))}
	}
	return nil
}

// infrastructure reads what relationships say of one infrastructure object.
func (bu *stixBundle) infrastructure(id string) infra {
	var in infra
	i, ok := bu.byID[id]
	if !ok || bu.objects[i].Revoked {
		return in
	}
	o := bu.objects[i]
	for _, m := range infrastructureRoles {
		if slices.Contains(o.InfrastructureTypes, m.stix) {
			in.role = m.role
			break
		}
	}
	owned, compromised := false, false
	for _, r := range bu.rels {
		if r.TargetRef == id && r.RelationshipType == "owns" {
			owned = true
		}
		if r.TargetRef == id && r.RelationshipType == "compromises" {
			compromised = true
		}

	}
	switch {
	case owned && !compromised:
		in.ownership = "attacker_controlled"
	case compromised && !owned:
		in.ownership = "compromised_third_party"
	}
	return in
}
