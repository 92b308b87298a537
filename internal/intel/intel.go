// Package intel reads threat-intelligence files that others write (STIX 2.1 bundles, MISP
// events) into what a measure request holds: targets, each keeping the identifier and source
// it came from, and the attribution the file states. It has no I/O: the service previews what
// a file would add and imports it only when the officer confirms.
package intel

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/takedown/takedown/internal/measure"
)

// Formats this package reads.
const (
	STIX = "stix"
	MISP = "misp"
)

// Limits on a file: beyond them it is refused whole, with the limit named.
const (
	MaxBytes   = 128 << 20 // the file
	MaxDepth   = 32        // JSON nesting
	MaxString  = 1 << 20   // one JSON string, in bytes
	MaxObjects = 1_000_000 // STIX objects or MISP attributes
	// MaxListed bounds each list a preview carries; counts always cover everything.
	MaxListed = 1000
)

// Preview is what importing a file would do: the targets it would add, the attribution it
// states, and everything it holds that would not be imported, with the reason.
type Preview struct {
	Format      string        `json:"format"`
	Source      Source        `json:"source"`
	Objects     int           `json:"objects"` // STIX objects or MISP attributes read
	Targets     []Candidate   `json:"targets"`
	Attribution []Attribution `json:"attribution"`
	Skipped     []Skip        `json:"skipped"`
}

// Source names the file: its own identifier, who produced it and its TLP marking.
type Source struct {
	ID       string `json:"id"`                 // bundle--…, or the MISP event's UUID
	Name     string `json:"name,omitempty"`     // the MISP event's info, or the STIX report's name
	Producer string `json:"producer,omitempty"` // the identity or organisation that made it
	TLP      string `json:"tlp,omitempty"`
	SHA256   string `json:"sha256"` // of the file as received
}

// Candidate is one target the file would add. Its Target.Source names the object it came
// from ("stix:indicator--…", "misp:<attribute uuid>"); Notes say what the officer should
// look at before confirming (a private address, a MISP warning list, another object naming it).
type Candidate struct {
	Target measure.Target `json:"target"`
	Notes  []string       `json:"notes,omitempty"`
}

// Attribution is an actor, intrusion set, campaign, malware or tool the file names.
type Attribution struct {
	Kind    string   `json:"kind"` // threat-actor | intrusion-set | campaign | malware | tool
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
	Ref     string   `json:"ref"` // stix:threat-actor--…, misp-galaxy:<cluster uuid>
	// TLP is the marking of the file it was imported from (TLP:RED, …), kept so that what a
	// source restricted is not shared under a weaker marking.
	TLP string `json:"tlp,omitempty"`
}

