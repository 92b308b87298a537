package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/intel"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

type importPreview struct {
	ID     string `json:"id"`
	Counts struct {
		Targets, Skipped, Attribution int
		InDraft                       int `json:"in_draft"`
	} `json:"counts"`
	Targets []struct {
		Target map[string]any `json:"target"`
		Notes  []string       `json:"notes"`
	} `json:"targets"`
	TargetsSHA256 string `json:"targets_sha256"`
	Source        struct {
		ID, Producer, TLP, SHA256 string
	} `json:"source"`
}

func sharedFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "internal", "intel", "testdata", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return data
}

func upload(c *client.Client, id, query string, data []byte) (importPreview, error) {
	var p importPreview
	err := c.Do(context.Background(), "POST", "/api/v1/measures/"+id+"/imports"+query, bytes.NewReader(data), &p)
	return p, err
}

// TestImportThreatIntel: an officer uploads a MISP event and a STIX bundle (the shared
// fixtures, unchanged) into a draft; the preview adds nothing; the confirmation adds exactly
// what was previewed, with each target's source and the attribution on the case; a preview
// made stale by an edit, a repeat, another agency, a submitted measure and hostile files are
// refused; the sealed version and the log verify.
func TestImportThreatIntel(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	d := newDraft(t, e, "self_execute", domestic)
	id := d.ID

	p, err := upload(u["officer"], id, "?name=sednit-event.json", sharedFixture(t, "misp/sednit-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Counts.Targets != 29 || p.Counts.Attribution != 14 || p.Source.Producer != "CIRCL" || p.Source.TLP != "TLP:WHITE" || len(p.TargetsSHA256) != 64 {
		t.Fatalf("MISP preview: %+v", p)
	}
	if m, _ := u["officer"].Measure(ctx, id); m.Targets != 2 {
		t.Fatalf("the preview added targets: %d", m.Targets)
	}
	// Nobody outside the agency learns the import exists; a careless confirmation is refused.
	err = u["executor-pref"].Do(ctx, "GET", "/api/v1/imports/"+p.ID, nil, nil)
	refusedWith(t, err, 404, "")
	err = u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{}, nil)
	refusedWith(t, err, 400, "")
	err = u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": strings.Repeat("0", 64)}, nil)
	refusedWith(t, err, 409, "")
	err = u["officer2"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": p.TargetsSHA256}, nil)
	refusedWith(t, err, 403, "requester")
	err = u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": p.TargetsSHA256}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": p.TargetsSHA256}, nil)
	refusedWith(t, err, 409, "")
	var ts struct {
		Targets []map[string]any `json:"targets"`
	}
	if err := u["officer"].Do(ctx, "GET", "/api/v1/measures/"+id+"/targets", nil, &ts); err != nil || len(ts.Targets) != 31 {
		t.Fatalf("after the MISP import: %d targets (%v)", len(ts.Targets), err)
	}
	if ts.Targets[2]["value"] != "movieultimate.com" || ts.Targets[2]["source"] != "misp:5a3c3045-ab0c-4d38-8efe-459002de0b81" {
		t.Fatalf("the first imported target: %v", ts.Targets[2])
	}
	var c struct {
		Attribution struct {
			Imported []intel.Attribution `json:"imported"`
		} `json:"attribution"`
	}
	if err := u["officer"].Do(ctx, "GET", "/api/v1/cases/"+d.Case, nil, &c); err != nil || len(c.Attribution.Imported) != 14 || c.Attribution.Imported[0].Name != "Sofacy" {
		t.Fatalf("the case's attribution: %+v (%v)", c.Attribution, err)
	}

	// A STIX bundle whose preview goes stale: a target it names is added by hand meanwhile.
	p, err = upload(u["officer"], id, "", sharedFixture(t, "stix/apt1.json"))
	if err != nil || p.Counts.Targets != 7 || p.Counts.Attribution != 22 {
		t.Fatalf("APT1 preview: %+v (%v)", p.Counts, err)
	}
	if _, err := u["officer"].AddTargets(ctx, id, []map[string]any{{"kind": "domain", "value": "hugesoft.org"}}); err != nil {
		t.Fatal(err)
	}
	err = u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": p.TargetsSHA256}, nil)
	refusedWith(t, err, 409, "")
	var again importPreview
	if err := u["officer"].Do(ctx, "GET", "/api/v1/imports/"+p.ID, nil, &again); err != nil || again.Counts.Targets != 6 || again.Counts.InDraft != 1 {
		t.Fatalf("the preview again: %+v (%v)", again.Counts, err)
	}
	if err := u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": again.TargetsSHA256}, nil); err != nil {
		t.Fatal(err)
	}

	// Hostile and careless files: each refused whole, saying why; nothing added.
	deep := []byte(`{"type":"bundle","id":"bundle--1","objects":[` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `]}`)
	for _, tc := range []struct {
		query string
		data  []byte
		want  string
	}{
		{"", []byte("not json"), "not a JSON object"},
		{"", deep, "nested deeper than 32"},
		{"", []byte(`{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator"`), "line 1, column"},
		{"?format=csv", []byte(`{}`), "format must be stix or misp"},
		{"?name=" + "a%00b", sharedFixture(t, "stix/apt1.json"), "file_name"},
		{"", []byte(`{"type":"bundle","id":"bundle--1","objects":[{"type":"x","id":"x--1","v":"` + strings.Repeat("a", 2<<20) + `"}]}`), "a string of"},
	} {
		_, err := upload(u["officer"], id, tc.query, tc.data)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Message+ce.Field, tc.want) {
			t.Errorf("upload %q: %v, want 400 with %q", tc.query, err, tc.want)
		}
	}
	if m, _ := u["officer"].Measure(ctx, id); m.Targets != 31+1+6 {
		t.Fatalf("targets after the imports: %d, want 38", m.Targets)
	}
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	_, err = upload(u["officer"], id, "", sharedFixture(t, "stix/infrastructure.json"))
	refusedWith(t, err, 409, "")
	requireRefusals(t, u["auditor"], id, "refused.targets.added requester", "refused.targets.import invalid")
	if rep := verifyLog(t, e); !rep.OK() {
		t.Fatalf("the log with imports does not verify: %v", rep.Failures)
	}
	var hist struct {
		Entries []struct {
			Action  string         `json:"action"`
			Details map[string]any `json:"details"`
		} `json:"entries"`
	}
	if err := u["auditor"].Do(ctx, "GET", "/api/v1/measures/"+id+"/history", nil, &hist); err != nil {
		t.Fatal(err)
	}
	imports := 0
	for _, h := range hist.Entries {
		if imp, ok := h.Details["import"].(map[string]any); ok && h.Action == "targets.added" {
			imports++
			if imports == 1 && (imp["file_sha256"] != p0(t, "misp/sednit-event.json") || imp["format"] != "misp") {
				t.Errorf("the first import's record: %v", imp)
			}
		}
	}
	if imports != 2 {
		t.Fatalf("%d import records in the log, want 2", imports)
	}
}

