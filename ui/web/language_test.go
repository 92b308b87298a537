package web

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/intel"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
)

// otherLanguageAllowed lists what a page may show in the other language: the language switch
// names the language it switches to, and TLP markings are English everywhere.
var otherLanguageAllowed = []string{"日本語", "English", "TLP"}

// fullDossier is a measure with something in every part of its page; what people typed is
// neutral (addresses, numbers) so that only the pages' own words are judged.
func fullDossier() measureView {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	idx := int64(7)
	plan := measure.Plan{Title: "203.0.113.10", LegalBasis: "police_duties_act_6_2", Kind: measure.OrderAdministrator, Technique: "disable_malware",
		Operations: []string{"203.0.113.10:8443"}, SelfExecutionFallback: true, RequestedWindow: measure.Duration(72 * time.Hour),
		Executors: []string{"u-ex"}, RollbackPlan: "-", DataHandling: "90", Alternatives: []measure.Alternative{{Means: "1", Outcome: "tried", Reason: "2"}},
		Necessity: "3", Proportionality: "4", Collateral: "5", NotificationPlan: "6", EmergencyJustify: "7", Urgent: true, Extra: map[string]any{"n": 1}}
	m := service.Measure{ID: "m-1", Case: "c-1", Stage: measure.CommissionReview, Version: 2, Digest: "sha256:ab", Requester: "u-off", Plan: plan,
		Facts: authz.Facts{Recused: []string{"u-m4"}}, Targets: 1, Evidence: 1, Approval: &measure.Approval{WindowStart: at, WindowEnd: at.Add(time.Hour)}}
	d := service.Dossier{Measure: m, Sealed: &service.Sealed{Measure: "m-1", Version: 2, Plan: plan, Targets: 1, TargetsSHA256: "ff", Foreign: true},
		Case:    service.Case{ID: "c-1", Title: "0x1", Summary: "2", Attribution: []byte(`{"actor":"APT10"}`)},
		Targets: []measure.Target{{Kind: "ip", Value: "203.0.113.10", Port: 443, Location: "abroad", Country: "NL", Role: "c2", Ownership: "attacker_controlled"}}, TargetsN: 1,
		Evidence:  []service.Evidence{{SHA256: "ee", Filename: "a.pcap", Kind: "pcap", Provenance: "own_investigation", TLP: "amber", Size: 3}},
		Decisions: []service.Decision{{Kind: "vote", Version: 1, By: "u-m1", Decision: "return", Reason: "8", At: at}, {Kind: "conflict", Version: 1, By: "u-m4", Decision: "recused", At: at}},
		Changes: &service.Diff{From: 1, FromDigest: "sha256:aa", To: 2, Returned: true, Versions: []int{1}, Fields: []service.FieldChange{{Field: "necessity", Old: "1", New: "3"}},
			Added: []measure.Target{{Value: "198.51.100.1", Location: "abroad"}}, AddedN: 1, EvidenceAdded: []service.Evidence{{Filename: "b.pcap", SHA256: "dd"}}},
		History: []audit.Entry{
			{Record: audit.Record{Actor: audit.Actor{ID: "u-m1"}, Action: "request_info", From: "COMMISSION_REVIEW", To: "INFO_REQUESTED", Reason: "9", TS: at}, Index: &idx},
			{Record: audit.Record{Actor: audit.Actor{ID: "u-off"}, Action: "respond_info", From: "INFO_REQUESTED", To: "COMMISSION_REVIEW", Details: map[string]any{"body": "10"}, TS: at}},
			{Record: audit.Record{Actor: audit.Actor{ID: "u-off"}, Action: "refused.vote", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW", TS: at}},
			{Record: audit.Record{Actor: audit.Actor{ID: "system"}, Action: "deadline.decision_overdue", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW", TS: at}},
		},
		People: map[string]service.Person{"u-off": {Name: "1", Org: "2"}, "u-ex": {Name: "3", Org: "4"}, "u-m1": {Name: "5", Org: "6"}},
		After: service.Aftermath{Order: &service.OrderRecord{Order: measure.Order{Addressee: "11", Content: "12", Deadline: at}, IssuedBy: "u-off", Outcome: "not_complied", At: at},
			Steps: []service.StepRecord{{Seq: 1, Executor: "u-ex", Witness: "u-ex", Target: "203.0.113.10", Technique: "disable_malware", Action: "13", Result: "success", At: at}}, StepsN: 1,
			Reports:       []service.ReportRecord{{Kind: "post_execution", Author: "u-ex", Body: "14", VerifiedBy: "u-off", At: at}},
			Notifications: []service.NotificationEntry{{Seq: 1, Addressee: "15", Status: "deferred", Reason: "16", RecordedBy: "u-off", At: at}}},
	}
	var ops []authz.Op
	for op := range forms {
		ops = append(ops, op)
	}
	return measureView{Dossier: d, Ops: ops}
}

// inLang is the view as a page in lang draws it.
func inLang(v measureView, lang string) measureView {
	v.Lang = lang
	return v
}

// exportable is the view an officer of the agency has of a closed measure: with its export.
func exportable(v measureView) measureView {
	v.Exportable = true
	return v
}

// TestPagesSpeakOneLanguage draws the pages in each language and fails on a word of the other
// language or a raw code shown as text: every word a person reads comes from the catalogue.
func TestPagesSpeakOneLanguage(t *testing.T) {
	cjk := regexp.MustCompile(`[\p{Han}\p{Hiragana}\p{Katakana}、。]+`)
	code := regexp.MustCompile(`\b[a-z]+(?:_[a-z]+)+\b|\b[A-Z]+_[A-Z_]+\b`)
	// The service's English detail of a refusal is marked as English on a Japanese page.
	tag := regexp.MustCompile(`(?s)<(script|style|code|pre)\b.*?</(script|style|code|pre)>|<span lang="en">.*?</span>|<[^>]*>`)
	var english []string // the catalogue's English that differs from its Japanese
	for _, m := range messages {
		if m[0] != m[1] && len(m[1]) > 3 && strings.Contains(m[1], " ") {
			english = append(english, m[1])
		}
	}
	for _, lang := range []string{Japanese, English} {
		p := page{Lang: lang, Title: "x", User: "u", Officer: true, Path: "/"}
		refusedBy := func(e refusal.Error) page {
			refused := p
			refused.Error, _ = (&Server{}).problemFor(lang, &e)
			return refused
		}
		pages := map[string]templ.Component{
			"measure": measurePage(p, inLang(fullDossier(), lang)),
			"closed":  measurePage(p, exportable(inLang(fullDossier(), lang))),
			"report": reportDoc(p, inLang(fullDossier(), lang), service.MeasureReport{Dossier: fullDossier().Dossier,
				TargetSummary: service.TargetSummary{Total: 2, ByKind: map[string]int{"ip": 1, "domain": 1}, ByLocation: map[string]int{"domestic": 2},
					ByRole: map[string]int{"c2": 2}, ByOwnership: map[string]int{"attacker_controlled": 2}, Imported: 1},
				StepSummary: service.StepSummary{Total: 2, ByResult: map[string]int{"success": 2}}, Checkpoint: "x\n1\n"}, ""),
			"notifications": notificationsPage(p, notificationsView{Prefs: service.NotificationPrefs{Email: "a@example.go.jp", Kinds: service.NoticeKinds},
				Secret: "whsec_x", Notices: []service.Notice{{ID: "n-1", Kind: service.NoticeEscalation, Measure: "m-1", Channel: "email", SentAt: &time.Time{}},
					{ID: "n-2", Kind: service.NoticeWaiting, Measure: "m-2", Channel: "webhook"}}}),
			"refused": measurePage(refusedBy(refusal.Error{Status: 400, Code: refusal.Invalid, Field: "plan.alternatives[0].reason",
				Message: "plan.alternatives[0].reason: is required"}), inLang(fullDossier(), lang)),
			"refused by a rule": measurePage(refusedBy(refusal.Error{Status: 403, Code: refusal.Forbidden, Rule: "SoD-3",
				Message: "SoD-3: u-member2 declared a conflict on this request and is recused"}), inLang(fullDossier(), lang)),
			"refused in its stage": measurePage(refusedBy(refusal.Error{Status: 409, Code: refusal.WrongStage,
				Message: "vote is not possible in stage LEGAL_REVIEW (allowed in [COMMISSION_REVIEW])"}), inLang(fullDossier(), lang)),
			"work": workPage(p, []service.WorkItem{{Measure: service.MeasureSummary{ID: "m-1", Title: "1", Stage: measure.CommissionReview}, Ops: []authz.Op{authz.OpVote},
				Deadline: time.Now(), Overdue: true}}, []stageCount{{Stage: measure.Draft, N: 1}}),
			"measures":   measuresPage(p, []service.MeasureSummary{{ID: "m-1", Title: "1", Stage: measure.Approved}}, search{}, "", ""),
			"cases":      casesPage(p, []service.Case{{ID: "c-1", Title: "1"}}, "", ""),
			"case":       casePage(p, service.Case{ID: "c-1", Title: "1", Summary: "2"}, []service.MeasureSummary{{ID: "m-1", Stage: measure.Draft}}, true),
			"new case":   newCasePage(p, "", ""),
			"new":        newMeasurePage(p, "c-1", measure.Plan{}, "", ""),
			"login":      loginPage(p, true),
			"enrol":      enrolPage(p, ""),
			"statistics": statsPage(p, service.Statistics{Year: 2026, Stages: []service.StageTime{{Stage: measure.CommissionReview, N: 2, Median: 90 * time.Minute, P90: 49 * time.Hour}}}),
			"audit":      auditPage(p, service.LogStatus{Checkpoint: "x", Keys: []string{"k"}}, true),
			"admin":      adminPage(p, adminView{Admin: true}),
		}
		// The import preview of the shared MISP event and of a bundle with every kind of note.
		for name, file := range map[string]string{"misp import": "misp/sednit-event.json", "stix import": "stix/infrastructure.json"} {
			data, err := os.ReadFile(filepath.Join("..", "..", "internal", "intel", "testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			ip, err := intel.Parse("", data, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			v := importView{ImportPreview: service.ImportPreview{ID: "imp-1", Measure: "m-1", Preview: *ip, Counts: service.ImportCounts{Targets: len(ip.Targets)}}}
			for _, sk := range ip.Skipped {
				v.SkippedBy = append(v.SkippedBy, service.ReasonCount{Type: sk.Type, Reason: sk.Reason, Count: 1})
			}
			pages[name] = importPage(p, v)
			if lang == Japanese { // every reason and note is said in Japanese
				var b bytes.Buffer
				_ = importPage(p, v).Render(context.Background(), &b)
				for _, sk := range ip.Skipped {
					if strings.Contains(b.String(), sk.Reason) {
						t.Errorf("the Japanese %s page gives a reason in English: %q", name, sk.Reason)
					}
				}
				for _, c := range ip.Targets {
					for _, n := range c.Notes {
						if strings.Contains(b.String(), n) {
							t.Errorf("the Japanese %s page gives a note in English: %q", name, n)
						}
					}
				}
			}
		}
		for name, c := range pages {
			var b bytes.Buffer
			if err := c.Render(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			if lang == Japanese && strings.Contains(b.String(), `<span lang="en">`) {
				t.Errorf("the Japanese %s page holds English it could not say in Japanese", name)
			}
			text := tag.ReplaceAllString(b.String(), " ")
			for _, ok := range otherLanguageAllowed {
				text = strings.ReplaceAll(text, ok, " ")
			}
			if lang == English {
				if w := cjk.FindAllString(text, 5); len(w) > 0 {
					t.Errorf("the English %s page shows Japanese: %q", name, w)
				}
			} else {
				for _, e := range english {
					if strings.Contains(text, e) {
						t.Errorf("the Japanese %s page shows English: %q", name, e)
					}
				}
			}
			if w := code.FindAllString(text, 5); len(w) > 0 {
				t.Errorf("the %s %s page shows codes as words: %q", lang, name, w)
			}
		}
	}
}

// Every refusal code and every input a refusal may name has its words.
func TestRefusalWordsExist(t *testing.T) {
	for _, code := range []string{refusal.Invalid, refusal.Unauthenticated, refusal.Forbidden, refusal.NotFound, refusal.WrongStage,
		refusal.Conflict, refusal.KeyReused, refusal.Stale, refusal.TooLarge, refusal.TooMany, refusal.Internal, refusal.Unavailable, refusal.Timeout} {
		if _, ok := messages["refusal:"+code]; !ok {
			t.Errorf("refusal %q has no words", code)
		}
	}
	for field, key := range inputNames {
		if _, ok := messages[key]; !ok {
			t.Errorf("field %q names message %q, which has no translation", field, key)
		}
	}
	if got := fieldWords(Japanese, "plan.alternatives[2].reason"); got != "理由" {
		t.Errorf("a nested field in words: %q", got)
	}
}

// TestEveryRecordedActionIsSaid: every action the service records or refuses under a name of
// its own (const action = "…", Refused(…, "…", …)) is said in words on a Japanese page; a
// stranger found 受け付けられませんでした: targets.import on a timeline.
func TestEveryRecordedActionIsSaid(t *testing.T) {
	named := regexp.MustCompile(`(?:const action = |\.Refused\([^\n]*?, )"([a-z_]+(?:\.[a-z_]+)*)"`)
	seen := map[string]bool{}
	err := filepath.WalkDir(filepath.Join("..", ".."), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range named.FindAllSubmatch(src, -1) {
			seen[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !seen["targets.import"] {
		t.Fatalf("the source scan finds nothing it should: %v", seen)
	}
	ascii := regexp.MustCompile(`[a-z]{3,}`)
	for action := range seen {
		if _, ok := messages["read:"+action]; ok {
			action = "read." + action // recorded as a read of it
		}
		for _, a := range []string{action, "refused." + action} {
			if said := actionName(Japanese, a); ascii.MatchString(said) {
				t.Errorf("%s is said %q on a Japanese page", a, said)
			}
		}
	}
}
