package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestPageShowsWhatTheDigestCovers walks the sealed document a digest is computed over and
// requires every value in it on the measure's page, in both languages: a field added to the
// seal later cannot be left off the page a reviewer decides on.
func TestPageShowsWhatTheDigestCovers(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	caseID, err := u["officer"].CreateCase(ctx, "MirrorFace C2 <staging> & relays", "LODEINFO C2 used against a research institute")
	if err != nil {
		t.Fatal(err)
	}
	p := plan("order_administrator", e.IDs["executor"])
	p["self_execution_fallback"] = true
	p["urgent"] = true
	p["requested_window"] = "72h"
	p["data_handling"] = "captured traffic kept 90 days, then erased"
	p["emergency_justification"] = "exfiltration of research data under way"
	p["extra"] = map[string]any{"warrant_ref": "令和8年(む)第117号", "nodes": 4258}
	p["alternatives"] = []map[string]string{{"means": "ask the provider <abuse@example.net>", "outcome": "impossible", "reason": "provider is the attacker's"}}
	m, err := u["officer"].CreateMeasure(ctx, caseID, p)
	if err != nil {
		t.Fatal(err)
	}
	id := m.ID
	targets := []map[string]any{
		{"kind": "ip", "value": "203.0.113.10", "port": 8443, "location": "domestic", "country": "JP", "role": "c2",
			"ownership": "attacker_controlled", "hosting_provider": "Example Hosting KK", "registrar": "Example Registrar Inc"},
		{"kind": "domain", "value": "update.example-c2.jp", "location": "unknown", "role": "staging", "ownership": "compromised_third_party"},
	}
	if _, err := u["officer"].AddTargets(ctx, id, targets); err != nil {
		t.Fatal(err)
	}
	if _, err := u["officer"].AddEvidence(ctx, id, url.Values{"filename": {"beacon.pcap"}, "kind": {"pcap"}, "provenance": {"own_investigation"}},
		strings.NewReader("the beacon")); err != nil {
		t.Fatal(err)
	}
	// A return first, so the version decided on seals a review too.
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", map[string]any{"decision": "return", "reason": "state the provider's answer"}, "DRAFT")
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")

	var raw []byte
	if err := e.Owner.QueryRow(ctx, `SELECT body->'content' FROM measure_versions WHERE measure_id = $1 AND version = 2`, id).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var sealed any
	if err := json.Unmarshal(raw, &sealed); err != nil {
		t.Fatal(err)
	}
	leaves := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		case string:
			leaves[path] = x
		case float64:
			leaves[path] = fmt.Sprint(x)
		case bool:
			leaves[path] = fmt.Sprint(x)
		}
	}
	walk("", sealed)
	if len(leaves) < 25 {
		t.Fatalf("the sealed document has %d values; the walk is broken: %v", len(leaves), leaves)
	}
	hc := webSession(t, e, "legal")
	for _, lang := range []string{"ja", "en"} {
		req, _ := http.NewRequest("GET", e.D.URL+"/measures/"+id, nil)
		req.AddCookie(&http.Cookie{Name: "lang", Value: lang})
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := html.UnescapeString(string(body))
		if resp.StatusCode != 200 {
			t.Fatalf("%s page: %d", lang, resp.StatusCode)
		}
		for path, v := range leaves {
			// A value is on the page as text, or as the code or account a word on the page stands for.
			if !strings.Contains(page, v) && !strings.Contains(page, `data-code="`+v+`"`) && !strings.Contains(page, `data-id="`+v+`"`) {
				t.Errorf("%s page lacks %s = %q", lang, path, v)
			}
		}
		// Every field of every target, too (the seal holds their hash).
		for _, tg := range targets {
			for k, v := range tg {
				s := fmt.Sprint(v)
				if !strings.Contains(page, s) && !strings.Contains(page, `data-code="`+s+`"`) {
					t.Errorf("%s page lacks target %s = %q", lang, k, s)
				}
			}
		}
		for _, want := range []string{"MirrorFace C2 <staging> & relays", "LODEINFO C2 used against a research institute"} {
			if !strings.Contains(page, want) {
				t.Errorf("%s page lacks the case's %q", lang, want)
			}
		}
	}
}

// TestAlteredSealIsShownAndRefused: a sealed version edited in the database is not shown as
// what the digest covers, and no decision is taken on it.
func TestAlteredSealIsShownAndRefused(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	hc := webSession(t, e, "legal")
	if _, body := webGet(t, hc, e.D.URL+"/measures/"+id); strings.Contains(body, `id="seal-broken"`) || !strings.Contains(body, `id="act-legal_review"`) {
		t.Fatalf("an intact seal is shown as broken, or offers no review")
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE measure_versions SET body = jsonb_set(body, '{content,plan,necessity}', '"TAMPERED"') WHERE measure_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	_, body := webGet(t, hc, e.D.URL+"/measures/"+id)
	if !strings.Contains(body, `id="seal-broken"`) || strings.Contains(body, `id="act-legal_review"`) {
		t.Fatalf("an altered seal is shown as sealed, or a review is offered on it")
	}
	_, err := u["legal"].Act(ctx, id, "legal_review", legalApproval)
	refusedWith(t, err, 409, "")
	if m, _ := u["legal"].Measure(ctx, id); m.Stage != "LEGAL_REVIEW" {
		t.Fatalf("a review on an altered seal moved the measure to %s", m.Stage)
	}
}

// TestSwappedTargetRowIsShownAsBroken: a sealed version's target rewritten in SQL is not
// listed as what the digest covers: the page says the seal is broken and offers no decision;
// put back, the page is whole again.
func TestSwappedTargetRowIsShownAsBroken(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	hc := webSession(t, e, "legal")
	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '198.18.0.66' WHERE measure_id = $1 AND value = '203.0.113.10'`, id); err != nil {
		t.Fatal(err)
	}
	_, body := webGet(t, hc, e.D.URL+"/measures/"+id)
	if !strings.Contains(body, `id="seal-broken"`) || strings.Contains(body, `id="act-legal_review"`) {
		t.Fatalf("a swapped target is shown as sealed, or a review is offered on it")
	}
	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '203.0.113.10' WHERE measure_id = $1 AND value = '198.18.0.66'`, id); err != nil {
		t.Fatal(err)
	}
	if _, body := webGet(t, hc, e.D.URL+"/measures/"+id); strings.Contains(body, `id="seal-broken"`) || !strings.Contains(body, `id="act-legal_review"`) {
		t.Fatalf("the rows put back, the page still shows the seal broken or offers no review")
	}
}