func p0(t *testing.T, name string) string {
	p, err := intel.Parse("", sharedFixture(t, name), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p.Source.SHA256
}

// TestLargeImport imports a STIX bundle of 100,000 indicators (TAKEDOWN_IMPORT_N sets
// another size) and reports the preview's and the confirmation's time and the process's peak
// heap, beside the baseline: the same targets added through POST …/targets in one request.
func TestLargeImport(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	n := 100_000
	if raceEnabled {
		n = 10_000 // the race detector adds nothing at this size, and time
	}
	if v, err := strconv.Atoi(os.Getenv("TAKEDOWN_IMPORT_N")); err == nil && v > 0 {
		n = v
	}
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	off := e.Users["officer"]
	draft := func() string {
		c, err := off.CreateCase(ctx, "botnet", "a botnet of many nodes")
		if err != nil {
			t.Fatal(err)
		}
		m, err := off.CreateMeasure(ctx, c, plan("self_execute", e.IDs["executor"]))
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	data := intel.LargeBundle(n)
	// Baseline: the same targets as a JSON list, added in one request.
	targets := make([]map[string]any, n)
	for i := range n {
		a := 10<<24 | i
		targets[i] = map[string]any{"kind": "ip", "value": fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&255, a>>8&255, a&255)}
	}
	base := draft()
	var baseTime time.Duration
	basePeak := peakHeap(func() {
		start := time.Now()
		if _, err := off.AddTargets(ctx, base, targets); err != nil {
			t.Fatal(err)
		}
		baseTime = time.Since(start)
	})
	targets = nil
	id := draft()
	var p importPreview
	var previewTime, confirmTime time.Duration
	previewPeak := peakHeap(func() {
		start := time.Now()
		var err error
		if p, err = upload(off, id, "", data); err != nil {
			t.Fatal(err)
		}
		previewTime = time.Since(start)
	})
	if p.Counts.Targets != n {
		t.Fatalf("the preview lists %d targets, want %d", p.Counts.Targets, n)
	}
	confirmPeak := peakHeap(func() {
		start := time.Now()
		if err := off.Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": p.TargetsSHA256}, nil); err != nil {
			t.Fatal(err)
		}
		confirmTime = time.Since(start)
	})
	if m, _ := off.Measure(ctx, id); m.Targets != n {
		t.Fatalf("imported %d targets, want %d", m.Targets, n)
	}
	// Read again once the draft holds them all: every candidate is found in the draft.
	start := time.Now()
	var again importPreview
	if err := off.Do(ctx, "GET", "/api/v1/imports/"+p.ID, nil, &again); err != nil || again.Counts.InDraft != n {
		t.Fatalf("the preview read again: %+v (%v)", again.Counts, err)
	}
	t.Logf("the preview read again against the %d targets imported: %v", n, time.Since(start).Round(time.Millisecond))
	t.Logf("import of a %d-indicator STIX bundle (%.1f MB): preview %v (peak heap %d MiB), confirm %v (peak heap %d MiB); "+
		"baseline POST …/targets of the same %d targets: %v (peak heap %d MiB); preview+confirm / baseline = %.2f",
		n, float64(len(data))/1e6, previewTime.Round(time.Millisecond), previewPeak>>20, confirmTime.Round(time.Millisecond), confirmPeak>>20,
		n, baseTime.Round(time.Millisecond), basePeak>>20, float64(previewTime+confirmTime)/float64(baseTime))
}

