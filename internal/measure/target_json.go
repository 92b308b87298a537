package measure

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends t as encoding/json writes it (field order, omitempty, and its escaping of
// HTML characters, U+2028, U+2029 and invalid UTF-8), without reflection: the seal hashes
// every target of a version, 700,000 of them for a botnet, and at that size json.Marshal was
// most of the time a seal check took. FuzzTargetJSON holds the two together.
func (t Target) AppendJSON(b []byte) []byte {
	b = append(b, `{"kind":`...)
	b = appendJSONString(b, t.Kind)
	b = append(b, `,"value":`...)
	b = appendJSONString(b, t.Value)
	if t.Port != 0 {
		b = append(b, `,"port":`...)
		b = strconv.AppendInt(b, int64(t.Port), 10)
	}
	b = append(b, `,"location":`...)
	b = appendJSONString(b, t.Location)
	for _, f := range [...]struct{ k, v string }{{"country", t.Country}, {"role", t.Role}, {"ownership", t.Ownership},
		{"hosting_provider", t.HostingProvider}, {"registrar", t.Registrar}, {"source", t.Source}} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.k...)
			b = append(b, `":`...)
			b = appendJSONString(b, f.v)
		}
	}
	return append(b, '}')
}

// appendJSONString writes s as encoding/json's default encoder does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
