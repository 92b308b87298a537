package audit

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"

	"github.com/takedown/takedown/internal/measure"
)

// appendCanonical appends the RFC 8785 encoding of r. It writes the common shapes directly
// (strings, numbers, booleans, maps and slices of them), which is about ten times faster than
// encoding to JSON and transforming; anything else goes through json.Marshal and jcs.
func appendCanonical(b []byte, r *Record) ([]byte, error) {
	obj := []kv{{"action", r.Action}, {"actor", r.Actor}}
	if r.Case != "" {
		obj = append(obj, kv{"case", r.Case})
	}
	if len(r.Details) > 0 {
		obj = append(obj, kv{"details", r.Details})
	}
	if r.From != "" {
		obj = append(obj, kv{"from", r.From})
	}
	obj = append(obj, kv{"id", r.ID}, kv{"log", r.Log})
	if r.Measure != "" {
		obj = append(obj, kv{"measure", r.Measure})
	}
	obj = append(obj, kv{"policy_version", r.PolicyVersion})
	if r.Reason != "" {
		obj = append(obj, kv{"reason", r.Reason})
	}
	if r.Salt != "" {
		obj = append(obj, kv{"salt", r.Salt})
	}
	if r.To != "" {
		obj = append(obj, kv{"to", r.To})
	}
	obj = append(obj, kv{"ts", r.TS}, kv{"v", r.V})
	if r.Version != 0 {
		obj = append(obj, kv{"version", r.Version})
	}
	return appendObject(b, obj)
}

type kv struct {
	k string
	v any
}

// appendObject writes members already in canonical (UTF-16) key order.
func appendObject(b []byte, members []kv) ([]byte, error) {
	b = append(b, '{')
	var err error
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m.k)
		b = append(b, ':')
		if b, err = appendValue(b, m.v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		if !utf8.ValidString(x) {
			return appendSlow(b, v)
		}
		return appendString(b, x), nil
	case int:
		return appendInt(b, int64(x))
	case int64:
		return appendInt(b, x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.AppendInt(b, int64(x), 10), nil
		}
		return appendSlow(b, v)
	case time.Time:
		return appendString(b, x.Format(time.RFC3339Nano)), nil
	case Actor:
		roles := x.Roles
		if roles == nil {
			return appendObject(b, []kv{{"id", x.ID}, {"org", x.Org}, {"roles", nil}})
		}
		return appendObject(b, []kv{{"id", x.ID}, {"org", x.Org}, {"roles", roles}})
	case measure.Step:
		if y := x.At.Year(); y < 0 || y > 9999 || !utf8.ValidString(x.Action+x.Result+x.Target+x.Technique+x.Witness) {
			return appendSlow(b, v) // refused or replaced by encoding/json: let it decide
		}
		// A batch's steps are the log's most numerous values: written directly, as
		// encoding/json and jcs would write them (FuzzStepCanonical holds the two together).
		return appendObject(b, []kv{{"action", x.Action}, {"at", x.At}, {"result", x.Result},
			{"target", x.Target}, {"technique", x.Technique}, {"witness", x.Witness}})
	case []measure.Step:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, s); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, s); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		members := make([]kv, 0, len(x))
		for k, e := range x {
			if !utf8.ValidString(k) {
				return appendSlow(b, v)
			}
			members = append(members, kv{k, e})
		}
		slices.SortFunc(members, func(a, c kv) int { return compareUTF16(a.k, c.k) })
		return appendObject(b, members)
	}
	return appendSlow(b, v)
}

func appendInt(b []byte, n int64) ([]byte, error) {
	if n >= 1<<53 || n <= -(1<<53) {
		return appendSlow(b, n) // beyond exact doubles: let jcs decide its form
	}
	return strconv.AppendInt(b, n, 10), nil
}

// appendSlow encodes v with encoding/json and canonicalises it with jcs.
func appendSlow(b []byte, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	c, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("canonicalise %T: %w", v, err)
	}
	return append(b, c...), nil
}

// appendString writes s as RFC 8785 does: only '"', '\\' and control characters escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20:
			b = append(b, c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	return append(b, '"')
}

// compareUTF16 orders keys by their UTF-16 code units, as RFC 8785 section 3.2.3 requires.
func compareUTF16(a, b string) int {
	if isASCII(a) && isASCII(b) {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
