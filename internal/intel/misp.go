package intel

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/text/width"

	"github.com/takedown/takedown/internal/measure"
)

// mispEvent is the part of a MISP event (its JSON export, as MISP and PyMISP write it) the
// importer reads.
type mispEvent struct {
	UUID      string                `json:"uuid"`
	Info      string                `json:"info"`
	Orgc      struct{ Name string } `json:"Orgc"`
	Attribute []mispAttribute       `json:"Attribute"`
	Object    []struct {
		Name      string          `json:"name"`
		UUID      string          `json:"uuid"`
		Deleted   bool            `json:"deleted"`
		Attribute []mispAttribute `json:"Attribute"`
		Tag       []mispTag       `json:"Tag"`
	} `json:"Object"`
	// Proposals of other organisations: not imported, but their marking is the file's too.
	ShadowAttribute []mispAttribute `json:"ShadowAttribute"`
	Galaxy          []struct {
		Type          string `json:"type"`
		GalaxyCluster []struct {
			UUID    string `json:"uuid"`
			Value   string `json:"value"`
			TagName string `json:"tag_name"`
			Meta    struct {
				Synonyms []string `json:"synonyms"`
			} `json:"meta"`
		} `json:"GalaxyCluster"`
	} `json:"Galaxy"`
	Tag      []mispTag `json:"Tag"`
	EventTag []struct {
		Tag mispTag `json:"Tag"`
	} `json:"EventTag"`
}

// mispTag is a tag as MISP writes it: in Tag lists, and inside EventTag and AttributeTag
// entries (the API's shape).
type mispTag struct {
	Name string `json:"name"`
}

type mispAttribute struct {
	UUID     string   `json:"uuid"`
	Type     string   `json:"type"`
	Category string   `json:"category"`
	Value    string   `json:"value"`
	ToIDS    mispBool `json:"to_ids"`
	Deleted  mispBool `json:"deleted"`
	Warnings []struct {
		Name string `json:"warninglist_name"`
	} `json:"warnings"`
	Tag          []mispTag `json:"Tag"`
	AttributeTag []struct {
		Tag mispTag `json:"Tag"`
	} `json:"AttributeTag"`
}

// mispBool reads MISP's booleans, which older exports write as "0"/"1" or 0/1.
type mispBool bool

func (b *mispBool) UnmarshalJSON(data []byte) error {
	switch strings.ToLower(strings.Trim(string(data), `"`)) {
	case "true", "1", "yes":
		*b = true
	case "false", "0", "", "null", "no":
		*b = false
	default:
		return fmt.Errorf("%s is not a MISP boolean", clip(string(data), 20))
	}
	return nil
}

// galaxyKinds maps MISP galaxy types to attribution kinds.
var galaxyKinds = map[string]string{
	"threat-actor": "threat-actor", "mitre-threat-actor": "threat-actor", "mitre-intrusion-set": "intrusion-set",
	"mitre-enterprise-attack-intrusion-set": "intrusion-set", "tool": "tool", "mitre-tool": "tool", "exploit-kit": "tool",
	"mitre-malware": "malware", "malware": "malware", "ransomware": "malware", "botnet": "malware", "rat": "malware",
	"backdoor": "malware", "banker": "malware", "stealer": "malware", "android": "malware",
}