// Skip is something in the file that is not imported, and why.
type Skip struct {
	Ref    string `json:"ref"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// Error is a file refused whole; nothing of it is imported.
type Error struct {
	Where   string // a JSON path or byte offset
	Message string
}

func (e *Error) Error() string {
	if e.Where == "" {
		return e.Message
	}
	return e.Where + ": " + e.Message
}

func errorf(where, format string, args ...any) *Error {
	return &Error{Where: where, Message: fmt.Sprintf(format, args...)}
}

// Detect says which format a file is in, from its outermost object.
func Detect(data []byte) string {
	var head struct {
		Type     string          `json:"type"`
		Event    json.RawMessage `json:"Event"`
		Response json.RawMessage `json:"response"`
		Attr     json.RawMessage `json:"Attribute"`
	}
	if json.Unmarshal(data, &head) != nil {
		return ""
	}
	switch {
	case head.Type == "bundle":
		return STIX
	case head.Event != nil || head.Response != nil || head.Attr != nil:
		return MISP
	}
	return ""
}

// Parse reads a file in the given format ("" to detect it). now judges expiry (an indicator's
// valid_until).
func Parse(format string, data []byte, now time.Time) (*Preview, error) {
	sum := sha256.Sum256(data)
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte-order mark some editors write
	if err := checkShape(data); err != nil {
		return nil, err
	}
	if format == "" {
		format = Detect(data)
	}
	var p *Preview
	var err error
	switch format {
	case STIX:
		p, err = parseSTIX(data, now)
	case MISP:
		p, err = parseMISP(data)
	case "":
		return nil, errorf("", "the file is neither a STIX 2.1 bundle (\"type\": \"bundle\") nor a MISP event (\"Event\")")
	default:
		return nil, errorf("", "unknown format %q: stix or misp", clip(format, 20))
	}
	if err != nil {
		return nil, err
	}
	p.Format, p.Source.SHA256 = format, hex.EncodeToString(sum[:])
	return p, nil
}

// checkShape refuses, before decoding, a file too large, not JSON text at the top, nested too
// deep, or holding a string too long: encoding/json would otherwise hold it all first.
func checkShape(data []byte) error {
	if len(data) > MaxBytes {
		return errorf("", "the file is %d bytes; at most %d (%d MiB) are read", len(data), MaxBytes, MaxBytes>>20)
	}
	t := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(t) == 0 || t[0] != '{' {
		return errorf("", "the file is not a JSON object")
	}
	depth, inString, escaped, strStart, strEnd := 0, false, false, 0, 0
	// The keys of each open object: a repeated key is a file two readers read differently
	// (encoding/json keeps the last value, others the first), so it is refused.
	var frames []keyFrame
	for i, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString, strEnd = false, i
				if n := i - strStart - 1; n > MaxString {
					return errorf("", "a string of %d bytes at byte %d; at most %d are read", n, strStart, MaxString)
				}
			}
			continue
		}
		switch c {
		case '"':
			inString, strStart = true, i
		case '{', '[':
			depth++
			if depth > MaxDepth {
				return errorf("", "JSON nested deeper than %d levels at byte %d", MaxDepth, i)
			}
			if len(frames) < cap(frames) {
				frames = frames[:len(frames)+1]
				frames[len(frames)-1].reset(c == '{')
			} else {
				frames = append(frames, keyFrame{object: c == '{'})
			}
		case '}', ']':
			depth--
			if len(frames) > 0 {
				frames = frames[:len(frames)-1]
			}
		case ':':
			if len(frames) == 0 || !frames[len(frames)-1].object || strEnd <= strStart {
				continue // not valid JSON: json.Valid below says where
			}
			key := string(data[strStart+1 : strEnd])
			if bytes.IndexByte(data[strStart:strEnd], '\\') >= 0 {
				if json.Unmarshal(data[strStart:strEnd+1], &key) != nil {
					continue
				}
			}
			if !frames[len(frames)-1].add(key) {
				return errorf("", "an object repeats the key %q at byte %d: readers differ on which value counts, so the file is not read", clip(key, 64), strStart)
			}
		}
	}
	if !utf8.Valid(data) {
		at := 0
		for at < len(data) {
			r, n := utf8.DecodeRune(data[at:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			at += n
		}
		line, col := lineCol(data, int64(at))
		return errorf("", "the file is not UTF-8 at line %d, column %d (byte %d): JSON text is exchanged in UTF-8 (RFC 8259)", line, col, at)
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		if se, ok := err.(*json.SyntaxError); ok {
			line, col := lineCol(data, se.Offset)
			return errorf("", "not valid JSON at line %d, column %d: %s", line, col, se.Error())
		}
		return errorf("", "not valid JSON: %v", err)
	}
	return nil
}

// keyFrame holds the keys of one open JSON object (or marks an array): a slice while they are
// few, as most objects' are, and a set beyond.
type keyFrame struct {
	object bool
	keys   []string
	set    map[string]bool
}

func (f *keyFrame) reset(object bool) {
	f.object, f.keys, f.set = object, f.keys[:0], nil
}

// add records key and says whether it is new to the object.
func (f *keyFrame) add(key string) bool {
	if f.set != nil {
		if f.set[key] {
			return false
		}
		f.set[key] = true
		return true
	}
	if slices.Contains(f.keys, key) {
		return false
	}
	f.keys = append(f.keys, key)
	if len(f.keys) > 32 {
		f.set = make(map[string]bool, 64)
		for _, k := range f.keys {
			f.set[k] = true
		}
	}
	return true
}

// lineCol says where a byte offset is, as an editor shows it.
func lineCol(data []byte, off int64) (line, col int64) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line = int64(bytes.Count(data[:off], []byte{'\n'}) + 1)
	col = off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return line, col
}

// builder gathers a preview, keeping the first of each target and counting every skip.
type builder struct {
	p    *Preview
	seen map[string]int // target key → index in p.Targets
	refs map[string]bool
	// unplaced marks the targets the file places in more than one place: unknown for good.
	unplaced map[int]bool
}

// placedTwice says whether notes hold the note of a target placed in two places at once.
func placedTwice(notes []string) bool {
	return slices.ContainsFunc(notes, func(n string) bool {
		return strings.HasPrefix(n, "the file places it in ") && strings.HasSuffix(n, " at once: its location is left unknown")
	})
}

func newBuilder() *builder {
	return &builder{p: &Preview{Targets: []Candidate{}, Attribution: []Attribution{}, Skipped: []Skip{}},
		seen: map[string]int{}, refs: map[string]bool{}, unplaced: map[int]bool{}}
}

// Key identifies a target for duplicates: the same value and port is one target.
func Key(t measure.Target) string { return fmt.Sprintf("%s\x00%s\x00%d", t.Kind, t.Value, t.Port) }

func (b *builder) skip(ref, typ, format string, args ...any) {
	b.p.Skipped = append(b.p.Skipped, Skip{Ref: clip(ref, 200), Type: clip(typ, 100), Reason: fmt.Sprintf(format, args...)})
}

// add validates t and adds it, or records why not; notes are kept with it.
func (b *builder) add(t measure.Target, typ string, notes ...string) {
	normalise(&t)
	if err := t.Validate(); err != nil {
		b.skip(t.Source, typ, "%v", err)
		return
	}
	k := Key(t)
	if i, ok := b.seen[k]; ok {
		c := &b.p.Targets[i]
		if c.Target.Source != t.Source {
			b.skip(t.Source, typ, "the same target as %s", c.Target.Source)
		}
		// Mentions that disagree on where it is leave it unknown, whichever came first.
		if !b.unplaced[i] && (len(notes) > 0 && placedTwice(notes) || c.Target.Country != "" && t.Country != "" && c.Target.Country != t.Country) {
			places := slices.DeleteFunc([]string{c.Target.Country, t.Country}, func(p string) bool { return p == "" })
			slices.Sort(places)
			if len(places) == 2 {
				c.Notes = append(c.Notes, notef("the file places it in %s at once: its location is left unknown", strings.Join(places, " and ")))
			} else {
				c.Notes = append(c.Notes, notes...)
			}
			c.Target.Location, c.Target.Country = "unknown", ""
			b.unplaced[i] = true
		}
		if !b.unplaced[i] {
			fill(&c.Target, t)
		} else {
			loc, country := c.Target.Location, c.Target.Country
			fill(&c.Target, t)
			c.Target.Location, c.Target.Country = loc, country
		}
		return
	}
	notes = append(notes, addressNotes(t)...)
	if placedTwice(notes) {
		b.unplaced[len(b.p.Targets)] = true
	}
	b.seen[k] = len(b.p.Targets)
	b.p.Targets = append(b.p.Targets, Candidate{Target: t, Notes: notes})
}

// normalise writes a value as the draft would hold it already typed: an IPv4 address mapped
// into IPv6 as IPv4, a URL's scheme and host in lower case.
func normalise(t *measure.Target) {
	switch t.Kind {
	case "ip":
		if a, err := netip.ParseAddr(strings.TrimSpace(t.Value)); err == nil && a.Is4In6() {
			t.Value = a.Unmap().String()
		}
	case "url":
		if u, err := url.Parse(strings.TrimSpace(t.Value)); err == nil && u.Host != "" {
			u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
			t.Value = u.String()
		}
	}
}

// fill completes what a first mention left unknown from a later one.
func fill(dst *measure.Target, src measure.Target) {
	if dst.Role == "" {
		dst.Role = src.Role
	}
	if dst.Ownership == "unknown" && src.Ownership != "unknown" {
		dst.Ownership = src.Ownership
	}
	if dst.Location == "unknown" && src.Location != "unknown" {
		dst.Location, dst.Country = src.Location, src.Country
	}
}

func (b *builder) attribute(a Attribution) {
	if b.refs[a.Ref] {
		return
	}
	b.refs[a.Ref] = true
	// Another id for the same actor (another producer's copy): one entry.
	name := a.Kind + "\x00" + strings.ToLower(strings.TrimSpace(a.Name))
	if a.Name != "" && b.refs[name] {
		b.skip(a.Ref, a.Kind, "another object of the file names the same %s", a.Kind)
		return
	}
	b.refs[name] = true
	if strings.TrimSpace(a.Name) == "" {
		b.skip(a.Ref, a.Kind, "it has no name")
		return
	}
	if len(a.Name) > measure.MaxLine {
		a.Name = clip(a.Name, measure.MaxLine-len("…"))
	}
	if why := lineProblem(a.Name); why != "" {
		b.skip(a.Ref, a.Kind, "its name cannot be kept: %s", why)
		return
	}
	if len(a.Aliases) > 50 {
		b.skip(a.Ref, a.Kind+" alias", "%d aliases beyond the first 50 left out", len(a.Aliases)-50)
		a.Aliases = a.Aliases[:50]
	}
	aliases := a.Aliases[:0:0]
	for _, s := range a.Aliases {
		s = strings.TrimSpace(s)
		if s == "" {
			b.skip(a.Ref, a.Kind+" alias", "an empty alias left out")
			continue
		}
		if s == a.Name || slices.Contains(aliases, s) {
			continue
		}
		if why := lineProblem(s); why != "" {
			b.skip(a.Ref, a.Kind+" alias", "an alias left out: %s", why)
			continue
		}
		aliases = append(aliases, s)
	}
	a.Aliases = aliases
	b.p.Attribution = append(b.p.Attribution, a)
}

// lineProblem is why s cannot be kept as one line of text, in the words of measure's check
// (without its field), or "".
func lineProblem(s string) string {
	err := measure.CheckLine("name", s, measure.MaxLine)
	if err == nil {
		return ""
	}
	var fe *measure.FieldError
	if errors.As(err, &fe) {
		return fe.Message
	}
	return err.Error()
}

// Documentation, private and other special-use ranges (IANA's special-purpose address
// registries): a takedown against one is a mistake in the file or in the import, so the
// preview says so beside the target.
var specialRanges = []struct {
	prefix netip.Prefix
	note   string
}{
	{netip.MustParsePrefix("192.0.2.0/24"), notef("a documentation address (RFC 5737)")},
	{netip.MustParsePrefix("198.51.100.0/24"), notef("a documentation address (RFC 5737)")},
	{netip.MustParsePrefix("203.0.113.0/24"), notef("a documentation address (RFC 5737)")},
	{netip.MustParsePrefix("2001:db8::/32"), notef("a documentation address (RFC 3849)")},
	{netip.MustParsePrefix("10.0.0.0/8"), notef("a private address (RFC 1918)")},
	{netip.MustParsePrefix("172.16.0.0/12"), notef("a private address (RFC 1918)")},
	{netip.MustParsePrefix("192.168.0.0/16"), notef("a private address (RFC 1918)")},
	{netip.MustParsePrefix("fc00::/7"), notef("a private address (RFC 4193)")},
	{netip.MustParsePrefix("100.64.0.0/10"), notef("a shared carrier address (RFC 6598)")},
	{netip.MustParsePrefix("127.0.0.0/8"), notef("a loopback address")},
	{netip.MustParsePrefix("::1/128"), notef("a loopback address")},
	{netip.MustParsePrefix("169.254.0.0/16"), notef("a link-local address")},
	{netip.MustParsePrefix("fe80::/10"), notef("a link-local address")},
	{netip.MustParsePrefix("0.0.0.0/8"), notef("an unspecified address")},
	{netip.MustParsePrefix("::/128"), notef("an unspecified address")},
	{netip.MustParsePrefix("224.0.0.0/4"), notef("a multicast address")},
	{netip.MustParsePrefix("ff00::/8"), notef("a multicast address")},
	{netip.MustParsePrefix("255.255.255.255/32"), notef("the broadcast address")},
	{netip.MustParsePrefix("240.0.0.0/4"), notef("a reserved address (RFC 1112)")},
	{netip.MustParsePrefix("192.0.0.0/24"), notef("an IETF protocol address (RFC 6890)")},
	{netip.MustParsePrefix("198.18.0.0/15"), notef("a benchmarking address (RFC 2544)")},
	{netip.MustParsePrefix("64:ff9b::/96"), notef("a NAT64 address (RFC 6052)")},
}

// reservedNames are the domains RFC 2606, RFC 6761 and RFC 8375 keep out of use.
var reservedNames = []string{"example", "example.com", "example.net", "example.org", "test", "invalid", "localhost", "local", "home.arpa"}

func addressNotes(t measure.Target) []string {
	switch t.Kind {
	case "ip", "cidr":
		p, err := netip.ParsePrefix(t.Value)
		if err != nil {
			a, err := netip.ParseAddr(t.Value)
			if err != nil {
				return nil
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		return prefixNotes(p)
	case "domain":
		return nameNotes(t.Value)
	case "url":
		u, err := url.Parse(t.Value)
		if err != nil {
			return nil
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			return prefixNotes(netip.PrefixFrom(a, a.BitLen()))
		}
		return nameNotes(strings.ToLower(u.Hostname()))
	}
	return nil
}

func nameNotes(host string) []string {
	for _, r := range reservedNames {
		if host == r || strings.HasSuffix(host, "."+r) {
			return []string{notef("a reserved name (RFC 2606, RFC 6761)")}
		}
	}
	return nil
}

// prefixNotes says what is special about an address or a range: inside a special-use range,
// holding one, or wide enough to take in many hosts.
func prefixNotes(p netip.Prefix) []string {
	var notes []string
	for _, s := range specialRanges {
		if s.prefix.Addr().Is4() == p.Addr().Is4() && s.prefix.Bits() <= p.Bits() && s.prefix.Contains(p.Addr()) {
			notes = append(notes, s.note)
			break
		}
	}
	if len(notes) == 0 {
		for _, s := range specialRanges {
			if s.prefix.Addr().Is4() == p.Addr().Is4() && p.Bits() < s.prefix.Bits() && p.Contains(s.prefix.Addr()) {
				notes = append(notes, notef("a range that holds special-use addresses, among them %s (%s)", s.prefix.String(), s.note))
				break
			}
		}
	}
	switch {
	case p.Addr().Is4() && p.Bits() < 24:
		notes = append(notes, notef("a range of %s addresses: every host in it would be acted on", strconv.FormatUint(1<<(32-p.Bits()), 10)))
	case p.Addr().Is6() && p.Bits() < 48:
		notes = append(notes, notef("a range of 2^%s addresses: every host in it would be acted on", strconv.Itoa(128-p.Bits())))
	}
	return notes
}

// locationOf turns an ISO 3166-1 alpha-2 country into a target's location.
func locationOf(country string) (loc, cc string) {
	cc = strings.ToUpper(strings.TrimSpace(country))
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return "unknown", ""
	}
	if cc == "JP" {
		return "domestic", cc
	}
	return "abroad", cc
}