// peakHeap runs fn and returns the most heap in use while it ran, sampled every 10 ms.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	return peak.Load()
}

// TestExportSTIX: a closed measure whose targets were partly imported from OASIS's
// infrastructure bundle is exported for partners as a STIX 2.1 bundle: the officer gets it
// under the TLP asked, with the targets executed, the imported malware under its own STIX id,
// the course of action and the report; before closing, to the Commission, or with an unknown
// TLP it is refused.
func TestExportSTIX(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	d := newDraft(t, e, "self_execute", domestic)
	p, err := upload(u["officer"], d.ID, "", sharedFixture(t, "stix/infrastructure.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": p.TargetsSHA256}, nil); err != nil {
		t.Fatal(err)
	}
	// A second file, marked TLP:AMBER by its source, targets only: the measure is shared at
	// AMBER or RED only, as the import's record in the log says.
	importAll(t, u["officer"], d.ID, markedBundle("amber", 1, "", "203.0.113.77"))
	// The imported targets' location is unknown: a Foreign Minister consultation is recorded.
	mustAct(t, u["officer"], d.ID, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], d.ID, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], d.ID, "command_review", map[string]any{"decision": "approve"}, "GATES")
	mustAct(t, u["commander"], d.ID, "record_gate", map[string]any{"gate": "foreign_ministry", "reference": "MOFA consultation 2026-118"}, "COMMISSION_REVIEW")
	mustAct(t, u["chair"], d.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member1"], d.ID, "vote", vote("approve"), "COMMISSION_REVIEW")
	mustAct(t, u["member2"], d.ID, "vote", vote("approve"), "APPROVED")
	export := func(who, tlp string) ([]byte, error) {
		var b bytes.Buffer
		err := u[who].Do(ctx, "GET", "/api/v1/measures/"+d.ID+"/stix?tlp="+tlp, nil, &b)
		return b.Bytes(), err
	}
	_, err = export("officer", "amber")
	refusedWith(t, err, 409, "")
	mustAct(t, u["executor"], d.ID, "start_execution", nil, "EXECUTING")
	mustAct(t, u["executor"], d.ID, "log_steps", steps(e, time.Now(), "203.0.113.10", "update.example-c2.jp", "198.51.100.3", "example.com"), "EXECUTING")
	mustAct(t, u["executor"], d.ID, "finish_execution", nil, "EXECUTED")
	mustAct(t, u["officer"], d.ID, "report", map[string]any{"body": "all four targets neutralised"}, "REPORTED")
	mustAct(t, u["commander"], d.ID, "verify_report", nil, "NOTIFYING")
	mustAct(t, u["officer"], d.ID, "notify", map[string]any{"notifications": []map[string]any{{"addressee": "the hosting provider", "status": "sent"}}}, "NOTIFYING")
	mustAct(t, u["officer"], d.ID, "close", nil, "CLOSED")

	_, err = export("chair", "amber")
	refusedWith(t, err, 403, "role")
	_, err = export("officer", "purple")
	refusedWith(t, err, 400, "tlp")
	_, err = export("officer", "TLP:GREEN")
	refusedWith(t, err, 400, "tlp")
	bundle, err := export("officer", "TLP:AMBER")
	if err != nil {
		t.Fatal(err)
	}
	// The closed measure's export says what it was: an import into another measure of its
	// case (a TLP:RED actor) leaves it as it was, byte for byte.
	other, err := u["officer"].CreateMeasure(ctx, d.Case, plan("self_execute", e.IDs["executor"]))
	if err != nil {
		t.Fatal(err)
	}
	importAll(t, u["officer"], other.ID, markedBundle("red", 2, "Secret Red Actor", "203.0.113.78"))
	// The same file again: its actor is said to be held already, not dropped unsaid.
	if again, err := upload(u["officer"], other.ID, "", markedBundle("red", 2, "Secret Red Actor", "203.0.113.78")); err != nil || again.Counts.Attribution != 0 || again.Counts.Skipped != 2 { // the target in the draft, the actor in the case
		t.Errorf("the same file again: %+v (%v), want its actor among what is skipped", again.Counts, err)
	}
	if again, err := export("officer", "amber"); err != nil || !bytes.Equal(again, bundle) {
		t.Errorf("the export after another import into the case differs (%v): it holds the red actor: %v", err, bytes.Contains(again, []byte("Secret Red Actor")))
	}
	back, err := intel.Parse(intel.STIX, bundle, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, c := range back.Targets {
		values = append(values, c.Target.Value)
	}
	if strings.Join(values, " ") != "203.0.113.10 update.example-c2.jp 198.51.100.3 example.com 203.0.113.77" {
		t.Errorf("the exported targets: %q", values)
	}
	for _, want := range []string{`"malware--16f4f3f9-1b68-4abb-bb66-7639d49f1e30"`, `"name":"Poison Ivy"`, `"TLP:AMBER"`,
		`"description":"all four targets neutralised"`, `"type":"course-of-action"`, "success 4;"} {
		if !bytes.Contains(bundle, []byte(want)) {
			t.Errorf("the bundle lacks %s", want)
		}
	}
	if bytes.Contains(bundle, []byte(`"relationship_type":"uses"`)) {
		t.Error("the export says an actor used a server: no source said so")
	}
	requireRefusals(t, u["auditor"], d.ID, "refused.read.stix_export role", "refused.read.stix_export invalid", "refused.read.stix_export invalid")
	var exports int
	_ = e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE measure_id = $1 AND convert_from(record, 'UTF8') LIKE '%"action":"read.stix_export"%'`, d.ID).Scan(&exports)
	if exports != 2 {
		t.Fatalf("%d exports in the audit log, want 2 (the officer's)", exports)
	}
}

// markedBundle is a STIX bundle under one TLP marking: a threat actor (unless actor is "")
// and an indicator.
func markedBundle(tlp string, n int, actor, address string) []byte {
	mark := map[string]string{"amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"}[tlp]
	actorObject := fmt.Sprintf(`{"type":"threat-actor","spec_version":"2.1","id":"threat-actor--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":%q,"object_marking_refs":[%q]},`, n, actor, mark)
	if actor == "" {
		actorObject = ""
	}
	return []byte(fmt.Sprintf(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-%012[1]d","objects":[
%[5]s
{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012[1]d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern_type":"stix","pattern":"[ipv4-addr:value = '%[3]s']","valid_from":"2026-01-01T00:00:00Z","object_marking_refs":[%[4]q]}]}`, n, actor, address, mark, actorObject))
}