func parseMISP(data []byte) (*Preview, error) {
	var wrap struct {
		Event    *mispEvent `json:"Event"`
		Response []struct {
			Event *mispEvent `json:"Event"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &wrap); err != nil {
		return nil, errorf("", "not a MISP event: %v", jsonReason(err))
	}
	ev := wrap.Event
	switch {
	case ev == nil && len(wrap.Response) == 1:
		ev = wrap.Response[0].Event
	case ev == nil && len(wrap.Response) > 1:
		return nil, errorf("", "the file holds %d MISP events; import one event at a time", len(wrap.Response))
	case ev == nil:
		var bare mispEvent
		if err := json.Unmarshal(data, &bare); err != nil {
			return nil, errorf("", "not a MISP event: %v", jsonReason(err))
		}
		ev = &bare
	}
	if ev == nil || (ev.UUID == "" && len(ev.Attribute) == 0 && len(ev.Object) == 0) {
		return nil, errorf("", "the MISP event is missing, or has no uuid and no attributes")
	}
	n := len(ev.Attribute)
	for _, o := range ev.Object {
		n += len(o.Attribute)
	}
	if n > MaxObjects {
		return nil, errorf("", "the event holds %d attributes; at most %d are read", n, MaxObjects)
	}
	b := newBuilder()
	b.p.Objects = n
	b.p.Source = Source{ID: ev.UUID, Name: clip(ev.Info, measure.MaxLine), Producer: clip(ev.Orgc.Name, measure.MaxLine)}
	// The strictest TLP tag of the event or of any attribute: a part marked TLP:RED makes
	// the file's material RED for sharing.
	tlp := -1
	see := func(tags []mispTag) {
		for _, t := range tags {
			// Full-width letters (ｔｌｐ:red) are the same tag to a reader.
			name := strings.ToLower(strings.TrimSpace(width.Fold.String(t.Name)))
			if v, ok := strings.CutPrefix(name, "tlp:"); ok {
				tlp = max(tlp, tlpOrStrictest(v))
			}
		}
	}
	seeAll := func(tags []mispTag, wrapped []struct {
		Tag mispTag `json:"Tag"`
	}) {
		see(tags)
		for _, w := range wrapped {
			see([]mispTag{w.Tag})
		}
	}
	seeAll(ev.Tag, ev.EventTag)
	for _, a := range ev.Attribute {
		seeAll(a.Tag, a.AttributeTag)
	}
	for _, o := range ev.Object {
		see(o.Tag)
		for _, a := range o.Attribute {
			seeAll(a.Tag, a.AttributeTag)
		}
	}
	for _, a := range ev.ShadowAttribute {
		seeAll(a.Tag, a.AttributeTag)
	}
	b.p.Source.TLP = tlpLabel(tlp)
	for _, a := range ev.Attribute {
		mispAttr(b, a, false)
	}
	for _, o := range ev.Object {
		for _, a := range o.Attribute {
			mispAttr(b, a, bool(o.Deleted))
		}
	}
	for _, g := range ev.Galaxy {
		kind, ok := galaxyKinds[g.Type]
		for _, c := range g.GalaxyCluster {
			// The cluster's tag (misp-galaxy:tool="X-Agent") is how MISP names it: older
			// exports give every cluster of a galaxy the galaxy's UUID.
			ref := c.TagName
			if ref == "" && c.UUID != "" {
				ref = "misp-galaxy:" + c.UUID
			}
			if ref == "" {
				b.skip(c.Value, "galaxy "+g.Type, "a galaxy cluster with neither a tag nor a UUID: nothing to name it by")
				continue
			}
			if !ok {
				b.skip(ref, "galaxy "+g.Type, "a galaxy that names no actor, intrusion set, malware or tool")
				continue
			}
			b.attribute(Attribution{Kind: kind, Name: c.Value, Aliases: c.Meta.Synonyms, Ref: ref})
		}
	}
	return b.p, nil
}

// mispAttr imports one attribute, or says why not.
func mispAttr(b *builder, a mispAttribute, objectDeleted bool) {
	ref := "misp:" + a.UUID
	switch {
	case uuid.Validate(a.UUID) != nil:
		b.skip("misp:"+clip(a.UUID, 60), a.Type, "its uuid %q is not a UUID: the target could not name where it came from", clip(a.UUID, 60))
		return
	case bool(a.Deleted) || objectDeleted:
		b.skip(ref, a.Type, "deleted in MISP")
		return
	case !bool(a.ToIDS) && mispNetwork(a.Type):
		b.skip(ref, a.Type, "to_ids is off: its producer did not mark it as an indicator to act on")
		return
	}
	var notes []string
	for _, w := range a.Warnings {
		notes = append(notes, notef("on the MISP warning list %q", clip(w.Name, 80)))
	}
	if a.Type == "ip-src" || a.Type == "ip-src|port" {
		notes = append(notes, notef("the source of the attack (ip-src), not a server it reached"))
	}
	value := a.Value
	add := func(kind, v string, port int) {
		b.add(measure.Target{Kind: kind, Value: v, Port: port, Location: "unknown", Ownership: "unknown", Source: ref}, a.Type, notes...)
	}
	switch a.Type {
	case "ip-dst", "ip-src":
		k, v := address(value)
		add(k, v, 0)
	case "ip-dst|port", "ip-src|port":
		host, port, ok := cutLast(value, "|")
		if !ok {
			host, port, ok = cutLast(value, ":")
		}
		p, err := strconv.Atoi(port)
		if !ok || err != nil || p < 1 || p > 65535 {
			b.skip(ref, a.Type, "%q is not an address and a port", clip(value, 80))
			return
		}
		k, v := address(host)
		add(k, v, p)
	case "domain", "hostname":
		add("domain", value, 0)
	case "domain|ip", "hostname|port":
		host, other, ok := strings.Cut(value, "|")
		if !ok {
			b.skip(ref, a.Type, "%q is not two values joined by |", clip(value, 80))
			return
		}
		if a.Type == "hostname|port" {
			p, err := strconv.Atoi(other)
			if err != nil || p < 1 || p > 65535 {
				b.skip(ref, a.Type, "%q is not a host name and a port", clip(value, 80))
				return
			}
			add("domain", host, p)
			return
		}
		add("domain", host, 0)
		k, v := address(other)
		add(k, v, 0)
	case "url":
		add("url", value, 0)
	case "AS":
		add("asn", value, 0)
	case "link":
		b.skip(ref, a.Type, "a link to a report, not the attacker's")
	default:
		b.skip(ref, a.Type, "names no server, domain or address a measure can act on")
	}
}

func mispNetwork(t string) bool {
	switch t {
	case "ip-dst", "ip-src", "ip-dst|port", "ip-src|port", "domain", "hostname", "domain|ip", "hostname|port", "url", "AS":
		return true
	}
	return false
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// notef is a note beside a target, catalogued in Japanese for the pages.
func notef(format string, args ...any) string { return fmt.Sprintf(format, args...) }
