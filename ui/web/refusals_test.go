package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/refusal"
)

// refusalFormats reads the module's Go source and returns every message format a refusal can
// carry to a person, with where it is written: the formats of refusal.New and Hidden, of field
// errors, of authorization and stage refusals, and of the errors internal/measure's checks
// return into them. A format built by concatenation has %s where a value goes.
func refusalFormats(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	out := map[string]string{}
	// A message may be a package's string constant (refusal.StartupCheck): resolved once every
	// file has been read.
	consts, named := map[string]string{}, map[string]string{}
	add := func(n ast.Node, e ast.Expr) {
		if sel, ok := e.(*ast.SelectorExpr); ok {
			if pkg, ok := sel.X.(*ast.Ident); ok {
				named[pkg.Name+"."+sel.Sel.Name] = fset.Position(n.Pos()).String()
			}
			return
		}
		if s, ok := formatOf(e); ok && strings.ContainsAny(strings.ToLower(verb.ReplaceAllString(s, "")), "abcdefghijklmnopqrstuvwxyz") {
			out[s] = fset.Position(n.Pos()).String()
		}
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "scripts" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, "_templ.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		inMeasure := f.Name.Name == "measure"
		// The importer's reasons, notes and refusals are shown on the preview page.
		inIntel := f.Name.Name == "intel"
		var inError bool // in the Error method of a refusal of the workflow, its activities or the service
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.ValueSpec:
				for i, name := range x.Names {
					if i < len(x.Values) {
						if lit, ok := x.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[f.Name.Name+"."+name.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			case *ast.FuncDecl:
				inError = x.Recv != nil && x.Name.Name == "Error" && (f.Name.Name == "workflows" || f.Name.Name == "activities" || f.Name.Name == "service")
			case *ast.CallExpr:
				name := callName(x)
				switch {
				case name == "refusal.New" || (f.Name.Name == "refusal" && name == "New"), name == "fieldErr", name == "deny":
					if len(x.Args) > 1 {
						add(x, x.Args[1])
					}
				case name == "refusal.Hidden" || (f.Name.Name == "refusal" && name == "Hidden"):
					add(x, x.Args[0])
				case inMeasure && (name == "fmt.Errorf" || name == "errors.New"), inError && name == "fmt.Sprintf":
					add(x, x.Args[0])
				case inIntel && (name == "fmt.Errorf" || name == "notef" || name == "whyf" || name == "p.fail"):
					add(x, x.Args[0])
				case inIntel && (name == "errorf" || name == "perr") && len(x.Args) > 1:
					add(x, x.Args[1])
				case inIntel && name == "b.skip" && len(x.Args) > 2:
					add(x, x.Args[2])
				}
			case *ast.CompositeLit:
				switch typeName(x.Type) {
				case "FieldError", "Denied", "WrongStage", "Skip":
					for _, el := range x.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						switch kv.Key.(*ast.Ident).Name {
						case "Message", "Reason", "Why":
							add(x, kv.Value)
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, where := range named {
		if v, ok := consts[name]; ok {
			out[v] = where
		}
	}
	if len(out) < 150 {
		t.Fatalf("found %d refusal formats in the source; the reader has lost them", len(out))
	}
	return out
}

func callName(c *ast.CallExpr) string {
	switch fn := c.Fun.(type) {
	case *ast.SelectorExpr:
		if id, ok := fn.X.(*ast.Ident); ok {
			return id.Name + "." + fn.Sel.Name
		}
		return fn.Sel.Name
	case *ast.Ident:
		return fn.Name
	}
	return ""
}

func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.Ident:
		return t.Name
	}
	return ""
}

// formatOf is the format an expression writes: a string literal, a concatenation (values as
// %s) or the format of fmt.Sprintf or fmt.Errorf.
func formatOf(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		}
	case *ast.BinaryExpr:
		a, ok := formatOf(x.X)
		if !ok {
			a = "%s"
		}
		b, ok := formatOf(x.Y)
		if !ok {
			b = "%s"
		}
		return a + b, true
	case *ast.CallExpr:
		if n := callName(x); (n == "fmt.Sprintf" || n == "fmt.Errorf") && len(x.Args) > 0 {
			return formatOf(x.Args[0])
		}
	}
	return "", false
}

// TestEveryRefusalHasJapanese: every message a refusal can carry has its Japanese in the
// catalogue, with one argument for each of the English format's, and the catalogue holds
// nothing the source no longer says.
func TestEveryRefusalHasJapanese(t *testing.T) {
	formats := refusalFormats(t)
	for en, where := range formats {
		if _, ok := refusalsJa[en]; !ok {
			t.Errorf("%s: no Japanese for %q", where, en)
		}
	}
	for en, ja := range refusalsJa {
		if _, ok := formats[en]; !ok && !composed[en] {
			t.Errorf("the catalogue says %q, which the source no longer does", en)
		}
		n := 0
		for _, v := range verb.FindAllString(en, -1) {
			if v != "%%" {
				n++
			}
		}
		m := 0
		for _, v := range verb.FindAllString(ja, -1) {
			if v != "%s" && !strings.HasPrefix(v, "%[") {
				t.Errorf("%q: the Japanese uses %s; arguments arrive as text (%%s or %%[n]s)", ja, v)
			}
			m++
		}
		if n != m {
			t.Errorf("%q has %d arguments, its Japanese %q %d", en, n, ja, m)
		}
		if !allowedLatin(verb.ReplaceAllString(ja, "")) {
			t.Errorf("the Japanese %q has English words", ja)
		}
	}
}

// allowedLatin: codes and protocol words a Japanese message names as they are.
func allowedLatin(ja string) bool {
	return !strings.ContainsAny(withoutAllowed(ja), "abcdefghijklmnopqrstuvwxyz")
}

// withoutAllowed is ja without the codes and protocol words it may name as they are.
func withoutAllowed(ja string) string {
	words := []string{"Authorization: Bearer <token>", "POST /api/v1/tokens", "/api/v1/openapi.json", "Idempotency-Key",
		"pcap", "malware_sample", "log", "report", "http", "https", "ftp", "ID", "JSON", "CSV", "UTF-8", "RFC 3339", "ISO 3166-1",
		"JP", "sha256", "xn--", "A-label", "IDN", "CIDR", "IP", "AS", "create_org", "create_user", "valid_from", "valid_until",
		"agency", "commission", "npa", "prefectural", "success", "failure", "partial", "allow", "deny", "admin", "auditor",
		"role", "op", "target", "technique", "action", "result", "witness", "at", "means", "outcome", "reason", "addressee", "status",
		"v2", "14d", "72h", "1d12h", "336h", "true", "false", "Punycode", "-oidc-issuer", "GET", "OpenID", "MiB", "AS1", "AS4294967295",
		"takedown login -sso", "http://127.0.0.1:PORT/PATH", "http://[::1]:PORT/PATH", "base64url", "X25519", "cli", "key", "state", "sign", "webauthn", "ssh", "SSH", "CLI",
		"STIX", "MISP", "RFC", "stix", "misp", "to_ids", "dst_ref", "valid_until", "bundle--", "bundle", "type--uuid", "uuid", "ip-src",
		"targets_sha256", "Event", "type", "WITHIN", "SECONDS", "REPEATS", "TIMES", "START", "STOP", "NOT", "IN", "ISSUBSET",
		"ipv4-addr:value", "t'…'", "name@example.go.jp", "UUID", "NAT64", "IETF", "2^", "apt-get install chromium", "Chromium", "PDF", "HTML", "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:RED", "TLP", "white", "clear", "green", "amber", "red"}
	slices.SortFunc(words, func(a, b string) int { return len(b) - len(a) }) // https before http
	for _, w := range words {
		ja = strings.ReplaceAll(ja, w, "")
	}
	return ja
}

// TestRefusalsSaidInJapanese: messages as the service sends them, said on a Japanese page.
func TestRefusalsSaidInJapanese(t *testing.T) {
	for _, tc := range []struct {
		e        refusal.Error
		want, en string // en: as the English page says it, when it differs from the message
	}{
		{refusal.Error{Code: refusal.WrongStage, Message: "vote is not possible in stage LEGAL_REVIEW (allowed in [COMMISSION_REVIEW])"},
			"採決は法務審査中の段階ではできません(できる段階: 委員会審議中)",
			"Vote is not possible in stage legal review (allowed in before the Commission)"},
		{refusal.Error{Code: refusal.Forbidden, Rule: "SoD-3", Message: "SoD-3: u-member2 declared a conflict on this request and is recused"},
			"u-member2 はこの申請について利益相反を申告しており、回避しています",
			"u-member2 declared a conflict on this request and is recused"},
		{refusal.Error{Code: refusal.Invalid, Field: "targets[0].value", Message: `targets[0].value: "10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)`},
			"\"10.0.0.1/8\" にはホスト部のビットが立っています(10.0.0.0/8 のことですか?)",
			`"10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)`},
		{refusal.Error{Code: refusal.Invalid, Field: "targets", Message: `line 2 (x y): "x y" is not an IP address; line 3 (10.0.0.1/33): "10.0.0.1/33" is not a CIDR prefix`},
			"2行目 (x y): \"x y\" はIPアドレスではありません。3行目 (10.0.0.1/33): \"10.0.0.1/33\" はCIDRプレフィックスではありません",
			`line 2 (x y): "x y" is not an IP address; line 3 (10.0.0.1/33): "10.0.0.1/33" is not a CIDR prefix`},
		{refusal.Error{Code: refusal.Invalid, Field: "targets", Message: `targets: line 2 (bad!!,domestic): value: "bad!!" is not a domain name: needs at least two labels`},
			"2行目 (bad!!,domestic): 値: \"bad!!\" はドメイン名ではありません: ラベルが2つ以上必要です",
			`line 2 (bad!!,domestic): Value: "bad!!" is not a domain name: needs at least two labels`},
		{refusal.Error{Code: refusal.Invalid, Field: "title", Message: "title: holds the control character U+0007 at byte 7"},
			"8番目のバイトに制御文字 U+0007 が含まれています", "holds the control character U+0007 at byte 7"},
		{refusal.Error{Code: refusal.Forbidden, Rule: "role", Message: "role: legal_review needs one of the roles [legal commander] (policy v1)"},
			"法務審査 には次のいずれかの役割が必要です: 法務審査官、指揮官(ポリシーv1)", "Legal review needs one of the roles legal reviewer, commander (policy v1)"},
		{refusal.Error{Code: refusal.WrongStage, Message: "targets.removed is only possible in stage DRAFT; the measure is LEGAL_REVIEW"},
			"対象の削除は起案中の段階でだけできます。この措置は法務審査中です", "targets removed is only possible in stage draft; the measure is legal review"},
		{refusal.Error{Code: refusal.Invalid, Field: "decision", Message: "decision: must be one of [approve return]"},
			"次のいずれかです: 承認、差戻し", "must be one of approve, return for changes"},
		{refusal.Error{Code: refusal.Invalid, Field: "checklist", Message: "checklist: an approval confirms every statutory requirement; harmful_telecommunication is not confirmed"},
			"承認には法定の要件すべての確認が必要です。加害関係電気通信が認められる が確認されていません",
			"an approval confirms every statutory requirement; a harmful telecommunication is identified and evidenced is not confirmed"},
		{refusal.Error{Code: refusal.Forbidden, Rule: "scope", Message: "scope: steps[0].technique exploit is not the approved technique sinkhole"},
			"実施記録1番目の手法 exploit は承認された手法 sinkhole ではありません",
			"steps[0].technique exploit is not the approved technique sinkhole"},
		{refusal.Error{Code: refusal.TooMany, Message: "this account is locked after too many failed logins; try again in 14m0s"},
			"ログインの失敗が多すぎるためこのアカウントはロックされています。14分後にもう一度試してください",
			"this account is locked after too many failed logins; try again in 14 minutes"},
	} {
		got, english := problemDetail(Japanese, &tc.e)
		if english || got != tc.want {
			t.Errorf("%q\n said %q (english %v)\n want %q", tc.e.Message, got, english, tc.want)
		}
		if tc.en == "" {
			tc.en = tc.e.Message
		}
		if got, english := problemDetail(English, &tc.e); got != tc.en || english {
			t.Errorf("%q on an English page:\n said %q\n want %q", tc.e.Message, got, tc.en)
		}
	}
	// What is not catalogued stays English, marked so.
	e := refusal.Error{Code: refusal.Invalid, Message: "a message from a library"}
	if got, english := problemDetail(Japanese, &e); !english || got != e.Message {
		t.Errorf("an unknown message became %q (english %v)", got, english)
	}
}

// TestEveryCatalogueMessageIsSaid: each catalogued message, with arguments drawn from codes,
// numbers, quoted names and other messages, is said in Japanese with none of its English
// words left (another format never takes it over), and in English as it was sent.
func TestEveryCatalogueMessageIsSaid(t *testing.T) {
	var formats []string
	for en := range refusalsJa {
		formats = append(formats, en)
	}
	slices.Sort(formats)
	word := regexp.MustCompile(`[A-Za-z]{4,}`)
	rapid.Check(t, func(t *rapid.T) {
		en := rapid.SampledFrom(formats).Draw(t, "format")
		msg := verb.ReplaceAllStringFunc(en, func(v string) string {
			if v == "%%" {
				return "%"
			}
			return rapid.SampledFrom([]string{"42", `"x.example"`, "COMMISSION_REVIEW", "vote", "u-member2", "[LEGAL_REVIEW APPROVED]", "2026-12-06T09:00:00Z"}).Draw(t, "argument")
		})
		got, english := problemDetail(Japanese, &refusal.Error{Message: msg})
		if english {
			t.Fatalf("%q was not said in Japanese", msg)
		}
		rest := withoutAllowed(got)
		for _, w := range word.FindAllString(withoutAllowed(verb.ReplaceAllString(en, "")), -1) {
			if strings.Contains(rest, w) {
				t.Fatalf("%q said as %q keeps the English %q", msg, got, w)
			}
		}
		if got, english := problemDetail(English, &refusal.Error{Message: msg}); english || got == "" {
			t.Fatalf("%q on an English page: %q", msg, got)
		}
	})
}

// TestLanguageSwitchGoesBackOnlyHere: the language switch's "back" leads only to a path of this
// site, whatever tricks of the WHATWG URL parser it holds.
func TestLanguageSwitchGoesBackOnlyHere(t *testing.T) {
	for back, want := range map[string]string{
		"/measures/m-1":                 "/measures/m-1",
		"/measures?q=a%2Fb&page=2":      "/measures?q=a%2Fb&page=2",
		"/%2F%2Fevil.example/":          "/%2F%2Fevil.example/",
		"":                              "/",
		"//evil.example/":               "/",
		"/\\evil.example/":              "/",
		"\\\\evil.example/":             "/",
		"/\t/evil.example/":             "/",
		"/%09/evil.example/":            "/%09/evil.example/", // stays encoded: a path
		"/\n/evil.example/":             "/",
		"/\r\n/evil.example/":           "/",
		"https://evil.example/":         "/",
		"javascript:alert(1)":           "/",
		" /evil":                        "/",
		"/ /evil.example":               "/",
		"/\x00x":                        "/",
		"/\u0085x":                      "/\u0085x",
		"/\xffx":                        "/",
		"/" + strings.Repeat("a", 3000): "/",
	} {
		if got := localPath(back); got != want {
			t.Errorf("back %q: went to %q, want %q", back, got, want)
		}
	}
}

// TestTimelineSaysRefusalsInThePagesLanguage: a refusal in a measure's timeline is said in the
// page's language; a person's own reason is shown as they wrote it.
func TestTimelineSaysRefusalsInThePagesLanguage(t *testing.T) {
	refused := audit.Entry{Record: audit.Record{Action: "refused.submit", Reason: "submit is not possible in stage LEGAL_REVIEW (allowed in [DRAFT])"}}
	if got := entryReason(Japanese, refused); got != "提出は法務審査中の段階ではできません(できる段階: 起案中)" {
		t.Errorf("Japanese: %q", got)
	}
	if got := entryReason(English, refused); got != "Submit is not possible in stage legal review (allowed in draft)" {
		t.Errorf("English: %q", got)
	}
	byRule := audit.Entry{Record: audit.Record{Action: "refused.vote", Reason: "SoD-3: u-m2 declared a conflict on this request and is recused",
		Details: map[string]any{"rule": "SoD-3"}}}
	if got := entryReason(Japanese, byRule); got != "u-m2 はこの申請について利益相反を申告しており、回避しています" {
		t.Errorf("Japanese, by a rule: %q", got)
	}
	field := audit.Entry{Record: audit.Record{Action: "refused.legal_review", Details: map[string]any{"rule": "invalid"},
		Reason: "checklist: an approval confirms every statutory requirement; minimum_necessary is not confirmed"}}
	if got := entryReason(Japanese, field); strings.ContainsAny(got, "abcdefghijklmnopqrstuvwxyz") {
		t.Errorf("Japanese, a field error: %q", got)
	}
	noRule := audit.Entry{Record: audit.Record{Action: "refused.legal_review", Reason: "reason: is required"}}
	if got := entryReason(Japanese, noRule); strings.ContainsAny(got, "abcdefghijklmnopqrstuvwxyz") {
		t.Errorf("Japanese, a field error recorded without its rule: %q", got)
	}
	own := audit.Entry{Record: audit.Record{Action: "legal_review", Reason: "is not possible in stage — the officer's words"}}
	if got := entryReason(Japanese, own); got != own.Reason {
		t.Errorf("a person's reason became %q", got)
	}
}
