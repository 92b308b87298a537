package intel

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads STIX 2.1 patterns (STIX 2.1 part 9, "STIX Patterning"). No maintained Go
// implementation of the grammar could be had here (OASIS's validator is Python over ANTLR), so
// it is a small recursive-descent reader of the whole grammar written from the specification:
// observation expressions with AND, OR and FOLLOWEDBY, the WITHIN, REPEATS and START/STOP
// qualifiers, and comparison expressions with every operator and constant form. The importer
// then keeps only what names infrastructure; reading the rest exactly lets it say precisely
// why a pattern was not imported.

// comparison is one property test inside an observation: "ipv4-addr:value = '1.2.3.4'".
type comparison struct {
	Path   string   // object type, ':', then the property path as written, e.g. "network-traffic:dst_ref.value"
	Op     string   // = != < <= > >= IN LIKE MATCHES ISSUBSET ISSUPERSET EXISTS
	Not    bool     // the NOT form of the operator
	Values []string // string constants unquoted; numbers as written; others with their prefix (t'…')
	Kinds  []byte   // 's' string, 'n' number, 'o' other constant, per value
}

// conjunction is comparisons joined by AND: all must hold of one observed object.
type conjunction []comparison

// observation is one bracketed observation expression, written as alternatives (disjunctive
// normal form) of conjunctions.
type observation []conjunction

// Pattern limits: beyond these a pattern is refused rather than read.
const (
	maxPatternBytes = 64 << 10
	maxPatternDepth = 64
	// maxAlternatives bounds the disjunctive normal form of one observation: (a OR b) AND (c
	// OR d) … multiplies out.
	maxAlternatives = 4096
)

// PatternError says where a pattern could not be read.
type PatternError struct {
	Offset  int // in bytes, from the pattern's start
	Message string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("at character %d: %s", e.Offset+1, e.Message)
}

// parsePattern reads a STIX pattern into its observations; the operators between them (AND,
// OR, FOLLOWEDBY) and the qualifiers are checked and dropped: each observation names objects
// the indicator is about whichever way they combine.
func parsePattern(s string) ([]observation, error) {
	if len(s) > maxPatternBytes {
		return nil, perr(0, "the pattern is %d bytes; at most %d are read", len(s), maxPatternBytes)
	}
	if !utf8.ValidString(s) {
		return nil, perr(0, "the pattern is not valid UTF-8")
	}
	p := &patternParser{src: s}
	p.next()
	obs, err := p.observations(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.fail("unexpected %s after the pattern", p.tok)
	}
	return obs, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tString
	tNumber
	tConst // t'…', h'…', b'…'
	tPunct
	tBad
)

type token struct {
	kind tokKind
	text string // for tString the unquoted text
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of pattern"
	case tString:
		return strconv.Quote(clip(t.text, 40))
	}
	return strconv.Quote(clip(t.text, 40))
}

type patternParser struct {
	src string
	i   int
	tok token
	err error
}

func (p *patternParser) fail(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return perr(p.tok.pos, format, args...)
}

func perr(offset int, format string, args ...any) *PatternError {
	return &PatternError{Offset: offset, Message: fmt.Sprintf(format, args...)}
}

// next reads the next token into p.tok.
func (p *patternParser) next() {
	for p.i < len(p.src) {
		r, n := utf8.DecodeRuneInString(p.src[p.i:])
		if !unicode.IsSpace(r) {
			break
		}
		p.i += n
	}
	start := p.i
	if p.i >= len(p.src) {
		p.tok = token{kind: tEOF, pos: start}
		return
	}
	c := p.src[p.i]
	switch {
	case c == '\'':
		p.tok = p.quoted(start, start+1, tString)
	case (c == 't' || c == 'h' || c == 'b') && p.i+1 < len(p.src) && p.src[p.i+1] == '\'':
		tok := p.quoted(start, start+2, tConst)
		tok.text = string(c) + "'" + tok.text + "'"
		p.tok = tok
	case c == '-' || c == '+' || (c >= '0' && c <= '9'):
		j := p.i + 1
		for j < len(p.src) && (p.src[j] >= '0' && p.src[j] <= '9' || p.src[j] == '.' || p.src[j] == 'e' || p.src[j] == 'E') {
			j++
		}
		p.tok = token{kind: tNumber, text: p.src[p.i:j], pos: start}
		p.i = j
		if _, err := strconv.ParseFloat(p.tok.text, 64); err != nil {
			p.err = perr(start, "%q is not a number", p.tok.text)
			p.tok.kind = tBad
		}
	case isWordByte(c):
		j := p.i
		for j < len(p.src) && (isWordByte(p.src[j]) || p.src[j] == '-') {
			j++
		}
		p.tok = token{kind: tWord, text: p.src[p.i:j], pos: start}
		p.i = j
	case c == '!' || c == '<' || c == '>':
		if p.i+1 < len(p.src) && p.src[p.i+1] == '=' {
			p.tok = token{kind: tPunct, text: p.src[p.i : p.i+2], pos: start}
			p.i += 2
			return
		}
		if c == '!' {
			p.err = perr(start, "'!' must be followed by '='")
			p.tok = token{kind: tBad, text: "!", pos: start}
			p.i++
			return
		}
		p.tok = token{kind: tPunct, text: string(c), pos: start}
		p.i++
	case strings.IndexByte("[]():=,.*", c) >= 0:
		p.tok = token{kind: tPunct, text: string(c), pos: start}
		p.i++
	default:
		r, n := utf8.DecodeRuneInString(p.src[p.i:])
		p.err = perr(start, "unexpected character %q", r)
		p.tok = token{kind: tBad, text: string(r), pos: start}
		p.i += n
	}
}

func isWordByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// quoted reads a quoted string whose text starts at from; \' and \\ are its only escapes.
func (p *patternParser) quoted(start, from int, kind tokKind) token {
	var b strings.Builder
	for j := from; j < len(p.src); j++ {
		switch p.src[j] {
		case '\\':
			if j+1 < len(p.src) && (p.src[j+1] == '\'' || p.src[j+1] == '\\') {
				b.WriteByte(p.src[j+1])
				j++
				continue
			}
			p.err = perr(j, "a backslash in a string must escape ' or \\")
			p.i = len(p.src)
			return token{kind: tBad, pos: start}
		case '\'':
			p.i = j + 1
			return token{kind: kind, text: b.String(), pos: start}
		default:
			b.WriteByte(p.src[j])
		}
	}
	p.err = perr(start, "a string is not closed with '")
	p.i = len(p.src)
	return token{kind: tBad, pos: start}
}

func (p *patternParser) isWord(w string) bool { return p.tok.kind == tWord && p.tok.text == w }
func (p *patternParser) isPunct(s string) bool {
	return p.tok.kind == tPunct && p.tok.text == s
}

func (p *patternParser) expect(s string) error {
	if !p.isPunct(s) {
		return p.fail("expected %q, found %s", s, p.tok)
	}
	p.next()
	return nil
}

// observations: or-expressions joined by FOLLOWEDBY; or: and-expressions joined by OR; and:
// observation expressions joined by AND. All three keep every observation.
func (p *patternParser) observations(depth int) ([]observation, error) {
	if depth > maxPatternDepth {
		return nil, p.fail("parentheses nested deeper than %d", maxPatternDepth)
	}
	var all []observation
	for {
		obs, err := p.observation(depth)
		if err != nil {
			return nil, err
		}
		all = append(all, obs...)
		if p.isWord("AND") || p.isWord("OR") || p.isWord("FOLLOWEDBY") {
			p.next()
			continue
		}
		return all, nil
	}
}

