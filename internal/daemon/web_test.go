package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// webSession logs a person in through the login form and returns a client holding the
// session cookie.
func webSession(t *testing.T, e *testenv.Env, username string) *http.Client {
	t.Helper()
	pw := ""
	for _, c := range e.D.Credentials {
		if c.Username == username {
			pw = c.Password
		}
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.PostForm(e.D.URL+"/login", url.Values{"username": {username}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("%s logs in: %s to %q", username, resp.Status, resp.Header.Get("Location"))
	}
	return hc
}

func webGet(t *testing.T, hc *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWebStranger: the pages' new reads as a careless or hostile visitor would try them: odd
// searches and pages, made-up log indexes and hashes, another organisation's measure by its
// address, an officer asking for the auditors' export. No answer is a 5xx, nothing leaks, and
// the refusals are audited.
func TestWebStranger(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	t.Run("unicode targets", func(t *testing.T) { unicodeTargets(t, e) })
	many := make([]map[string]any, 0, 250)
	for i := range 250 {
		many = append(many, map[string]any{"kind": "ip", "value": fmt.Sprintf("198.51.%d.%d", i/200, i%200+1), "location": "domestic"})
	}
	m := newDraft(t, e, "self_execute", append(domestic, many...))
	base := e.D.URL + "/measures/" + m.ID
	officer := webSession(t, e, "officer")

	for _, c := range []struct {
		path   string
		status int
		has    string
	}{
		{"", 200, "252"},
		{"?tq=198.51.1.", 200, "50 "},                  // 50 of the 250 match
		{"?tq=%00", 400, "q"},                          // a control character
		{"?tq=" + strings.Repeat("x", 5000), 400, "q"}, // over the bound
		{"?toff=-7", 200, "203.0.113.10"},              // a negative offset is the first page
		{"?toff=99999999", 200, ""},                    // past the end: an empty page
		{"?toff=abc&tq=%E2%80%AE", 200, ""},            // junk offset, a bidi override searched for
		{"/log/abc", 400, "index"},                     // not an index
		{"/log/-1", 404, ""},                           // never an entry
		{"/log/99999999999", 404, ""},                  // beyond the log
		{"/log/0", 404, ""},                            // an entry of another measure (the first ever)
		{"/edit", 200, "edit-plan-form"},               // the requester's own draft
		{"/nothing", 404, ""},                          // no such page
	} {
		status, body := webGet(t, officer, base+c.path)
		if status != c.status || !strings.Contains(body, c.has) {
			t.Errorf("GET %s: %d, want %d with %q", c.path, status, c.status, c.has)
		}
	}
	status, body := webGet(t, officer, base+"?tq=198.51.1.")
	if status != 200 {
		t.Errorf("the target search answers %d", status)
	}
	if !strings.Contains(body, `rel="next"`) && strings.Count(body, "<code>198.51.1.") != 50 {
		t.Errorf("the search lists %d targets", strings.Count(body, "<code>198.51.1."))
	}
	status, body = webGet(t, officer, base)
	rows := strings.Count(body, `<td><span data-code="ip">`) + strings.Count(body, `<td><span data-code="domain">`)
	if rows != 100 || !strings.Contains(body, `rel="next"`) {
		t.Errorf("the first targets page: %d rows, next link %v (%d)", rows, strings.Contains(body, `rel="next"`), status)
	}

	// Another organisation, an auditor's power, unknown evidence.
	pref := webSession(t, e, "executor-pref")
	for _, p := range []string{base, base + "/edit", base + "/log/1", "/evidence/" + strings.Repeat("0", 64), "/evidence/%00", "/audit/entry?index=1"} {
		u := p
		if strings.HasPrefix(p, "/") {
			u = e.D.URL + p
		}
		status, body := webGet(t, pref, u)
		if status != http.StatusNotFound && status != http.StatusForbidden && status != http.StatusBadRequest || strings.Contains(body, "203.0.113.10") {
			t.Errorf("another organisation's executor, GET %s: %d", p, status)
		}
	}
	resp, err := officer.PostForm(e.D.URL+"/audit/export", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") == "application/gzip" {
		t.Errorf("an officer exports the log: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	// Editing another person's draft is refused, the plan unchanged.
	other := webSession(t, e, "officer2")
	resp, err = other.PostForm(base+"/plan", url.Values{"title": {"taken over"}, "kind": {"self_execute"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another officer saves the plan: %s", resp.Status)
	} else if status, _ := webGet(t, other, base+strings.TrimPrefix(resp.Header.Get("Location"), "/measures/"+m.ID)); status < 400 || status >= 500 {
		t.Errorf("another officer is sent back to %s: %d", resp.Header.Get("Location"), status)
	}
	var got struct{ Plan struct{ Title string } }
	if err := e.Users["officer"].Do(ctx, "GET", "/api/v1/measures/"+m.ID, nil, &got); err != nil || got.Plan.Title == "taken over" {
		t.Fatalf("the plan after another officer's edit: %q (%v)", got.Plan.Title, err)
	}

	// Every refusal above is in the log with its rule.
	var refusals []string
	for range 50 {
		recs, err := e.Users["officer"].History(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		refusals = refusals[:0]
		for _, r := range recs {
			if strings.HasPrefix(r.Action, "refused.") {
				refusals = append(refusals, r.Action)
			}
		}
		if len(refusals) >= 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"refused.read.dossier", "refused.read.log_entry", "refused.plan.updated"} {
		found := false
		for _, r := range refusals {
			found = found || r == want
		}
		if !found {
			t.Errorf("no %s in the measure's history: %v", want, refusals)
		}
	}
}

// TestSecureBehindAProxy: with -public-url https://… (TLS ended by a proxy in front), cookies
// are Secure and pages send HSTS; without it, neither (a browser would drop a Secure cookie on
// plain http).
func TestSecureBehindAProxy(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	for _, public := range []string{"", "https://takedown.example.go.jp"} {
		e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) { c.PublicURL = public })
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Get(e.D.URL + "/lang?to=en&back=/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		secure := strings.Contains(strings.ToLower(resp.Header.Get("Set-Cookie")), "secure")
		hsts := resp.Header.Get("Strict-Transport-Security") != ""
		if resp, err = hc.Get(e.D.URL + "/login"); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		hsts = hsts || resp.Header.Get("Strict-Transport-Security") != ""
		if want := public != ""; secure != want || hsts != want {
			t.Errorf("public URL %q: Secure cookie %v, HSTS %v; want %v", public, secure, hsts, want)
		}
	}
}

// unicodeTargets: names typed in Unicode, as Japanese reports write them, are held as
// A-labels (the API answers them), shown in Unicode beside the A-label, and found by a search
// typed either way; what IDNA 2008 refuses is refused with the way out.
func unicodeTargets(t *testing.T, e *testenv.Env) {
	ctx := context.Background()
	m := newDraft(t, e, "self_execute", []map[string]any{
		{"kind": "domain", "value": "例え。jp", "location": "domestic", "role": "c2"},
		{"kind": "domain", "value": "аpple.example", "location": "abroad", "role": "c2"}, // a Cyrillic а
		{"kind": "url", "value": "https://例え.jp:8443/gate", "location": "domestic", "role": "c2"},
	})
	var api struct {
		Targets []struct{ Value string } `json:"targets"`
	}
	if err := e.Users["officer"].Do(ctx, "GET", "/api/v1/measures/"+m.ID+"/targets", nil, &api); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range api.Targets {
		got = append(got, tg.Value)
	}
	if want := "xn--r8jz45g.jp xn--pple-43d.example https://xn--r8jz45g.jp:8443/gate"; strings.Join(got, " ") != want {
		t.Fatalf("the API holds %q, want %q", got, want)
	}
	officer := webSession(t, e, "officer")
	base := e.D.URL + "/measures/" + m.ID
	status, body := webGet(t, officer, base)
	for _, want := range []string{"<code><bdi>例え.jp</bdi></code> <code class=\"a-label\">(xn--r8jz45g.jp)</code>", "<code><bdi>аpple.example</bdi></code> <code class=\"a-label\">(xn--pple-43d.example)</code>", "https://例え.jp:8443/gate"} {
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("the measure page (%d) does not show %s", status, want)
		}
	}
	for _, q := range []string{"例え", "xn--r8jz45g", "例え.jp"} {
		_, body := webGet(t, officer, base+"?tq="+url.QueryEscape(q))
		if !strings.Contains(body, "xn--r8jz45g.jp") || strings.Contains(body, "xn--pple-43d") {
			t.Errorf("searching %q does not find exactly the 例え.jp targets", q)
		}
	}
	_, err := e.Users["officer"].AddTargets(ctx, m.ID, []map[string]any{{"kind": "domain", "value": "😀.example", "location": "abroad", "role": "c2"}})
	if err == nil || !strings.Contains(err.Error(), "xn--") {
		t.Errorf("an emoji name: %v", err)
	}
	if _, err := e.Users["officer"].AddTargets(ctx, m.ID, []map[string]any{{"kind": "domain", "value": "xn--i-7iq.ws", "location": "abroad", "role": "c2"}}); err != nil {
		t.Errorf("an emoji name registered before IDNA 2008, as its A-label: %v", err)
	}
	// An A-label hiding a right-to-left override would show "elpmaxe" as "example" (a stranger's
	// finding); a name is removed as it was typed when added.
	_, err = e.Users["officer"].AddTargets(ctx, m.ID, []map[string]any{{"kind": "domain", "value": "xn--elpmaxe-z76c.jp", "location": "abroad", "role": "c2"}})
	if err == nil || !strings.Contains(err.Error(), "xn--") {
		t.Errorf("an A-label hiding U+202E: %v", err)
	}
	if err := e.Users["officer"].Do(ctx, "POST", "/api/v1/measures/"+m.ID+"/targets/remove", map[string]any{"values": []string{"例え。jp", "XN--PPLE-43D.EXAMPLE"}}, nil); err != nil {
		t.Errorf("removing targets as typed: %v", err)
	}
}

// TestStepSearchFindsUnicodeNames: the execution steps are searched as the targets are, a name
// typed in Unicode found under the A-label it is held as (a stranger found 例え in the target
// search and not in the step search).
func TestStepSearchFindsUnicodeNames(t *testing.T) {
	e := testenv.Shared(t)
	u := e.Users
	m := newDraft(t, e, "self_execute", append(slices.Clone(domestic), map[string]any{"kind": "domain", "value": "例え.jp", "location": "domestic", "role": "c2"}))
	reviewAndApprove(t, e, m.ID)
	mustAct(t, u["executor"], m.ID, "start_execution", nil, "EXECUTING")
	mustAct(t, u["executor"], m.ID, "log_steps", steps(e, time.Now(), "203.0.113.10", "xn--r8jz45g.jp"), "EXECUTING")
	officer := webSession(t, e, "officer")
	for _, q := range []string{"例え", "例え。jp", "XN--R8JZ45G"} {
		_, body := webGet(t, officer, e.D.URL+"/measures/"+m.ID+"?sq="+url.QueryEscape(q))
		steps := body[strings.Index(body, `id="steps"`)+1:]
		steps, _, _ = strings.Cut(steps, "<h2")
		if !strings.Contains(steps, "xn--r8jz45g.jp") || strings.Contains(steps, "203.0.113.10") {
			t.Errorf("searching the steps for %q does not find exactly the step on 例え.jp", q)
		}
	}
}
