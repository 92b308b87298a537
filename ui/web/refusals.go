package web

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
)

// The service's refusal messages are English: they are the API's contract and what the audit
// log records. A Japanese page says them in Japanese from the catalogue in refusals_ja.go, keyed
// by the English format as written at the source; TestEveryRefusalHasJapanese keeps it complete.
// A message is matched against the formats (most specific first) and its arguments are put into
// the Japanese format, each argument itself said in Japanese when it is a catalogued message,
// a stage, an operation or a role.

// wording is one catalogued message: its English format as a pattern, and its Japanese format
// with %s (or %[n]s) for each argument in the English order.
type wording struct {
	english *regexp.Regexp
	literal int       // bytes of the format that are not arguments: more is more specific
	say     [2]string // the format in Japanese and in English, arguments as %s
	// ordinal marks the arguments that are a list's index (steps[%d]) or a byte's offset (at
	// byte %d): counted from 0 in English, said from 1 in Japanese (実施記録1番目 is the first
	// step, 1バイト目 the first byte).
	ordinal []bool
}

// verb matches a fmt verb with its flags, index, width and precision.
var verb = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?[a-zA-Z%]`)

var wordings = compileWordings(refusalsJa)

// fieldPrefix is a field error's JSON path before its message (targets[2].value: …).
var fieldPrefix = regexp.MustCompile(`^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.+)$`)

func compileWordings(cat map[string]string) []wording {
	ws := make([]wording, 0, len(cat))
	for en, ja := range cat {
		var re strings.Builder
		re.WriteString(`^(?s)`)
		literal, last := 0, 0
		var ordinal []bool
		for _, m := range verb.FindAllStringIndex(en, -1) {
			re.WriteString(regexp.QuoteMeta(en[last:m[0]]))
			literal += m[0] - last
			if en[m[0]:m[1]] == "%%" {
				re.WriteString("%")
			} else {
				re.WriteString(`(.+?)`)
				index := m[0] > 0 && en[m[0]-1] == '[' && m[1] < len(en) && en[m[1]] == ']'
				offset := strings.HasSuffix(en[:m[0]], "byte ")
				ordinal = append(ordinal, en[m[0]:m[1]] == "%d" && (index || offset))
			}
			last = m[1]
		}
		re.WriteString(regexp.QuoteMeta(en[last:]) + `$`)
		literal += len(en) - last
		en := verb.ReplaceAllStringFunc(en, func(v string) string { return cmp.Or(map[string]string{"%%": "%%"}[v], "%s") })
		ws = append(ws, wording{english: regexp.MustCompile(re.String()), literal: literal, say: [2]string{ja, en}, ordinal: ordinal})
	}
	slices.SortFunc(ws, func(a, b wording) int {
		return cmp.Or(b.literal-a.literal, strings.Compare(a.english.String(), b.english.String()))
	})
	return ws
}

// say says a message of the service in lang: in Japanese from the catalogue, in English as
// written, each with stages, operations and roles in words. ok is false when the message is
// not in the catalogue (a message from a library, or one added without its Japanese).
func say(lang, msg string) (string, bool) {
	// Several messages joined, as a form's bad lines are: each is said apart when each can be.
	if parts := strings.Split(msg, "; "); len(parts) > 1 {
		said := make([]string, len(parts))
		all := true
		for i, p := range parts {
			var ok bool
			said[i], ok = sayOne(lang, p, 0)
			all = all && ok
		}
		if all {
			return strings.Join(said, pick(lang, "。", "; ")), true
		}
	}
	return sayOne(lang, msg, 0)
}

// sayOne says one message. Where several formats match (a format's argument may hold another
// message), the reading that explains the most of the message as known words wins.
func sayOne(lang, msg string, depth int) (string, bool) {
	said, known := sayKnown(lang, msg, depth)
	return said, known > 0
}

// sayKnown says msg and counts the bytes of it that were known words (0: no format matched).
func sayKnown(lang, msg string, depth int) (string, int) {
	if depth > 3 {
		return msg, 0
	}
	best, bestKnown := msg, 0
	for _, w := range wordings {
		m := w.english.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		known := w.literal
		args := make([]any, len(m)-1)
		for i, a := range m[1:] {
			if n, err := strconv.Atoi(a); err == nil && lang == Japanese && i < len(w.ordinal) && w.ordinal[i] {
				args[i], known = strconv.Itoa(n+1), known+len(a)
				continue
			}
			var k int
			args[i], k = argIn(lang, a, depth)
			known += k
		}
		if known > bestKnown {
			best, bestKnown = fmt.Sprintf(pick(lang, w.say[0], w.say[1]), args...), known
		}
	}
	return best, bestKnown
}

// argIn says an argument in words when it is a message, a code, a list of codes or a
// duration, and counts the bytes of it that were known.
func argIn(lang, a string, depth int) (string, int) {
	if s, ok := codeWords(lang, a); ok {
		return s, len(a)
	}
	if d, err := time.ParseDuration(a); err == nil && d >= time.Minute {
		return duration(lang, d), len(a)
	}
	if strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]") && len(a) > 2 {
		items := strings.Fields(a[1 : len(a)-1])
		out := make([]string, len(items))
		known := 0
		for i, it := range items {
			if w, ok := codeWords(lang, it); ok {
				out[i], known = w, known+len(it)
			} else {
				out[i] = it
			}
		}
		return strings.Join(out, pick(lang, "、", ", ")), known
	}
	// A field error inside another message: its field in words, then its message.
	if m := fieldPrefix.FindStringSubmatch(a); m != nil {
		if s, k := sayKnown(lang, m[2], depth+1); k > 0 {
			if w := fieldWords(lang, m[1]); w != "" {
				return w + ": " + s, k + len(m[1]) + 2
			}
			return s, k
		}
	}
	return sayKnown(lang, a, depth+1)
}

// codeWords names a code a message carries in words: a stage, an operation or recorded
// action, a role, a decision or consultation, a statutory requirement, a plan's value.
func codeWords(lang, code string) (string, bool) {
	if _, ok := stageNames[measure.Stage(code)]; ok {
		return stageName(lang, measure.Stage(code)), true
	}
	if _, ok := opNames[authz.Op(code)]; ok {
		return opName(lang, authz.Op(code)), true
	}
	if _, ok := actionNames[code]; ok {
		return actionName(lang, code), true
	}
	if _, ok := valueNames["role:"+code]; ok {
		return val(lang, "role:"+code), true
	}
	if _, ok := valueNames[code]; ok {
		return val(lang, code), true
	}
	if _, ok := messages["req:"+code]; ok {
		return T(lang, "req:"+code), true
	}
	if slices.Contains(decisionWords, code) {
		return T(lang, code), true
	}
	return "", false
}

// decisionWords are the decisions, outcomes and consultations the messages catalogue names.
var decisionWords = []string{"approve", "return", "reject", "accepted", "impropriety", "complied", "not_complied", "foreign_ministry", "pm_order"}

// problemDetail is a refusal's message as the page shows it, said in the page's language
// without the field or rule the page names apart; english is set when it could not be said
// in Japanese and is shown as the service wrote it.
func problemDetail(lang string, e *refusal.Error) (detail string, english bool) {
	msg := e.Message
	for _, prefix := range []string{e.Field, e.Rule} {
		if prefix != "" {
			msg = strings.TrimPrefix(msg, prefix+": ")
		}
	}
	s, ok := say(lang, msg)
	if !ok {
		return e.Message, lang != English
	}
	return s, false
}

// pick is the Japanese or the English of a pair.
func pick(lang, ja, en string) string {
	if lang == English {
		return en
	}
	return ja
}

// entryReason is a timeline entry's reason as the page says it: a refusal's is the service's
// message, said in the page's language; anyone else's is their own words, shown as written.
func entryReason(lang string, r audit.Entry) string {
	if !strings.HasPrefix(r.Action, "refused.") {
		return r.Reason
	}
	rule, _ := r.Details["rule"].(string)
	e := &refusal.Error{Rule: rule, Message: r.Reason}
	if m := fieldPrefix.FindStringSubmatch(r.Reason); (rule == "invalid" || rule == "") && m != nil {
		// A field error: its field in words, then its message.
		e.Field = m[1]
		if said, english := problemDetail(lang, e); !english {
			if w := fieldWords(lang, m[1]); w != "" {
				return w + ": " + said
			}
			return said
		}
	}
	said, _ := problemDetail(lang, e)
	return said
}
