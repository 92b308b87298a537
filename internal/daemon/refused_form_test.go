package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/takedown/takedown/internal/testenv"
)

// TestRefusedFormsComeBack: a refused form sends its person to the form's own page, which
// shows what they typed and why it was refused, through a reload and the language switch;
// the same page reached afresh shows no old refusal. Nothing ends at an address that answers
// "Method Not Allowed".
func TestRefusedFormsComeBack(t *testing.T) {
	e := testenv.Shared(t)
	id := newDraft(t, e, "self_execute", domestic).ID
	hc := webSession(t, e, "officer")
	post := func(path string, form url.Values) string {
		t.Helper()
		resp, err := hc.PostForm(e.D.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "r=") {
			t.Fatalf("POST %s: %s to %q, want a redirect naming the refusal", path, resp.Status, loc)
		}
		return loc
	}
	check := func(loc string, typed ...string) {
		t.Helper()
		loc, _, _ = strings.Cut(loc, "#")
		for _, lang := range []string{"ja", "en", "ja"} {
			// The language switch goes back to the address it was given.
			resp, err := hc.Get(e.D.URL + "/lang?" + url.Values{"to": {lang}, "back": {loc}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if back := resp.Header.Get("Location"); back != loc {
				t.Fatalf("the language switch goes to %q, not back to %q", back, loc)
			}
			status, body := webGet(t, hc, e.D.URL+loc)
			if status < 400 || !strings.Contains(body, `class="error"`) {
				t.Fatalf("%s in %s: %d without the refusal", loc, lang, status)
			}
			for _, s := range typed {
				// "a|b": either, as each language says it.
				if !slices.ContainsFunc(strings.Split(s, "|"), func(s string) bool { return strings.Contains(body, s) }) {
					t.Fatalf("%s in %s lost %q:\n%s", loc, lang, s, body[strings.Index(body, `class="error"`):][:min(1500, len(body)-strings.Index(body, `class="error"`))])
				}
			}
		}
		bare, _, _ := strings.Cut(loc, "?")
		if _, body := webGet(t, hc, e.D.URL+bare); strings.Contains(body, `class="error"`) {
			t.Fatalf("%s reached afresh still shows the old refusal", bare)
		}
	}
	// A plan with a window no one can read.
	loc := post("/measures/"+id+"/plan", url.Values{"title": {"Neutralise the relay"}, "requested_window": {"soon"}, "necessity": {"typed necessity"}})
	check(loc, "typed necessity", "soon")
	// Target lines, one bad among good ones: each bad line named, nothing lost.
	loc = post("/measures/"+id+"/plan", url.Values{"title": {"t"}, "targets": {"192.0.2.1,domestic\nbad target!!,domestic\n198.51.100.9"}})
	check(loc, "bad target!!", "192.0.2.1", "198.51.100.9", "line 2 (bad target!!|2行目 (bad target!!")
	// A withdrawal without its reason.
	loc = post("/measures/"+id+"/act/withdraw", url.Values{"reason": {" "}})
	check(loc)
	// A case without a title; a measure for a case that does not exist.
	loc = post("/cases", url.Values{"summary": {"typed summary"}})
	check(loc, "typed summary")
	loc = post("/measures", url.Values{"case": {"c-nowhere"}, "title": {"typed title"}, "necessity": {"typed need"}})
	check(loc, "typed title", "typed need")
	// A case form over the size limit is refused as too large, not read as empty.
	loc = post("/cases", url.Values{"title": {"typed title"}, "summary": {strings.Repeat("s", 70000)}})
	check(loc, "request body is over the 65536-byte limit|リクエストの本文が上限の65536バイトを超えています")
	// A post to the plan without the plan's fields leaves the plan as it was.
	var before, after map[string]any
	if err := e.Users["officer"].Do(context.Background(), "GET", "/api/v1/measures/"+id, nil, &before); err != nil {
		t.Fatal(err)
	}
	loc = post("/measures/"+id+"/plan", url.Values{})
	check(loc)
	if err := e.Users["officer"].Do(context.Background(), "GET", "/api/v1/measures/"+id, nil, &after); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before["plan"]) != fmt.Sprint(after["plan"]) || before["plan"] == nil {
		t.Fatalf("an empty post changed the plan:\n%v\n%v", before["plan"], after["plan"])
	}
}
