package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf8"
)

// A million-record archive spends most of its verification decoding JSON, and nearly every
// record in it is in the form the log writes: RFC 8785, so no whitespace, keys in order,
// strings rarely escaped. The decoder below reads exactly that form and gives up on anything
// else (whitespace, an unknown, repeated or misplaced key, a number that is not a
// plain integer), leaving the record to encoding/json. It never decides a record is invalid
// on its own, so the two cannot disagree about what an archive holds; FuzzDecode checks that
// whatever the fast path accepts, encoding/json accepts and decodes the same way.

// decoder reads records on one goroutine. It interns the values that repeat across records
// (actors, roles, actions, measures), so a large archive holds each once.
type decoder struct {
	b             []byte
	i             int
	str           map[string]string
	roles         map[string][]string
	recent        [512]string
	file          []byte   // the entry bundle being read
	entries       [][]byte // and its entries
	companionFile []byte   // the companion being read
	// once holds, while a companion is read, d.b as a string: its values (a botnet's
	// targets, each read once) are substrings of it, not copies; hint is how many its list
	// may hold
	once string
	hint int
}

// internLimit bounds each intern table; past it, values are copied as they come.
const internLimit = 1 << 16

// maxDepth bounds nesting in details on the fast path; deeper documents go to encoding/json.
const maxDepth = 64

func newDecoder() *decoder {
	return &decoder{str: map[string]string{}, roles: map[string][]string{}}
}

// decode reads raw into r, on the fast path when it can.
func (d *decoder) decode(raw []byte, r *entry) error {
	if d.record(raw, r) {
		return nil
	}
	*r = entry{Index: r.Index}
	return r.decodeSlow(raw)
}

// wantDetails says whether the replay reads a record's details; other records' details are
// only checked to be JSON. Any record personally signed (an administrator's approval among
// them) is read, for its signature.
func wantDetails(action string, details []byte) bool {
	return needsDetails[action] || bytes.Contains(details, []byte(`"new_version"`)) || bytes.Contains(details, []byte(`"signature"`))
}

// decodeSlow reads any JSON form of a record with encoding/json.
func (r *entry) decodeSlow(raw []byte) error {
	var x struct {
		Record
		Details json.RawMessage `json:"details,omitempty"`
	}
	if err := json.Unmarshal(raw, &x); err != nil {
		return err
	}
	r.TS, r.Actor, r.Action, r.Measure, r.Version, r.From, r.To = x.TS, x.Actor, x.Action, x.Measure, x.Version, x.From, x.To
	r.V, r.salted, r.Policy = x.V, validSalt([]byte(x.Salt)), x.PolicyVersion
	if len(x.Details) > 0 && wantDetails(x.Action, x.Details) {
		var details map[string]any
		if err := json.Unmarshal(x.Details, &details); err != nil {
			return err
		}
		r.facts = factsOf(details)
		if r.facts.Signed != nil {
			r.Reason = x.Reason // the statement's; the fast path, which never meets a signature, skips it
		}
	}
	return nil
}

// recordKeys are a record's keys in canonical order, each with its quotes and colon.
var recordKeys = [...]string{`"action":`, `"actor":`, `"case":`, `"details":`, `"from":`, `"id":`, `"log":`, `"measure":`,
	`"policy_version":`, `"reason":`, `"salt":`, `"to":`, `"ts":`, `"v":`, `"version":`}

