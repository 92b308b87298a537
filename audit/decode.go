package audit

import (
	"bytes"
	"encoding/json"
	"strconv"
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
	b     []byte
	i     int
	str   map[string]string
	roles map[string][]string
}

// internLimit bounds each intern table; past it, values are copied as they come.
const internLimit = 1 << 16

// maxDepth bounds nesting in details on the fast path; deeper documents go to encoding/json.
const maxDepth = 64

func newDecoder() *decoder {
	return &decoder{str: map[string]string{}, roles: map[string][]string{}}
}

// decode reads raw into r, on the fast path when it can.
func (d *decoder) decode(raw []byte, r *Indexed) error {
	details, ok := d.record(raw, &r.Record)
	if !ok {
		r.Record = Record{}
		return r.decodeSlow(raw)
	}
	if details != nil && wantDetails(r.Action, details) {
		d.b, d.i = details, 0
		if v, ok := d.value(0); ok && d.i == len(d.b) {
			r.Record.Details = v.(map[string]any)
			return nil
		}
		return json.Unmarshal(details, &r.Record.Details)
	}
	return nil
}

// wantDetails says whether the replay reads a record's details; other records' details are
// left undecoded, which roughly halves the cost of verifying a large log.
func wantDetails(action string, details []byte) bool {
	return needsDetails[action] || bytes.Contains(details, []byte(`"new_version"`))
}

// decodeSlow reads any JSON form of a record with encoding/json.
func (r *Indexed) decodeSlow(raw []byte) error {
	var x struct {
		Record
		Details json.RawMessage `json:"details,omitempty"`
	}
	if err := json.Unmarshal(raw, &x); err != nil {
		return err
	}
	r.Record = x.Record
	if len(x.Details) > 0 && wantDetails(x.Action, x.Details) {
		return json.Unmarshal(x.Details, &r.Record.Details)
	}
	return nil
}

// record reads a canonical record into r and returns its details object, undecoded.
func (d *decoder) record(raw []byte, r *Record) (details []byte, ok bool) {
	d.b, d.i = raw, 0
	if !d.next('{') {
		return nil, false
	}
	var prev []byte
	if !d.next('}') {
		for {
			key, ok := d.plain()
			if !ok || (prev != nil && bytes.Compare(key, prev) <= 0) || !d.next(':') {
				return nil, false
			}
			prev = key
			switch string(key) {
			case "action":
				r.Action, ok = d.interned()
			case "actor":
				ok = d.actor(&r.Actor)
			case "case":
				r.Case, ok = d.interned()
			case "details":
				details, ok = d.object()
			case "from":
				r.From, ok = d.interned()
			case "id":
				r.ID, ok = d.copied()
			case "log":
				r.Log, ok = d.interned()
			case "measure":
				r.Measure, ok = d.interned()
			case "policy_version":
				r.PolicyVersion, ok = d.interned()
			case "reason":
				r.Reason, ok = d.copied()
			case "to":
				r.To, ok = d.interned()
			case "ts":
				var s []byte
				s, ok = d.plain()
				ok = ok && r.TS.UnmarshalText(s) == nil
			case "v":
				r.V, ok = d.integer()
			case "version":
				r.Version, ok = d.integer()
			default:
				return nil, false
			}
			if !ok {
				return nil, false
			}
			if d.next('}') {
				break
			}
			if !d.next(',') {
				return nil, false
			}
		}
	}
	return details, d.i == len(d.b)
}

func (d *decoder) actor(a *Actor) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	var prev []byte
	for {
		key, ok := d.plain()
		if !ok || (prev != nil && bytes.Compare(key, prev) <= 0) || !d.next(':') {
			return false
		}
		prev = key
		switch string(key) {
		case "id":
			a.ID, ok = d.interned()
		case "org":
			a.Org, ok = d.interned()
		case "roles":
			a.Roles, ok = d.roleList()
		default:
			return false
		}
		if !ok {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
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
	ascii := true
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (d *decoder) intern(b []byte) string {
	if s, ok := d.str[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.str) < internLimit {
		d.str[s] = s
	}
	return s
}

func (d *decoder) interned() (string, bool) { return d.text(true) }

func (d *decoder) copied() (string, bool) { return d.text(false) }

// text reads a string value. The rare string with an escape or invalid UTF-8 is unquoted by
// encoding/json, which then decides what it means.
func (d *decoder) text(intern bool) (string, bool) {
	start := d.i
	if b, ok := d.plain(); ok {
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

// object returns the span of a JSON object without whitespace, having checked it is valid.
func (d *decoder) object() ([]byte, bool) {
	start := d.i
	if d.i >= len(d.b) || d.b[d.i] != '{' || !d.skip(0) {
		return nil, false
	}
	return d.b[start:d.i], true
}

// value reads one JSON value, in valid JSON without whitespace, as encoding/json reads it into
// an any: objects as map[string]any, arrays as []any, numbers as float64.
func (d *decoder) value(depth int) (any, bool) {
	if d.i >= len(d.b) || depth > maxDepth {
		return nil, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		m := map[string]any{}
		if d.next('}') {
			return m, true
		}
		for {
			k, ok := d.text(true)
			if !ok || !d.next(':') {
				return nil, false
			}
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			m[k] = v // a repeated key keeps its last value, as in encoding/json
			if d.next('}') {
				return m, true
			}
			if !d.next(',') {
				return nil, false
			}
		}
	case c == '[':
		d.i++
		list := []any{}
		if d.next(']') {
			return list, true
		}
		for {
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			list = append(list, v)
			if d.next(']') {
				return list, true
			}
			if !d.next(',') {
				return nil, false
			}
		}
	case c == '"':
		return d.text(false)
	case c == '-' || (c >= '0' && c <= '9'):
		start := d.i
		if !d.skipNumber() {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(d.b[start:d.i]), 64)
		return f, err == nil
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, false
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