// observation reads '[' comparisons ']' or '(' observations ')', then its qualifiers.
func (p *patternParser) observation(depth int) ([]observation, error) {
	var obs []observation
	switch {
	case p.isPunct("["):
		p.next()
		alts, err := p.comparisonOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expect("]"); err != nil {
			return nil, err
		}
		obs = []observation{alts}
	case p.isPunct("("):
		p.next()
		inner, err := p.observations(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		obs = inner
	default:
		return nil, p.fail("expected '[' or '(' to start an observation, found %s", p.tok)
	}
	return obs, p.qualifiers()
}

func (p *patternParser) qualifiers() error {
	for {
		switch {
		case p.isWord("WITHIN"):
			p.next()
			if p.tok.kind != tNumber {
				return p.fail("WITHIN needs a number of seconds, found %s", p.tok)
			}
			p.next()
			if !p.isWord("SECONDS") {
				return p.fail("expected SECONDS after WITHIN's number, found %s", p.tok)
			}
			p.next()
		case p.isWord("REPEATS"):
			p.next()
			if p.tok.kind != tNumber {
				return p.fail("REPEATS needs a count, found %s", p.tok)
			}
			p.next()
			if !p.isWord("TIMES") {
				return p.fail("expected TIMES after REPEATS's count, found %s", p.tok)
			}
			p.next()
		case p.isWord("START"):
			p.next()
			if p.tok.kind != tConst || !strings.HasPrefix(p.tok.text, "t'") {
				return p.fail("START needs a timestamp t'…', found %s", p.tok)
			}
			p.next()
			if !p.isWord("STOP") {
				return p.fail("expected STOP after START's timestamp, found %s", p.tok)
			}
			p.next()
			if p.tok.kind != tConst || !strings.HasPrefix(p.tok.text, "t'") {
				return p.fail("STOP needs a timestamp t'…', found %s", p.tok)
			}
			p.next()
		default:
			return nil
		}
	}
}

// comparisonOr reads comparison expressions joined by OR, as alternatives.
func (p *patternParser) comparisonOr(depth int) (observation, error) {
	var alts observation
	for {
		and, err := p.comparisonAnd(depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, and...)
		if len(alts) > maxAlternatives {
			return nil, p.fail("the observation has more than %d alternatives", maxAlternatives)
		}
		if !p.isWord("OR") {
			return alts, nil
		}
		p.next()
	}
}

// comparisonAnd reads tests joined by AND, multiplying out the alternatives of parenthesised
// ones.
func (p *patternParser) comparisonAnd(depth int) (observation, error) {
	acc := observation{conjunction{}}
	for {
		var term observation
		if p.isPunct("(") {
			if depth > maxPatternDepth {
				return nil, p.fail("parentheses nested deeper than %d", maxPatternDepth)
			}
			p.next()
			inner, err := p.comparisonOr(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			term = inner
		} else {
			c, err := p.test()
			if err != nil {
				return nil, err
			}
			term = observation{conjunction{c}}
		}
		if len(acc)*len(term) > maxAlternatives {
			return nil, p.fail("the observation has more than %d alternatives", maxAlternatives)
		}
		next := make(observation, 0, len(acc)*len(term))
		for _, a := range acc {
			for _, t := range term {
				next = append(next, append(append(conjunction{}, a...), t...))
			}
		}
		acc = next
		if !p.isWord("AND") {
			return acc, nil
		}
		p.next()
	}
}

// test reads one property test.
func (p *patternParser) test() (comparison, error) {
	var c comparison
	if p.isWord("EXISTS") {
		p.next()
		path, err := p.objectPath()
		if err != nil {
			return c, err
		}
		return comparison{Path: path, Op: "EXISTS"}, nil
	}
	path, err := p.objectPath()
	if err != nil {
		return c, err
	}
	c.Path = path
	if p.isWord("NOT") {
		c.Not = true
		p.next()
	}
	switch {
	case p.tok.kind == tPunct && (p.tok.text == "=" || p.tok.text == "!=" || p.tok.text == "<" || p.tok.text == "<=" || p.tok.text == ">" || p.tok.text == ">="):
		c.Op = p.tok.text
		p.next()
		if err := p.constant(&c); err != nil {
			return c, err
		}
	case p.isWord("IN"):
		c.Op = "IN"
		p.next()
		if err := p.expect("("); err != nil {
			return c, err
		}
		for {
			if err := p.constant(&c); err != nil {
				return c, err
			}
			if len(c.Values) > maxAlternatives {
				return c, p.fail("IN lists more than %d values", maxAlternatives)
			}
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
		if err := p.expect(")"); err != nil {
			return c, err
		}
	case p.isWord("LIKE") || p.isWord("MATCHES") || p.isWord("ISSUBSET") || p.isWord("ISSUPERSET"):
		c.Op = p.tok.text
		p.next()
		if p.tok.kind != tString {
			return c, p.fail("%s needs a string, found %s", c.Op, p.tok)
		}
		if err := p.constant(&c); err != nil {
			return c, err
		}
	default:
		return c, p.fail("expected a comparison operator after %s, found %s", path, p.tok)
	}
	return c, nil
}

func (p *patternParser) constant(c *comparison) error {
	switch p.tok.kind {
	case tString:
		c.Values, c.Kinds = append(c.Values, p.tok.text), append(c.Kinds, 's')
	case tNumber:
		c.Values, c.Kinds = append(c.Values, p.tok.text), append(c.Kinds, 'n')
	case tConst:
		c.Values, c.Kinds = append(c.Values, p.tok.text), append(c.Kinds, 'o')
	case tWord:
		if p.tok.text != "true" && p.tok.text != "false" {
			return p.fail("expected a constant, found %s", p.tok)
		}
		c.Values, c.Kinds = append(c.Values, p.tok.text), append(c.Kinds, 'o')
	default:
		return p.fail("expected a constant, found %s", p.tok)
	}
	p.next()
	return nil
}

// objectPath reads type ':' property ('.' property | '[' index ']')*, keeping it as written.
func (p *patternParser) objectPath() (string, error) {
	if p.tok.kind != tWord {
		return "", p.fail("expected an object path such as ipv4-addr:value, found %s", p.tok)
	}
	var b strings.Builder
	b.WriteString(p.tok.text)
	p.next()
	if !p.isPunct(":") {
		return "", p.fail("expected ':' after the object type %q", b.String())
	}
	b.WriteByte(':')
	p.next()
	if err := p.component(&b); err != nil {
		return "", err
	}
	for {
		switch {
		case p.isPunct("."):
			b.WriteByte('.')
			p.next()
			if err := p.component(&b); err != nil {
				return "", err
			}
		case p.isPunct("["):
			p.next()
			switch {
			case p.tok.kind == tNumber || p.isPunct("*"):
				b.WriteString("[" + p.tok.text + "]")
				p.next()
			default:
				return "", p.fail("expected an index or '*' in a list step, found %s", p.tok)
			}
			if err := p.expect("]"); err != nil {
				return "", err
			}
		default:
			return b.String(), nil
		}
	}
}

func (p *patternParser) component(b *strings.Builder) error {
	switch p.tok.kind {
	case tWord:
		b.WriteString(p.tok.text)
	case tString:
		b.WriteString("'" + p.tok.text + "'")
	default:
		return p.fail("expected a property name, found %s", p.tok)
	}
	p.next()
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