// record reads a canonical record into r: what the replay reads, with the facts of its
// details. The other fields are checked to be of their type and left. Keys are matched in
// canonical order, so one out of order, repeated or unknown ends the fast path.
func (d *decoder) record(raw []byte, r *entry) bool {
	d.b, d.i = raw, 0
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return d.i == len(d.b)
	}
	for k := 0; ; k++ {
		for k < len(recordKeys) && !bytes.HasPrefix(d.b[d.i:], []byte(recordKeys[k])) {
			k++
		}
		if k == len(recordKeys) {
			return false
		}
		d.i += len(recordKeys[k])
		var ok bool
		switch recordKeys[k] {
		case `"action":`:
			r.Action, ok = d.interned()
		case `"actor":`:
			ok = d.actor(&r.Actor)
		case `"policy_version":`:
			r.Policy, ok = d.interned()
		case `"case":`, `"id":`, `"log":`, `"reason":`:
			ok = d.peek('"') && d.skipString()
		case `"details":`:
			ok = d.details(r)
		case `"from":`:
			r.From, ok = d.interned()
		case `"measure":`:
			r.Measure, ok = d.interned()
		case `"to":`:
			r.To, ok = d.interned()
		case `"ts":`:
			var s []byte
			s, ok = d.plain()
			ok = ok && r.TS.UnmarshalText(s) == nil
		case `"salt":`:
			var s []byte
			s, ok = d.plain()
			r.salted = ok && validSalt(s)
		case `"v":`:
			r.V, ok = d.integer()
		case `"version":`:
			r.Version, ok = d.integer()
		}
		if !ok {
			return false
		}
		if d.next('}') {
			return d.i == len(d.b)
		}
		if !d.next(',') {
			return false
		}
	}
}

// details reads a record's details object: its facts when the replay reads them (the action
// comes first in canonical order), else only its validity.
func (d *decoder) details(x *entry) bool {
	if !d.peek('{') {
		return false
	}
	if needsDetails[x.Action] {
		return d.facts(&x.facts)
	}
	start := d.i
	if !d.skip(0) {
		return false
	}
	if span := d.b[start:d.i]; wantDetails(x.Action, span) {
		end := d.i
		d.i = start
		if !d.facts(&x.facts) || d.i != end {
			return false
		}
	}
	return true
}

func (d *decoder) actor(a *Actor) bool {
	return d.fields(func(key []byte) (ok bool) {
		switch string(key) {
		case "id":
			a.ID, ok = d.interned()
		case "org":
			a.Org, ok = d.interned()
		case "roles":
			a.Roles, ok = d.roleList()
		}
		return ok
	})
}

// roleList reads an array of plain strings. Equal lists share one slice, which nothing
// modifies.
func (d *decoder) roleList() ([]string, bool) {
	if d.literal("null") {
		return nil, true
	}
	start := d.i
	if !d.next('[') {
		return nil, false
	}
	if !d.next(']') {
		for {
			if _, ok := d.plain(); !ok {
				return nil, false
			}
			if d.next(']') {
				break
			}
			if !d.next(',') {
				return nil, false
			}
		}
	}
	span := d.b[start:d.i]
	if l, ok := d.roles[string(span)]; ok {
		return l, true
	}
	// The strings hold no quote, so the separators are exactly the `","` between them.
	list := []string{}
	if inner := span[1 : len(span)-1]; len(inner) > 0 {
		for _, s := range bytes.Split(inner[1:len(inner)-1], []byte(`","`)) {
			list = append(list, d.intern(s))
		}
	}
	if len(d.roles) < internLimit {
		d.roles[string(span)] = list
	}
	return list, true
}

func (d *decoder) next(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// plain reads a string holding no escape and no control character, in valid UTF-8: its
// bytes are its value.
func (d *decoder) plain() ([]byte, bool) {
	if !d.next('"') {
		return nil, false
	}
	start := d.i
	b := d.b
	i := scan(b, d.i)
	if i == len(b) || b[i] != '"' && b[i] < utf8.RuneSelf {
		d.i = i
		return nil, false // a backslash or a control character
	}
	if b[i] == '"' {
		d.i = i + 1
		return b[start:i], true
	}
	// Not ASCII: find the end, then check the encoding.
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' {
			d.i = i + 1
			return b[start:i], utf8.Valid(b[start:i])
		} else if c == '\\' || c < 0x20 {
			break
		}
	}
	d.i = i
	return nil, false
}