// importAll previews a file into a draft and confirms it whole.
func importAll(t *testing.T, c *client.Client, id string, data []byte) {
	t.Helper()
	p, err := upload(c, id, "", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(context.Background(), "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": p.TargetsSHA256}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestImportStrangerFindings: what a tester from outside found, each held. An import into one
// measure of a case does not change the case a measure already sealed shows its reviewers; a
// stored file rewritten in the database between preview and confirmation is refused; the
// upload is in the log with the file's hash; a refused confirmation is audited once.
func TestImportStrangerFindings(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	m1 := newDraft(t, e, "self_execute", domestic)
	p, err := upload(u["officer"], m1.ID, "", sharedFixture(t, "misp/sednit-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p.ID+"/confirm", map[string]any{"targets_sha256": p.TargetsSHA256}, nil); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["officer"], m1.ID, "submit", nil, "LEGAL_REVIEW")
	m2, err := u["officer"].CreateMeasure(ctx, m1.Case, plan("self_execute", e.IDs["executor"]))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := upload(u["officer"], m2.ID, "", sharedFixture(t, "stix/apt1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p2.ID+"/confirm", map[string]any{"targets_sha256": p2.TargetsSHA256}, nil); err != nil {
		t.Fatal(err)
	}
	legal, err := e.D.Service.Actor(ctx, e.IDs["legal"])
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.D.Service.Dossier(ctx, legal, m1.ID, service.TargetQuery{Page: service.Page{Limit: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(d.Case.Attribution), "Sofacy") || strings.Contains(string(d.Case.Attribution), "APT1") {
		t.Fatalf("the sealed measure's case shows %s", d.Case.Attribution)
	}

	// A file swapped in the database after its preview.
	p3, err := upload(u["officer"], m2.ID, "", sharedFixture(t, "stix/indicator-to-campaign-relationship.json"))
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.ReplaceAll(string(sharedFixture(t, "stix/indicator-to-campaign-relationship.json")), "Operation Omega", "framed by an insider")
	if _, err := e.Owner.Exec(ctx, `UPDATE imports SET body = $2, sha256 = encode(sha256($2), 'hex') WHERE id = $1`, p3.ID, []byte(forged)); err != nil {
		t.Fatal(err)
	}
	err = u["officer"].Do(ctx, "GET", "/api/v1/imports/"+p3.ID, nil, nil)
	refusedWith(t, err, 409, "")
	err = u["officer"].Do(ctx, "POST", "/api/v1/imports/"+p3.ID+"/confirm", map[string]any{"targets_sha256": p3.TargetsSHA256}, nil)
	refusedWith(t, err, 409, "")
	var c struct {
		Attribution map[string]any `json:"attribution"`
	}
	if err := u["officer"].Do(ctx, "GET", "/api/v1/cases/"+m1.Case, nil, &c); err != nil || strings.Contains(fmt.Sprint(c.Attribution), "insider") {
		t.Fatalf("the case after a forged file: %v (%v)", c.Attribution, err)
	}
	var uploads, refusals int
	_ = e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE key = $1`, "import/"+p3.ID).Scan(&uploads)
	_ = e.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE measure_id = $1 AND convert_from(record, 'UTF8') LIKE '%"action":"refused.targets.added"%'`, m2.ID).Scan(&refusals)
	if uploads != 1 || refusals != 1 {
		t.Fatalf("%d upload records, %d refused confirmations in the log; want 1 and 1", uploads, refusals)
	}
	if rep := verifyLog(t, e); !rep.OK() {
		t.Fatalf("the log does not verify: %v", rep.Failures)
	}
	// An insider renames an imported actor: reconciliation names the case.
	if _, err := e.Owner.Exec(ctx, `UPDATE cases SET attribution = replace(attribution::text, '"APT1"', '"Lazarus Group (forged)"')::jsonb WHERE id = $1`, m1.Case); err != nil {
		t.Fatal(err)
	}
	diffs, err := reconcile.Run(ctx, e.Owner)
	if err != nil || len(diffs) != 1 || diffs[0].Table != "case_attribution" || diffs[0].Key != m1.Case {
		t.Fatalf("reconciliation after the case's attribution was edited: %v (%v)", diffs, err)
	}
}