// scan returns the index of the first byte of b from i on that stops the fast scan of a
// string, or len(b). Eight bytes at a time: the record's ids, salt and hashes are most of it.
func scan(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^('"'*ones), x^('\\'*ones)
		// A high bit set where a byte is below 0x20, a quote, a backslash or not ASCII. The
		// lowest such bit is exact (a borrow only ever marks bytes above a true match), and
		// the byte loop below confirms it.
		m := (x-0x20*ones)&^x | (q-ones)&^q | (bs-ones)&^bs | x
		if m&highs != 0 {
			i += bits.TrailingZeros64(m&highs) / 8
			break
		}
	}
	for i < len(b) && !stops[b[i]] {
		i++
	}
	return i
}

// stops marks the bytes that end the fast scan of a string: the closing quote, a backslash,
// control characters and bytes outside ASCII.
var stops = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

func (d *decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	// Most values repeat the record before: a small direct-mapped cache answers those without
	// hashing the whole string.
	slot := (uint(len(b))*31 + uint(b[0])*7 + uint(b[len(b)/2])*3 + uint(b[len(b)-1])) % uint(len(d.recent))
	if s := d.recent[slot]; s == string(b) {
		return s
	}
	s, ok := d.str[string(b)]
	if !ok {
		s = string(b)
		if len(d.str) < internLimit {
			d.str[s] = s
		}
	}
	d.recent[slot] = s
	return s
}

func (d *decoder) interned() (string, bool) { return d.text(true) }

// text reads a string value. The rare string with an escape or invalid UTF-8 is unquoted by
// encoding/json, which then decides what it means.
func (d *decoder) text(intern bool) (string, bool) {
	start := d.i
	if b, ok := d.plain(); ok {
		if d.once != "" {
			at := cap(d.b) - cap(b) // b is d.b[at:at+len(b)]
			return d.once[at : at+len(b)], true
		}
		if intern {
			return d.intern(b), true
		}
		return string(b), true
	}
	d.i = start
	if !d.skipString() {
		return "", false
	}
	var s string
	if json.Unmarshal(d.b[start:d.i], &s) != nil {
		return "", false
	}
	return s, true
}

// integer reads a JSON number that is a plain integer of at most 15 digits.
func (d *decoder) integer() (int, bool) {
	neg := d.next('-')
	start, n := d.i, 0
	for ; d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9'; d.i++ {
		n = n*10 + int(d.b[d.i]-'0')
	}
	digits := d.i - start
	if digits == 0 || digits > 15 || (digits > 1 && d.b[start] == '0') {
		return 0, false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// skip passes over one JSON value, reporting false if it is not valid JSON without
// whitespace.
func (d *decoder) skip(depth int) bool {
	if d.i >= len(d.b) || depth > maxDepth {
		return false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		if d.next('}') {
			return true
		}
		for {
			if !d.skipString() || !d.next(':') || !d.skip(depth+1) {
				return false
			}
			if d.next('}') {
				return true
			}
			if !d.next(',') {
				return false
			}
		}
	case c == '[':
		d.i++
		if d.next(']') {
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			if d.next(']') {
				return true
			}
			if !d.next(',') {
				return false
			}
		}
	case c == '"':
		return d.skipString()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.skipNumber()
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return false
}

func (d *decoder) literal(s string) bool {
	if bytes.HasPrefix(d.b[d.i:], []byte(s)) {
		d.i += len(s)
		return true
	}
	return false
}

func (d *decoder) skipString() bool {
	if !d.next('"') {
		return false
	}
	for d.i < len(d.b) {
		c := d.b[d.i]
		d.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if d.i >= len(d.b) {
				return false
			}
			e := d.b[d.i]
			d.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if d.i+4 > len(d.b) {
					return false
				}
				for _, h := range d.b[d.i : d.i+4] {
					if !isHex(h) {
						return false
					}
				}
				d.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber passes over a number in JSON's grammar.
func (d *decoder) skipNumber() bool {
	d.next('-')
	if d.next('0') {
		// no further integer digits after a leading zero
	} else if !d.digits() {
		return false
	}
	if d.next('.') && !d.digits() {
		return false
	}
	if d.next('e') || d.next('E') {
		if !d.next('+') {
			d.next('-')
		}
		if !d.digits() {
			return false
		}
	}
	return true
}

func (d *decoder) digits() bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}
