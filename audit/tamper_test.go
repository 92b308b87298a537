package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

// copyDir copies an exported archive so each tamper starts from the real one.
func copyDir(t *testing.T, src string) string {
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func bundlePath(dir string, n int64, w int) string {
	return filepath.Join(dir, "tile", filepath.FromSlash(audit.TilePath(-1, n, w)))
}

func rewriteBundle(t *testing.T, path string, edit func([][]byte) [][]byte) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := audit.SplitBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, r := range edit(recs) {
		out = binary.BigEndian.AppendUint16(out, uint16(len(r)))
		out = append(out, r...)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signWith(t *testing.T, ck audit.Checkpoint) (note.Signer, func(audit.Checkpoint) []byte) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sv, _ := signature.LoadED25519SignerVerifier(priv)
	s, _, err := audit.NewNoteSigner(context.Background(), ck.Origin, sv)
	if err != nil {
		t.Fatal(err)
	}
	return s, func(c audit.Checkpoint) []byte {
		b, err := note.Sign(&note.Note{Text: c.Text()}, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func hasFailure(rep *audit.Report, rule string, index int64) bool {
	for _, f := range rep.Failures {
		if f.Rule == rule && (index < 0 || f.Index == index) {
			return true
		}
	}
	return false
}

func copyTo(t *testing.T, src, dst string) {
	c := copyDir(t, src)
	if err := os.Rename(c, dst); err != nil {
		t.Fatal(err)
	}
}

// forged appends a measure's records as given, validly signed, and returns the verifier's report.
func forged(t *testing.T, recs []audit.Record) *audit.Report {
	t.Helper()
	recs = append(designations(recs[0].TS), recs...)
	for i := range recs {
		if r := &recs[i]; r.Measure == "" && !strings.HasPrefix(r.Action, "designation.") && !strings.HasPrefix(r.Action, "policy.") && !strings.HasPrefix(r.Action, "key.") && !strings.HasPrefix(r.Action, "role") {
			r.Measure = "m-forged"
		}
	}
	// Signed by the log's key as the sequencer would, without a database: the replay is what
	// these logs try, and dozens of them stay quick.
	dir := t.TempDir()
	vkey, _ := writeArchive(t, dir, len(recs), func(i int) *audit.Record { return &recs[i] })
	pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	rep, err := audit.VerifyArchive(dir, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// verifyExport exports the log in db and verifies the archive with the log's key alone.
func verifyExport(t *testing.T, db *pgxpool.Pool, vkey string) *audit.Report {
	t.Helper()
	dir := t.TempDir()
	if _, err := audit.Export(context.Background(), db, dir); err != nil {
		t.Fatal(err)
	}
	pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	rep, err := audit.VerifyArchive(dir, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func actor(id string, roles ...string) audit.Actor {
	return audit.Actor{ID: id, Roles: roles, Org: "o"}
}

// designations are the story's executors' designations, issued by the system before it starts:
// "ex" of NPA scope, "ex2" prefectural.
func designations(t0 time.Time) []audit.Record {
	issue := func(id, user, scope string) audit.Record {
		return audit.Record{Actor: actor("system"), Action: "designation.issued", TS: t0.Add(-time.Hour), Details: map[string]any{
			"designation": id, "user": user, "scope": scope,
			"valid_from": t0.Add(-time.Hour).Format(time.RFC3339), "valid_until": t0.AddDate(1, 0, 0).Format(time.RFC3339)}}
	}
	return []audit.Record{issue("d-ex", "ex", "npa"), issue("d-ex2", "ex2", "prefectural")}
}

// deadlines are DESIGN's timers as a seal records them (milliseconds).
var deadlines = map[string]any{"decision_target": 72 * 3600e3, "decision_target_urgent": 24 * 3600e3, "approval_window": 14 * 24 * 3600e3,
	"emergency_notification": 24 * 3600e3, "post_hoc_review": 72 * 3600e3, "report_due": 7 * 24 * 3600e3, "notification_due": 30 * 24 * 3600e3}

// story is a valid approval-and-execution history; forgeries edit it.
func story(t0 time.Time) []audit.Record {
	off, legal, cmd := actor("off", "officer"), actor("leg", "legal"), actor("cmd", "commander")
	chair, m1, m2 := actor("chair", "commission_chair"), actor("m1", "commissioner"), actor("m2", "commissioner")
	ex := actor("ex", "executor")
	ts := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	window := map[string]any{"digest": "sha256:v1", "window_start": ts(8).Format(time.RFC3339Nano), "window_end": ts(8 + 60*24*14).Format(time.RFC3339Nano)}
	step := func(target string, at time.Time) map[string]any {
		return map[string]any{"targets": []string{target}, "step_list": []map[string]any{{"target": target, "witness": "ex2", "at": at.Format(time.RFC3339Nano)}}}
	}
	return []audit.Record{
		{Actor: off, Action: "measure.created", To: "DRAFT", Version: 1, TS: ts(0)},
		{Actor: off, Action: "submit", From: "DRAFT", To: "LEGAL_REVIEW", Version: 1, TS: ts(1),
			Details: map[string]any{"digest": "sha256:v1", "executors": []string{"ex"}, "target_values": []string{"203.0.113.10"}, "deadlines": deadlines}},
		{Actor: legal, Action: "legal_review", From: "LEGAL_REVIEW", To: "COMMAND_REVIEW", Version: 1, TS: ts(2), Details: map[string]any{"digest": "sha256:v1"}},
		{Actor: cmd, Action: "command_review", From: "COMMAND_REVIEW", To: "GATES", Version: 1, TS: ts(3), Details: map[string]any{"digest": "sha256:v1"}},
		{Actor: actor("system"), Action: "gates_satisfied", From: "GATES", To: "COMMISSION_REVIEW", Version: 1, TS: ts(4)},
		{Actor: chair, Action: "vote", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW", Version: 1, TS: ts(5), Details: map[string]any{"vote": "approve", "digest": "sha256:v1"}},
		{Actor: m1, Action: "vote", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW", Version: 1, TS: ts(6), Details: map[string]any{"vote": "approve", "digest": "sha256:v1"}},
		{Actor: m2, Action: "vote", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW", Version: 1, TS: ts(7), Details: map[string]any{"vote": "approve", "digest": "sha256:v1"}},
		{Actor: actor("system"), Action: "decide", From: "COMMISSION_REVIEW", To: "APPROVED", Version: 1, TS: ts(8),
			Details: map[string]any{"tally": map[string]any{"outcome": "approved"}, "approval": window}},
		{Actor: ex, Action: "start_execution", From: "APPROVED", To: "EXECUTING", Version: 1, TS: ts(9)},
		{Actor: ex, Action: "log_steps", From: "EXECUTING", To: "EXECUTING", Version: 1, TS: ts(10), Details: step("203.0.113.10", ts(10))},
		{Actor: ex, Action: "finish_execution", From: "EXECUTING", To: "EXECUTED", Version: 1, TS: ts(11)},
	}
}

// emergency turns the story's start into an emergency declared instead of a submission.
func emergency(r []audit.Record) []audit.Record {
	ts := r[1].TS
	r = r[:2]
	r[1] = audit.Record{Actor: actor("cmd", "commander"), Action: "declare_emergency", From: "DRAFT", To: "EMERGENCY_EXECUTING", Version: 1, TS: ts,
		Details: map[string]any{"digest": "sha256:v1", "executors": []string{"ex"}}}
	return r
}

// TestExportedArchiveIsTheLog holds Export to the layout TestTamperEvidence tampers with (it
// writes its archives without a database): the same files for the same size, and an exported
// archive verifies until one byte of it changes.
func TestExportedArchiveIsTheLog(t *testing.T) {
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	appendN(t, db, 0, 300, 100)
	drain(t, seq)
	exported, written := t.TempDir(), t.TempDir()
	if _, err := audit.Export(ctx, db, exported); err != nil {
		t.Fatal(err)
	}
	_, signer, _ := newLogKeyOnly(t)
	writeSigned(t, written, 300, func(i int) *audit.Record {
		return &audit.Record{Actor: audit.Actor{ID: "u-test"}, Action: "test.append", Details: map[string]any{"n": i}}
	}, signer)
	if got, want := files(t, exported), files(t, written); !slices.Equal(got, want) {
		t.Fatalf("Export wrote %v; the tamper suite tampers with %v", got, want)
	}
	pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	if rep, err := audit.VerifyArchive(exported, pol, nil); err != nil || !rep.OK() {
		t.Fatalf("the exported log fails: %v %v", err, rep)
	}
	rewriteBundle(t, bundlePath(exported, 1, 300-256), func(r [][]byte) [][]byte {
		r[3] = bytes.Replace(r[3], []byte("test.append"), []byte("test.appenD"), 1)
		return r
	})
	if rep, err := audit.VerifyArchive(exported, pol, nil); err != nil || !hasFailure(rep, "entry-altered", 256+3) {
		t.Fatalf("an altered export: %v %v", err, rep)
	}
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplayCatchesForgeries: validly signed logs of processes that were not followed.
func TestReplayCatchesForgeries(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	if rep := forged(t, story(t0)); !rep.OK() {
		t.Fatalf("the honest story fails: %v", rep.Failures)
	}
	tests := []struct {
		name string
		edit func([]audit.Record) []audit.Record
		rule string
		says string // what the failure says, when the rule alone would not tell the check apart
	}{
		{"a member voting twice on one version", func(r []audit.Record) []audit.Record {
			again := r[6] // m1's vote, cast a second time before the decision
			again.TS = r[7].TS.Add(time.Second)
			return append(r[:8], append([]audit.Record{again}, r[8:]...)...)
		}, "SoD-3", "m1 voted twice on version 1"},
		{"a vote by a member who declared a conflict", func(r []audit.Record) []audit.Record {
			conflict := audit.Record{Actor: actor("m2", "commissioner"), Action: "declare_conflict", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW",
				Version: 1, TS: r[6].TS.Add(time.Second), Details: map[string]any{"conflicted": true, "digest": "sha256:v1"}}
			return append(r[:7], append([]audit.Record{conflict}, r[7:]...)...)
		}, "SoD-3", "vote by m2, who declared a conflict"},
		{"a vote cast by the requester", func(r []audit.Record) []audit.Record {
			r[7].Actor = audit.Actor{ID: "off", Roles: []string{"commissioner"}, Org: "o"}
			return r
		}, "SoD-1", ""},
		{"an execution step outside the approved scope", func(r []audit.Record) []audit.Record {
			r[10].Details["targets"] = []string{"192.0.2.66"}
			return r
		}, "scope", ""},
		{"an approval on an older digest", func(r []audit.Record) []audit.Record {
			r[8].Details["approval"].(map[string]any)["digest"] = "sha256:v0"
			return r
		}, "digest", ""},
		{"a decision without quorum", func(r []audit.Record) []audit.Record {
			return append(r[:7], r[8:]...)
		}, "quorum", ""},
		{"a late emergency notification", func(r []audit.Record) []audit.Record {
			ts := r[1].TS
			return append(emergency(r),
				audit.Record{Actor: actor("ex", "executor"), Action: "log_steps", From: "EMERGENCY_EXECUTING", To: "EMERGENCY_EXECUTING", Version: 1, TS: ts.Add(time.Minute),
					Details: map[string]any{"step_list": []map[string]any{{"witness": "ex2"}}}},
				audit.Record{Actor: actor("ex", "executor"), Action: "finish_execution", From: "EMERGENCY_EXECUTING", To: "EXECUTED", Version: 1, TS: ts.Add(2 * time.Minute)},
				audit.Record{Actor: actor("cmd", "commander"), Action: "notify_commission", From: "EXECUTED", To: "COMMISSION_NOTIFIED", Version: 1, TS: ts.Add(30 * time.Hour)},
			)
		}, "deadline", ""},
		{"a conflict declared after voting", func(r []audit.Record) []audit.Record {
			late := audit.Record{Actor: actor("m2", "commissioner"), Action: "declare_conflict", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW",
				Version: 1, TS: r[7].TS.Add(time.Second), Details: map[string]any{"conflicted": true, "digest": "sha256:v1"}}
			return append(r[:8], append([]audit.Record{late}, r[8:]...)...)
		}, "SoD-3", ""},
		{"an emergency reported before its post-hoc review", func(r []audit.Record) []audit.Record {
			ts := r[1].TS
			return append(emergency(r),
				audit.Record{Actor: actor("ex", "executor"), Action: "log_steps", From: "EMERGENCY_EXECUTING", To: "EMERGENCY_EXECUTING", Version: 1, TS: ts.Add(time.Minute),
					Details: map[string]any{"step_list": []map[string]any{{"witness": "ex2", "at": ts.Add(time.Minute).Format(time.RFC3339Nano)}}}},
				audit.Record{Actor: actor("ex", "executor"), Action: "finish_execution", From: "EMERGENCY_EXECUTING", To: "EXECUTED", Version: 1, TS: ts.Add(2 * time.Minute)},
				audit.Record{Actor: actor("ex", "executor"), Action: "report", From: "EXECUTED", To: "REPORTED", Version: 1, TS: ts.Add(3 * time.Minute)},
			)
		}, "lifecycle", ""},
		{"an emergency step before the declaration", func(r []audit.Record) []audit.Record {
			ts := r[1].TS
			return append(emergency(r),
				audit.Record{Actor: actor("ex", "executor"), Action: "log_steps", From: "EMERGENCY_EXECUTING", To: "EMERGENCY_EXECUTING", Version: 1, TS: ts.Add(time.Minute),
					Details: map[string]any{"step_list": []map[string]any{{"witness": "ex2", "at": ts.Add(-time.Hour).Format(time.RFC3339Nano)}}}})
		}, "window", ""},
		{"an administrator who is also an auditor", func(r []audit.Record) []audit.Record {
			return append(r, audit.Record{Actor: audit.Actor{ID: "adm", Roles: []string{"admin", "auditor"}, Org: "o"}, Action: "audit.exported",
				TS: r[len(r)-1].TS.Add(time.Minute)})
		}, "SoD-8", "both the administrator and the auditor role"},
		{"an administrator approving", func(r []audit.Record) []audit.Record {
			r[7].Actor = audit.Actor{ID: "adm", Roles: []string{"admin"}, Org: "o"}
			return r
		}, "SoD-8", ""},
		{"a stage skipped", func(r []audit.Record) []audit.Record {
			return append(r[:2], r[3:]...) // no legal review
		}, "lifecycle", ""},
		{"a step by an executor whose designation was revoked", func(r []audit.Record) []audit.Record {
			proposed := audit.Record{Actor: actor("adm1", "admin"), Action: "role_change.proposed", TS: r[8].TS.Add(time.Second), Details: map[string]any{"change": "rc-r", "kind": "revoke_designation", "designation": "d-ex"}}
			revoke := audit.Record{Actor: actor("adm2", "admin"), Action: "designation.revoked", TS: r[8].TS.Add(time.Second), Details: map[string]any{"designation": "d-ex", "change": "rc-r"}}
			return append(r[:9], append([]audit.Record{proposed, revoke}, r[9:]...)...)
		}, "SoD-4", "designation d-ex was revoked"},
		{"a target abroad sent to the Commission without the Foreign Minister", func(r []audit.Record) []audit.Record {
			r[1].Details["foreign"] = true
			return r
		}, "gates", "Foreign Minister"},
		{"a prefectural executor on a target abroad", func(r []audit.Record) []audit.Record {
			r[1].Details["foreign"] = true
			r[1].Details["executors"] = []string{"ex2"}
			gate := audit.Record{Actor: actor("cmd", "commander"), Action: "record_gate", From: "GATES", To: "GATES", Version: 1, TS: r[3].TS.Add(time.Second),
				Details: map[string]any{"gate": "foreign_ministry", "reference": "MOFA-1", "digest": "sha256:v1"}}
			for _, i := range []int{9, 10, 11} {
				r[i].Actor = actor("ex2", "executor")
			}
			r[10].Details["step_list"] = []map[string]any{{"witness": "ex", "at": r[10].TS.Format(time.RFC3339Nano)}}
			return append(r[:4], append([]audit.Record{gate}, r[4:]...)...)
		}, "SoD-4", "prefectural-scope executor"},
		{"an SDF measure sent to the Commission without the Prime Minister's order", func(r []audit.Record) []audit.Record {
			r[1].Details["legal_basis"] = "sdf_act_communications_protection"
			return r
		}, "gates", "Prime Minister"},
		{"a deadline recorded before it fell due", func(r []audit.Record) []audit.Record {
			expired := audit.Record{Actor: actor("system"), Action: "deadline.expired", From: "APPROVED", To: "EXPIRED", Version: 1, TS: r[8].TS.Add(time.Hour)}
			return append(r[:9], expired)
		}, "deadline", "before it fell due"},
		{"an execution started after the approval window", func(r []audit.Record) []audit.Record {
			late := r[8].TS.Add(15 * 24 * time.Hour)
			for i := 9; i < 12; i++ {
				r[i].TS = late.Add(time.Duration(i) * time.Minute)
			}
			return r
		}, "deadline", "after the approval window closed"},
		{"a deadline that passed unrecorded", func(r []audit.Record) []audit.Record {
			r = r[:9]
			// Approved, then nothing for a month: the window's expiry is missing when the
			// measure is withdrawn.
			return append(r, audit.Record{Actor: actor("off", "officer"), Action: "withdraw", From: "APPROVED", To: "WITHDRAWN", Version: 1, TS: r[8].TS.Add(30 * 24 * time.Hour)})
		}, "deadline", "does not record it"},
		{"an order's deadline that passed unrecorded", func(r []audit.Record) []audit.Record {
			at := r[8].TS
			return append(r[:9],
				audit.Record{Actor: actor("cmd", "commander"), Action: "issue_order", From: "APPROVED", To: "ORDER_ISSUED", Version: 1, TS: at.Add(time.Minute),
					Details: map[string]any{"order": map[string]any{"addressee": "hosting provider", "deadline": at.Add(time.Hour).Format(time.RFC3339)}}},
				audit.Record{Actor: actor("off", "officer"), Action: "order_outcome", From: "ORDER_ISSUED", To: "EXECUTED", Version: 1, TS: at.Add(48 * time.Hour),
					Details: map[string]any{"outcome": "complied"}})
		}, "deadline", "order_deadline_passed"},
		{"an action checked under a policy the log never approved", func(r []audit.Record) []audit.Record {
			r[2].PolicyVersion = "v9"
			return r
		}, "policy", "v9 is not approved"},
		{"a post-hoc review by someone who had a part", func(r []audit.Record) []audit.Record {
			ts := r[1].TS
			return append(emergency(r),
				audit.Record{Actor: actor("ex", "executor"), Action: "log_steps", From: "EMERGENCY_EXECUTING", To: "EMERGENCY_EXECUTING", Version: 1, TS: ts.Add(time.Minute),
					Details: map[string]any{"step_list": []map[string]any{{"witness": "ex2", "at": ts.Add(time.Minute).Format(time.RFC3339Nano)}}}},
				audit.Record{Actor: actor("ex", "executor"), Action: "finish_execution", From: "EMERGENCY_EXECUTING", To: "EXECUTED", Version: 1, TS: ts.Add(2 * time.Minute)},
				audit.Record{Actor: actor("off", "officer"), Action: "notify_commission", From: "EXECUTED", To: "COMMISSION_NOTIFIED", Version: 1, TS: ts.Add(time.Hour)},
				audit.Record{Actor: actor("cmd", "commissioner"), Action: "post_hoc_decision", From: "COMMISSION_NOTIFIED", To: "POST_HOC_REVIEWED", Version: 1, TS: ts.Add(2 * time.Hour), Details: map[string]any{"digest": "sha256:v1"}},
			)
		}, "SoD-6", "had a part"},
		{"evidence added to a measure already submitted", func(r []audit.Record) []audit.Record {
			late := audit.Record{Actor: actor("off", "officer"), Action: "evidence.added", Version: 1, TS: r[1].TS.Add(time.Second)}
			return append(r[:2], append([]audit.Record{late}, r[2:]...)...)
		}, "lifecycle", "drafts only"},
		{"targets added to the draft by another officer", func(r []audit.Record) []audit.Record {
			other := audit.Record{Actor: actor("off2", "officer"), Action: "targets.added", Version: 1, TS: r[0].TS.Add(time.Second)}
			return append(r[:1], append([]audit.Record{other}, r[1:]...)...)
		}, "requester", "not the requester off"},
		{"targets removed from the draft by a legal reviewer", func(r []audit.Record) []audit.Record {
			other := audit.Record{Actor: actor("off", "legal"), Action: "targets.removed", Version: 1, TS: r[0].TS.Add(time.Second)}
			return append(r[:1], append([]audit.Record{other}, r[1:]...)...)
		}, "role", "targets.removed by off with roles [legal]"},
		{"targets removed after the submission", func(r []audit.Record) []audit.Record {
			late := audit.Record{Actor: actor("off", "officer"), Action: "targets.removed", Version: 1, TS: r[1].TS.Add(time.Second)}
			return append(r[:2], append([]audit.Record{late}, r[2:]...)...)
		}, "lifecycle", "targets.removed while the measure was LEGAL_REVIEW"},
		{"a vote cast by the legal reviewer", func(r []audit.Record) []audit.Record {
			r[7].Actor = audit.Actor{ID: "leg", Roles: []string{"commissioner"}, Org: "o"}
			return r
		}, "SoD-1", "who requested or reviewed"},
		{"a vote cast by the commander who endorsed it", func(r []audit.Record) []audit.Record {
			r[7].Actor = audit.Actor{ID: "cmd", Roles: []string{"commissioner"}, Org: "o"}
			return r
		}, "SoD-1", "who requested or reviewed"},
		{"a vote on a digest the measure was not sealed with", func(r []audit.Record) []audit.Record {
			r[6].Details = map[string]any{"vote": "approve", "digest": "sha256:other"}
			return r
		}, "digest", `vote on digest "sha256:other"`},
		{"a legal review on a digest the version was not sealed with", func(r []audit.Record) []audit.Record {
			r[2].Details = map[string]any{"digest": "sha256:v0"}
			return r
		}, "digest", `legal_review on digest "sha256:v0", but version 1 was sealed as sha256:v1`},
		{"a command review naming no digest", func(r []audit.Record) []audit.Record {
			r[3].Details = nil
			return r
		}, "digest", `command_review on digest ""`},
		{"a recused member's declaration overwritten by another", func(r []audit.Record) []audit.Record {
			conflict := audit.Record{Actor: actor("m3", "commissioner"), Action: "declare_conflict", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW",
				Version: 1, TS: r[4].TS.Add(time.Second), Details: map[string]any{"conflicted": true, "digest": "sha256:v1"}}
			again := conflict
			again.TS, again.Details = conflict.TS.Add(time.Second), map[string]any{"conflicted": false, "digest": "sha256:v1"}
			return append(r[:5], append([]audit.Record{conflict, again}, r[5:]...)...)
		}, "SoD-3", "m3 declared again after declaring a conflict"},
		{"information requested by a member who declared a conflict", func(r []audit.Record) []audit.Record {
			conflict := audit.Record{Actor: actor("m2", "commissioner"), Action: "declare_conflict", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW",
				Version: 1, TS: r[4].TS.Add(time.Second), Details: map[string]any{"conflicted": true, "digest": "sha256:v1"}}
			ask := audit.Record{Actor: actor("m2", "commissioner"), Action: "request_info", From: "COMMISSION_REVIEW", To: "INFO_REQUESTED",
				Version: 1, TS: r[4].TS.Add(2 * time.Second), Reason: "the hosting contract", Details: map[string]any{"digest": "sha256:v1"}}
			return append(r[:5], conflict, ask)
		}, "SoD-3", "information requested by m2, who declared a conflict"},
		{"a rejection decided on approving votes", func(r []audit.Record) []audit.Record {
			r[8].Details = map[string]any{"tally": map[string]any{"outcome": "rejected"}}
			r[8].To = "REJECTED"
			return r[:9]
		}, "quorum", "no majority"},
		{"a return decided on approving votes", func(r []audit.Record) []audit.Record {
			r[8].Details = map[string]any{"tally": map[string]any{"outcome": "returned"}}
			r[8].To = "DRAFT"
			return r[:9]
		}, "quorum", "no majority"},
		{"a step by an executor who was never designated", func(r []audit.Record) []audit.Record {
			r[1].Details["executors"] = []string{"ex9"}
			for _, i := range []int{9, 10, 11} {
				r[i].Actor = actor("ex9", "executor")
			}
			return r
		}, "SoD-4", "holds no valid executor designation"},
		{"a step by an executor whose designation had not begun", func(r []audit.Record) []audit.Record {
			early := audit.Record{Actor: actor("system"), Action: "designation.issued", TS: r[0].TS, Details: map[string]any{
				"designation": "d-ex9", "user": "ex9", "scope": "npa", "valid_from": r[0].TS.AddDate(0, 1, 0).Format(time.RFC3339), "valid_until": r[0].TS.AddDate(1, 0, 0).Format(time.RFC3339)}}
			r[1].Details["executors"] = []string{"ex9"}
			for _, i := range []int{9, 10, 11} {
				r[i].Actor = actor("ex9", "executor")
			}
			return append([]audit.Record{early}, r...)
		}, "SoD-4", "designation d-ex9 is valid from"},
		{"a report verified by its author", func(r []audit.Record) []audit.Record {
			at := r[11].TS
			return append(r,
				audit.Record{Actor: actor("off", "officer"), Action: "report", From: "EXECUTED", To: "REPORTED", Version: 1, TS: at.Add(time.Minute)},
				audit.Record{Actor: actor("off", "officer", "legal"), Action: "verify_report", From: "REPORTED", To: "CLOSED", Version: 1, TS: at.Add(2 * time.Minute), Details: map[string]any{"digest": "sha256:v1"}})
		}, "SoD-7", "verified by its author off"},
		{"an emergency step after its window closed", func(r []audit.Record) []audit.Record {
			ts := r[1].TS
			r = emergency(r)
			r[1].Details["deadlines"] = deadlines
			r[1].Details["requested_window_ms"] = int64(time.Hour / time.Millisecond)
			return append(r,
				audit.Record{Actor: actor("ex", "executor"), Action: "log_steps", From: "EMERGENCY_EXECUTING", To: "EMERGENCY_EXECUTING", Version: 1, TS: ts.Add(time.Minute),
					Details: map[string]any{"step_list": []map[string]any{{"witness": "ex2", "at": ts.Add(61 * time.Minute).Format(time.RFC3339Nano)}}}})
		}, "window", "after the emergency window closed"},
		{"an action under a policy approved without its rules", func(r []audit.Record) []audit.Record {
			at := r[0].TS.Add(-time.Hour)
			r[2].PolicyVersion = "v2"
			return append([]audit.Record{
				{Actor: actor("adm1", "admin"), Action: "policy.proposed", TS: at, Details: map[string]any{"version": "v2"}},
				{Actor: actor("adm2", "admin"), Action: "policy.approved", TS: at, Details: map[string]any{"version": "v2"}},
			}, r...)
		}, "policy", "rules are not in the log"},
		{"a policy approved by the administrator who proposed it", func(r []audit.Record) []audit.Record {
			at := r[0].TS.Add(-time.Hour)
			r[2].PolicyVersion = "v2"
			return append([]audit.Record{
				{Actor: actor("adm1", "admin"), Action: "policy.proposed", TS: at, Details: map[string]any{"version": "v2", "rule_set": []string{"allow legal legal_review"}}},
				{Actor: actor("adm1", "admin"), Action: "policy.approved", TS: at, Details: map[string]any{"version": "v2"}},
			}, r...)
		}, "two-person", "approved by its proposer adm1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := forged(t, tt.edit(story(t0)))
			if !hasFailure(rep, tt.rule, -1) {
				t.Fatalf("want %s, got %v", tt.rule, rep.Failures)
			}
			if tt.says != "" && !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool { return f.Rule == tt.rule && strings.Contains(f.Msg, tt.says) }) {
				t.Fatalf("want %s saying %q, got %v", tt.rule, tt.says, rep.Failures)
			}
			t.Logf("caught: %v", rep.Failures[0])
		})
	}
}

// TestRecordFormats: a validly signed log whose records were written around Append (by
// someone holding the append key).
// Records of the first format (no salt) still verify; a current record without its salt, an
// unknown format and the empty documents `{}` and `null` are each named.
func TestRecordFormats(t *testing.T) {
	ctx := context.Background()
	db, seq, vkey := newLog(t)
	salt := strings.Repeat("0f", 32)
	recs := []struct {
		raw string
		bad bool
	}{
		{`{"action":"test","actor":{"id":"u","org":"o","roles":["officer"]},"id":"a","log":"takedown.audit/v1","policy_version":"none","ts":"2026-11-02T09:00:00Z","v":1}`, false},
		{`{"action":"test","actor":{"id":"u","org":"o","roles":["officer"]},"id":"b","log":"takedown.audit/v1","policy_version":"none","salt":"` + salt + `","ts":"2026-11-02T09:00:00Z","v":2}`, false},
		{`{"action":"test","actor":{"id":"u","org":"o","roles":["officer"]},"id":"c","log":"takedown.audit/v1","policy_version":"none","ts":"2026-11-02T09:00:00Z","v":2}`, true},
		{`{"action":"test","actor":{"id":"u","org":"o","roles":["officer"]},"id":"d","log":"takedown.audit/v1","policy_version":"none","salt":"short","ts":"2026-11-02T09:00:00Z","v":2}`, true},
		{`{"action":"test","actor":{"id":"u","org":"o","roles":["officer"]},"id":"e","log":"takedown.audit/v1","policy_version":"none","salt":"` + salt + `","ts":"2026-11-02T09:00:00Z","v":3}`, true},
		{`{}`, true},
		{`null`, true},
	}
	for i, r := range recs {
		id := audit.EntryID(fmt.Sprint("raw/", i))
		if _, err := db.Exec(ctx, `INSERT INTO audit_entries (id, key, created_at, record, auth) VALUES ($1, $2, now(), $3, $4)`,
			id, fmt.Sprint("raw/", i), []byte(r.raw), testAppender.Authenticator(id, []byte(r.raw))); err != nil {
			t.Fatal(err)
		}
		drain(t, seq) // one batch each, so index i is record i
	}
	rep := verifyExport(t, db, vkey)
	for i, r := range recs {
		if got := hasFailure(rep, "record", int64(i)); got != r.bad {
			t.Errorf("record %d %s: failure %v, want %v (%v)", i, r.raw, got, r.bad, rep.Failures)
		}
	}
}

// TestReplayChecksEveryTargetAtScale: a botnet takedown approved for 700,000 targets, executed
// in batches of 5,000 steps. Its seal lists every target value and each batch every step, far
// beyond what one 64 KiB record holds: the lists move to companion data the records commit to
// by hash, and the verifier reads them back and checks every step's scope and window. One step
// on a target outside the approved set, deep in the last batch, is named; so is a companion
// edited or removed in the archive.
func TestReplayChecksEveryTargetAtScale(t *testing.T) {
	t.Parallel() // waits on its own processes and databases more than it computes
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	n, batch := 700_000, 5_000
	if raceEnabled {
		n = 50_000 // the same checks; the full size runs without the race detector
	}
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
	}
	recs := story(t0)
	recs[1].Details["target_values"] = values
	steps := recs[10]
	var batches []audit.Record
	for lo := 0; lo < n; lo += batch {
		list := make([]map[string]any, 0, batch)
		targets := make([]string, 0, batch)
		for i := lo; i < lo+batch; i++ {
			target := values[i]
			if i == n-7 {
				target = "198.51.100.66" // not approved
			}
			targets = append(targets, target)
			list = append(list, map[string]any{"target": target, "witness": "ex2", "at": steps.TS.Format(time.RFC3339Nano)})
		}
		b := steps
		b.Details = map[string]any{"targets": targets, "step_list": list}
		batches = append(batches, b)
	}
	recs = append(recs[:10], append(batches, recs[11:]...)...)
	ds := designations(t0)
	recs = append(ds, recs...)

	db, seq, vkey := newLog(t)
	for i := range recs {
		r := recs[i]
		if i >= len(ds) {
			r.Measure = "m-botnet"
		}
		if err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return testAppender.Append(ctx, tx, fmt.Sprint("botnet/", i), &r) }); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, seq)
	dir := t.TempDir()
	if _, err := audit.Export(ctx, db, dir); err != nil {
		t.Fatal(err)
	}
	pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	start := time.Now()
	rep, err := audit.VerifyArchive(dir, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verified %d records, %d steps over %d targets, in %v", rep.Records, n, n, time.Since(start))
	last := int64(len(ds) + 10 + n/batch - 1) // the designations, the story's first ten records, then the batches
	if len(rep.Failures) != 1 || !hasFailure(rep, "scope", last) || !strings.Contains(rep.Failures[0].String(), "198.51.100.66") {
		t.Fatalf("want the one step out of scope named at entry %d: %v", last, rep.Failures)
	}

	// The archive's companions are outside input too.
	files, err := os.ReadDir(filepath.Join(dir, "companions"))
	if err != nil || len(files) < 2 {
		t.Fatalf("companions in the archive: %d (%v)", len(files), err)
	}
	var seal string // the largest companion: the seal's target values
	var size int64
	for _, f := range files {
		if info, _ := f.Info(); info.Size() > size {
			seal, size = f.Name(), info.Size()
		}
	}
	path := filepath.Join(dir, "companions", seal)
	data, _ := os.ReadFile(path)
	edited := bytes.Replace(data, []byte(`"10.0.0.1"`), []byte(`"10.9.9.9"`), 1)
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if rep, _ := audit.VerifyArchive(dir, pol, nil); !hasFailure(rep, "companion", int64(len(ds)+1)) {
		t.Fatalf("an edited companion: %v", rep.Failures)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if rep, _ := audit.VerifyArchive(dir, pol, nil); !hasFailure(rep, "companion", int64(len(ds)+1)) {
		t.Fatalf("a removed companion: %v", rep.Failures)
	}
}

// TestReplayNamesTheRecord: a failure names the log index of the record that broke the rule
// (two designations open the forged log, so the story's record i is entry i+2).
func TestReplayNamesTheRecord(t *testing.T) {
	r := story(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	again := r[6]
	again.TS = r[7].TS.Add(time.Second)
	r = append(r[:8], append([]audit.Record{again}, r[8:]...)...)
	rep := forged(t, r)
	if len(rep.Failures) != 1 || rep.Failures[0].Index != 10 || rep.Failures[0].Rule != "SoD-3" {
		t.Fatalf("want SoD-3 at index 10 alone, got %v", rep.Failures)
	}
}

// recast replaces the story's Commission review (r[5:8]) with conflict declarations by the
// members given and the votes given (member: vote, or "conflict" for a declaration made
// among the votes), a second apart.
func recast(r []audit.Record, conflicted []string, votes ...[2]string) []audit.Record {
	at := r[4].TS
	var review []audit.Record
	next := func(rec audit.Record) {
		at = at.Add(time.Second)
		rec.From, rec.To, rec.Version, rec.TS = "COMMISSION_REVIEW", "COMMISSION_REVIEW", 1, at
		review = append(review, rec)
	}
	for _, m := range conflicted {
		next(audit.Record{Actor: actor(m, "commissioner"), Action: "declare_conflict", Details: map[string]any{"conflicted": true, "digest": "sha256:v1"}})
	}
	for _, v := range votes {
		role := "commissioner"
		if v[0] == "chair" {
			role = "commission_chair"
		}
		if v[1] == "conflict" {
			next(audit.Record{Actor: actor(v[0], role), Action: "declare_conflict", Details: map[string]any{"conflicted": true, "digest": "sha256:v1"}})
			continue
		}
		next(audit.Record{Actor: actor(v[0], role), Action: "vote", Details: map[string]any{"vote": v[1], "digest": "sha256:v1"}})
	}
	return append(append(slices.Clone(r[:5]), review...), r[8:]...)
}

// TestReplayAtTheRulesEdges: logs of processes that kept every rule, some only just, verify;
// the same logs a step over a rule's edge fail it. Each pair holds a rule's exact boundary.
func TestReplayAtTheRulesEdges(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	window := func(r []audit.Record) (start, end time.Time) {
		ap := r[8].Details["approval"].(map[string]any)
		start, _ = time.Parse(time.RFC3339Nano, ap["window_start"].(string))
		end, _ = time.Parse(time.RFC3339Nano, ap["window_end"].(string))
		return start, end
	}
	// startAt moves the execution (start, one step, finish) to begin at the given time.
	startAt := func(r []audit.Record, at time.Time) []audit.Record {
		r[9].TS, r[10].TS, r[11].TS = at, at.Add(time.Second), at.Add(2*time.Second)
		r[10].Details["step_list"].([]map[string]any)[0]["at"] = at.Format(time.RFC3339Nano)
		return r
	}
	// notifiedAfter is the story as an emergency whose Commission notification came after d.
	notifiedAfter := func(r []audit.Record, d time.Duration) []audit.Record {
		ts := r[1].TS
		return append(emergency(r),
			audit.Record{Actor: actor("ex", "executor"), Action: "log_steps", From: "EMERGENCY_EXECUTING", To: "EMERGENCY_EXECUTING", Version: 1, TS: ts.Add(time.Minute),
				Details: map[string]any{"step_list": []map[string]any{{"witness": "ex2", "at": ts.Add(time.Minute).Format(time.RFC3339Nano)}}}},
			audit.Record{Actor: actor("ex", "executor"), Action: "finish_execution", From: "EMERGENCY_EXECUTING", To: "EXECUTED", Version: 1, TS: ts.Add(2 * time.Minute)},
			audit.Record{Actor: actor("cmd", "commander"), Action: "notify_commission", From: "EXECUTED", To: "COMMISSION_NOTIFIED", Version: 1, TS: ts.Add(d)},
		)
	}
	// stepAt moves the story's one execution step to the given time.
	stepAt := func(r []audit.Record, at time.Time) []audit.Record {
		r[10].Details["step_list"].([]map[string]any)[0]["at"] = at.Format(time.RFC3339Nano)
		return r
	}
	// emergencyStep is the story as an emergency declared 300 ms into a second, with the
	// requested window given (0: none), and one step at the given offset from the declaration's
	// second.
	emergencyStep := func(r []audit.Record, requested, offset time.Duration) []audit.Record {
		r[1].TS = r[1].TS.Add(300 * time.Millisecond)
		decl := r[1].TS
		r = emergency(r)
		r[1].Details["deadlines"] = deadlines
		if requested > 0 {
			r[1].Details["requested_window_ms"] = int64(requested / time.Millisecond)
		}
		return append(r, audit.Record{Actor: actor("ex", "executor"), Action: "log_steps", From: "EMERGENCY_EXECUTING", To: "EMERGENCY_EXECUTING", Version: 1,
			TS: decl.Add(time.Minute), Details: map[string]any{"step_list": []map[string]any{{"witness": "ex2", "at": decl.Truncate(time.Second).Add(offset).Format(time.RFC3339Nano)}}}})
	}
	// overdue is the story with the Commission deciding late: its votes d after review began,
	// with the decision_overdue deadline recorded at due (or not, when due is 0).
	overdue := func(r []audit.Record, d, due time.Duration) []audit.Record {
		began := r[4].TS
		for i := 5; i < len(r); i++ {
			r[i].TS = r[i].TS.Add(d)
		}
		if due == 0 {
			return r
		}
		rec := audit.Record{Actor: actor("system"), Action: "deadline.decision_overdue", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW", Version: 1, TS: began.Add(due)}
		return append(append(slices.Clone(r[:5]), rec), r[5:]...)
	}
	// late is the story with the chair's vote at the given time after review began and the
	// decision_overdue deadline recorded a second after it, as when the workflow accepted the
	// vote a moment before its timer fired.
	late := func(r []audit.Record, vote time.Duration) []audit.Record {
		r = overdue(r, vote-time.Minute, 0)
		rec := audit.Record{Actor: actor("system"), Action: "deadline.decision_overdue", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW", Version: 1, TS: r[5].TS.Add(time.Second)}
		return append(append(slices.Clone(r[:6]), rec), r[6:]...)
	}
	const day = 24 * time.Hour
	// decided is the story ending at the Commission's decision, with the outcome given.
	decided := func(r []audit.Record, outcome, to string) []audit.Record {
		i := slices.IndexFunc(r, func(rec audit.Record) bool { return rec.Action == "decide" })
		r[i].To, r[i].Details = to, map[string]any{"tally": map[string]any{"outcome": outcome}}
		return r[:i+1]
	}
	// postHoc is the story as an emergency reviewed after the fact by the member given.
	postHoc := func(r []audit.Record, member string) []audit.Record {
		r = notifiedAfter(r, time.Hour)
		return append(r, audit.Record{Actor: actor(member, "commissioner"), Action: "post_hoc_decision", From: "COMMISSION_NOTIFIED", To: "POST_HOC_REVIEWED",
			Version: 1, TS: r[len(r)-1].TS.Add(time.Hour), Details: map[string]any{"digest": "sha256:v1"}})
	}
	// reported is the story with an execution that ran three days and its report d after it
	// finished.
	reported := func(r []audit.Record, d time.Duration) []audit.Record {
		r[11].TS = r[9].TS.Add(3 * day)
		return append(r, audit.Record{Actor: actor("off", "officer"), Action: "report", From: "EXECUTED", To: "REPORTED", Version: 1, TS: r[11].TS.Add(d)})
	}
	// twoSteps is the story with a second step in its batch, at the time given.
	twoSteps := func(r []audit.Record, at time.Time) []audit.Record {
		first := r[10].Details["step_list"].([]map[string]any)[0]
		r[10].Details["step_list"] = []map[string]any{first, {"target": first["target"], "witness": "ex2", "at": at.Format(time.RFC3339Nano)}}
		return r
	}
	// undated is an emergency step with no time it was taken.
	undated := func(r []audit.Record, at string) []audit.Record {
		r = emergencyStep(r, 0, time.Minute)
		r[len(r)-1].Details["step_list"].([]map[string]any)[0]["at"] = at
		return r
	}
	tests := []struct {
		name       string
		kept, over func([]audit.Record) []audit.Record
		rule, says string // what the log over the edge fails
	}{
		{"a step as the approved window opens",
			func(r []audit.Record) []audit.Record { start, _ := window(r); return stepAt(r, start) },
			func(r []audit.Record) []audit.Record {
				start, _ := window(r)
				return stepAt(r, start.Add(-time.Nanosecond))
			},
			"window", "outside the approved window"},
		{"a step in the approved window's last instant",
			func(r []audit.Record) []audit.Record {
				_, end := window(r)
				return stepAt(r, end.Add(-time.Nanosecond))
			},
			func(r []audit.Record) []audit.Record { _, end := window(r); return stepAt(r, end) },
			"window", "outside the approved window"},
		{"an emergency step a second before the declaration's second (the slack for the record's stamp)",
			func(r []audit.Record) []audit.Record { return emergencyStep(r, 0, -time.Second) },
			func(r []audit.Record) []audit.Record { return emergencyStep(r, 0, -time.Second-time.Nanosecond) },
			"window", "before the emergency was declared"},
		{"an emergency step at the end of its requested window (and its second of slack)",
			func(r []audit.Record) []audit.Record {
				return emergencyStep(r, time.Hour, time.Hour+time.Second-time.Nanosecond)
			},
			func(r []audit.Record) []audit.Record { return emergencyStep(r, time.Hour, time.Hour+time.Second) },
			"window", "after the emergency window closed"},
		{"an emergency step at the end of the longest window, whatever was requested",
			func(r []audit.Record) []audit.Record {
				return emergencyStep(r, 30*day, 14*day+time.Second-time.Nanosecond)
			},
			func(r []audit.Record) []audit.Record { return emergencyStep(r, 30*day, 14*day+time.Second) },
			"window", "after the emergency window closed"},
		{"a decision overdue recorded when it fell due",
			func(r []audit.Record) []audit.Record { return overdue(r, 73*time.Hour, 72*time.Hour-time.Second) },
			func(r []audit.Record) []audit.Record {
				return overdue(r, 73*time.Hour, 72*time.Hour-time.Second-time.Nanosecond)
			},
			"deadline", "before it fell due"},
		{"a vote within the grace before the deadline's own record",
			func(r []audit.Record) []audit.Record { return late(r, 72*time.Hour+10*time.Minute) },
			func(r []audit.Record) []audit.Record { return late(r, 72*time.Hour+10*time.Minute+time.Nanosecond) },
			"deadline", "deadline decision_overdue fell due"},
		{"an urgent decision's shorter target",
			func(r []audit.Record) []audit.Record {
				r[1].Details["urgent"] = true
				return overdue(r, 25*time.Hour, 24*time.Hour)
			},
			func(r []audit.Record) []audit.Record {
				r[1].Details["urgent"] = true
				return overdue(r, 25*time.Hour, 0)
			},
			"deadline", "deadline decision_overdue fell due"},
		{"a majority of the members not recused",
			func(r []audit.Record) []audit.Record {
				return recast(r, []string{"m3", "m4"}, [2]string{"chair", "approve"}, [2]string{"m1", "approve"}, [2]string{"m2", "reject"})
			},
			func(r []audit.Record) []audit.Record {
				return recast(r, []string{"m3"}, [2]string{"chair", "approve"}, [2]string{"m1", "approve"}, [2]string{"m2", "reject"})
			}, "quorum", "2 of 4 eligible votes, no majority"},
		{"every member voted and the chair broke the tie",
			func(r []audit.Record) []audit.Record {
				return recast(r, nil, [2]string{"chair", "approve"}, [2]string{"m1", "approve"}, [2]string{"m2", "reject"}, [2]string{"m3", "reject"}, [2]string{"m4", "return"})
			},
			func(r []audit.Record) []audit.Record {
				return recast(r, nil, [2]string{"chair", "approve"}, [2]string{"m1", "approve"}, [2]string{"m2", "reject"}, [2]string{"m3", "reject"})
			}, "quorum", "2 of 5 eligible votes, no majority"},
		{"the chair and two members, the rest recused",
			func(r []audit.Record) []audit.Record {
				return recast(r, []string{"m3", "m4"}, [2]string{"chair", "approve"}, [2]string{"m1", "approve"}, [2]string{"m2", "approve"})
			},
			func(r []audit.Record) []audit.Record {
				return recast(r, []string{"m2", "m3", "m4"}, [2]string{"chair", "approve"}, [2]string{"m1", "approve"})
			}, "quorum", "2 votes on version 1 (chair voted: true)"},
		{"the chair and exactly the quorum of members",
			func(r []audit.Record) []audit.Record { return r },
			func(r []audit.Record) []audit.Record {
				return recast(r, nil, [2]string{"m1", "approve"}, [2]string{"m2", "approve"}, [2]string{"m3", "approve"})
			}, "quorum", "chair voted: false"},
		{"execution started in the window's last second",
			func(r []audit.Record) []audit.Record { _, end := window(r); return startAt(r, end.Add(-time.Second)) },
			func(r []audit.Record) []audit.Record { _, end := window(r); return startAt(r, end) },
			"deadline", "after the approval window closed"},
		{"a rejection by a majority of the members, not all voting",
			func(r []audit.Record) []audit.Record {
				return decided(recast(r, nil, [2]string{"chair", "reject"}, [2]string{"m1", "reject"}, [2]string{"m2", "reject"}), "rejected", "REJECTED")
			},
			func(r []audit.Record) []audit.Record {
				return decided(recast(r, nil, [2]string{"chair", "reject"}, [2]string{"m1", "reject"}, [2]string{"m2", "approve"}), "rejected", "REJECTED")
			}, "quorum", "2 of 5 eligible votes, no majority"},
		{"a return by a majority of the members, not all voting",
			func(r []audit.Record) []audit.Record {
				return decided(recast(r, nil, [2]string{"chair", "return"}, [2]string{"m1", "return"}, [2]string{"m2", "return"}), "returned", "DRAFT")
			},
			func(r []audit.Record) []audit.Record {
				return decided(recast(r, nil, [2]string{"chair", "return"}, [2]string{"m1", "approve"}, [2]string{"m2", "return"}), "returned", "DRAFT")
			}, "quorum", "2 of 5 eligible votes, no majority"},
		{"a conflict declared after others voted, before one's own vote",
			func(r []audit.Record) []audit.Record {
				return recast(r, nil, [2]string{"chair", "approve"}, [2]string{"m1", "approve"}, [2]string{"m3", "conflict"}, [2]string{"m2", "approve"})
			},
			func(r []audit.Record) []audit.Record {
				return recast(r, nil, [2]string{"chair", "approve"}, [2]string{"m1", "approve"}, [2]string{"m1", "conflict"}, [2]string{"m2", "approve"}, [2]string{"m3", "approve"})
			}, "SoD-3", "m1 declared a conflict after voting"},
		{"a post-hoc review by a member with no part in the measure",
			func(r []audit.Record) []audit.Record { return postHoc(r, "m3") },
			func(r []audit.Record) []audit.Record { return postHoc(r, "ex") },
			"SoD-6", "the post-hoc review by ex, who had a part"},
		{"a report a week after the execution finished, however long it ran",
			func(r []audit.Record) []audit.Record { return reported(r, 7*day+10*time.Minute) },
			func(r []audit.Record) []audit.Record { return reported(r, 7*day+10*time.Minute+time.Nanosecond) },
			"deadline", "deadline report_overdue fell due"},
		{"a batch whose second step is in the approved window's last instant",
			func(r []audit.Record) []audit.Record {
				_, end := window(r)
				return twoSteps(r, end.Add(-time.Nanosecond))
			},
			func(r []audit.Record) []audit.Record { _, end := window(r); return twoSteps(r, end) },
			"window", "step 1 at"},
		{"an emergency step that says when it was taken",
			func(r []audit.Record) []audit.Record { return emergencyStep(r, 0, time.Minute) },
			func(r []audit.Record) []audit.Record { return undated(r, "") },
			"window", "step 0 gives no time it was taken"},
		{"an emergency that asked for no window, at the end of the longest",
			func(r []audit.Record) []audit.Record { return emergencyStep(r, 0, 14*day+time.Second-time.Nanosecond) },
			func(r []audit.Record) []audit.Record { return emergencyStep(r, 0, 14*day+time.Second) },
			"window", "after the emergency window closed"},
		{"the Commission notified at the emergency's deadline",
			func(r []audit.Record) []audit.Record { return notifiedAfter(r, 24*time.Hour) },
			func(r []audit.Record) []audit.Record { return notifiedAfter(r, 24*time.Hour+time.Second) },
			"deadline", "after the emergency declaration (limit 24h0m0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rep := forged(t, tt.kept(story(t0))); !rep.OK() {
				t.Fatalf("kept every rule, but fails: %v", rep.Failures)
			}
			rep := forged(t, tt.over(story(t0)))
			if !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool { return f.Rule == tt.rule && strings.Contains(f.Msg, tt.says) }) {
				t.Fatalf("over the edge: want %s saying %q, got %v", tt.rule, tt.says, rep.Failures)
			}
		})
	}
}

// TestReplayUnderPolicyAndDesignationHistory: an honest log spanning two policy versions and a
// designation revoked between two measures verifies, each record judged under the policy and
// designations the log shows in force at its time; a step by the revoked executor, and an
// action the first policy did not allow claimed under it, each fail with their rule.
func TestReplayUnderPolicyAndDesignationHistory(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	var v2 []string
	for _, r := range authz.DefaultPolicy() {
		v2 = append(v2, r.Effect+" "+string(r.Role)+" "+r.Op)
	}
	v2 = append(v2, "allow legal command_review") // the second version lets a legal officer endorse for the command
	build := func(second func([]audit.Record) []audit.Record) []audit.Record {
		recs := story(t0) // the first measure, under version 1
		recs = append(recs,
			audit.Record{Actor: actor("system"), Action: "designation.issued", TS: t0.Add(day), Details: map[string]any{
				"designation": "d-ex3", "user": "ex3", "scope": "npa", "valid_from": t0.Format(time.RFC3339), "valid_until": t0.AddDate(1, 0, 0).Format(time.RFC3339)}},
			audit.Record{Actor: actor("adm1", "admin"), Action: "policy.proposed", TS: t0.Add(day), Details: map[string]any{"version": "v2", "rule_set": v2}},
			audit.Record{Actor: actor("adm2", "admin"), Action: "policy.approved", TS: t0.Add(day), Details: map[string]any{"version": "v2"}},
			audit.Record{Actor: actor("adm1", "admin"), Action: "role_change.proposed", TS: t0.Add(day), Details: map[string]any{"change": "rc-r", "kind": "revoke_designation", "designation": "d-ex"}},
			audit.Record{Actor: actor("adm2", "admin"), Action: "designation.revoked", TS: t0.Add(day), Details: map[string]any{"designation": "d-ex", "change": "rc-r"}},
		)
		m2 := story(t0.Add(2 * day))
		m2[1].Details["executors"] = []string{"ex3"}
		m2[3].Actor = actor("leg2", "legal")
		for i := range m2 {
			m2[i].Measure, m2[i].PolicyVersion = "m-two", "v2"
			if m2[i].Actor.ID == "ex" {
				m2[i].Actor = actor("ex3", "executor")
			}
		}
		return append(recs, second(m2)...)
	}
	if rep := forged(t, build(func(r []audit.Record) []audit.Record { return r })); !rep.OK() {
		t.Fatalf("the honest history fails: %v", rep.Failures)
	}
	for _, tt := range []struct {
		name, rule, says string
		edit             func([]audit.Record) []audit.Record
	}{
		{"a step by the revoked executor", "SoD-4", "designation d-ex was revoked", func(r []audit.Record) []audit.Record {
			r[1].Details["executors"] = []string{"ex"}
			for i := 9; i < 12; i++ {
				r[i].Actor = actor("ex", "executor")
			}
			return r
		}},
		{"the second version's permission claimed under the first", "role", "policy v1", func(r []audit.Record) []audit.Record {
			r[3].PolicyVersion = "v1"
			return r
		}},
		{"a vote checked under the first version a day after the second was approved (a rollback in SQL)", "policy", "but v2 was approved", func(r []audit.Record) []audit.Record {
			r[6].PolicyVersion = "v1"
			return r
		}},
		{"a vote naming no policy a day after the second was approved", "policy", "but v2 was approved", func(r []audit.Record) []audit.Record {
			r[6].PolicyVersion = ""
			return r
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := forged(t, build(tt.edit))
			if !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool { return f.Rule == tt.rule && strings.Contains(f.Msg, tt.says) }) {
				t.Fatalf("want %s saying %q, got %v", tt.rule, tt.says, rep.Failures)
			}
			t.Logf("caught: %v", rep.Failures)
		})
	}
}

// TestTamperEvidence alters an exported log of 10,000 records in every way an insider might
// and requires the offline verifier to catch each and name it.
func TestTamperEvidence(t *testing.T) {
	// Two checkpoints of one 1,300-record log (five whole bundles and a partial one), signed as the sequencer signs and laid out as
	// Export lays them out (TestExportedArchiveIsTheLog holds Export to them), written without a
	// database so that the mutation run can afford this suite for every mutant.
	_, signer, vkey := newLogKeyOnly(t)
	recs := make([]audit.Record, 1300)
	for i := range recs {
		recs[i] = audit.Record{Actor: audit.Actor{ID: "u-test", Roles: []string{"officer"}, Org: "npa"}, Action: "test.append",
			Details: map[string]any{"n": i}}
	}
	gen := func(i int) *audit.Record { return &recs[i] }
	realDir, olderDir := t.TempDir(), t.TempDir()
	ck, _ := writeSigned(t, realDir, 1300, gen, signer)
	older, _ := writeSigned(t, olderDir, 700, gen, signer)
	atBundle, _ := writeSigned(t, t.TempDir(), 512, gen, signer) // two whole bundles
	pol, err := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	if err != nil {
		t.Fatal(err)
	}
	verify := func(dir string, prior *audit.Checkpoint) *audit.Report {
		rep, err := audit.VerifyArchive(dir, pol, prior)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify(realDir, &older); !rep.OK() {
		t.Fatalf("the untouched log fails: %v", rep.Failures)
	}
	if rep := verify(realDir, &atBundle); !rep.OK() {
		t.Fatalf("the untouched log fails for an auditor who last saw two whole bundles: %v", rep.Failures)
	}
	last := int(ck.Size - 5*audit.EntriesPerTile) // width of the last (partial) bundle: 20

	tests := []struct {
		name   string
		tamper func(dir string) *audit.Checkpoint // returns the prior checkpoint to verify against
		rule   string
		index  int64
		says   string // and the failure says so, when given
		alone  bool   // the only failure
	}{
		{"alter one byte", func(dir string) *audit.Checkpoint {
			rewriteBundle(t, bundlePath(dir, 1, 256), func(r [][]byte) [][]byte {
				r[34] = bytes.Replace(r[34], []byte("test.append"), []byte("test.appenD"), 1)
				return r
			})
			return nil
		}, "entry-altered", 1*256 + 34, "", false},
		{"delete one", func(dir string) *audit.Checkpoint {
			rewriteBundle(t, bundlePath(dir, 2, 256), func(r [][]byte) [][]byte { return append(r[:7], r[8:]...) })
			return nil
		}, "entries", 2*256 + 255, "entry bundle tile/entries/002 holds 255 entries", false},
		{"insert one", func(dir string) *audit.Checkpoint {
			rewriteBundle(t, bundlePath(dir, 3, 256), func(r [][]byte) [][]byte {
				return append(r[:9], append([][]byte{r[9]}, r[9:]...)...)
			})
			return nil
		}, "entries", 3*256 + 256, "", false},
		{"alter one byte in the last, partial bundle", func(dir string) *audit.Checkpoint {
			rewriteBundle(t, bundlePath(dir, 5, last), func(r [][]byte) [][]byte {
				r[3] = bytes.Replace(r[3], []byte("test.append"), []byte("test.appenD"), 1)
				return r
			})
			return nil
		}, "entry-altered", 5*256 + 3, "", false},
		{"swap two", func(dir string) *audit.Checkpoint {
			rewriteBundle(t, bundlePath(dir, 4, 256), func(r [][]byte) [][]byte { r[1], r[2] = r[2], r[1]; return r })
			return nil
		}, "entry-altered", 4*256 + 1, "", false},
		{"truncate the tail and re-sign with another key", func(dir string) *audit.Checkpoint {
			os.Remove(bundlePath(dir, 5, last))
			_, sign := signWith(t, ck)
			short := audit.Checkpoint{Origin: ck.Origin, Size: 5 * 256, Root: ck.Root}
			os.WriteFile(filepath.Join(dir, "checkpoint"), sign(short), 0o644)
			return nil
		}, "checkpoint-signature", -1, "", true},
		{"roll back to an older checkpoint", func(dir string) *audit.Checkpoint {
			os.RemoveAll(dir)
			copyTo(t, olderDir, dir)
			return &ck
		}, "rollback", -1, "", true},
		{"fork: another root at the same size", func(dir string) *audit.Checkpoint {
			forked := ck
			forked.Root = tlog.RecordHash([]byte("another history"))
			return &forked
		}, "fork", -1, "", true},
		{"another root where the auditor last saw two whole bundles", func(dir string) *audit.Checkpoint {
			other := atBundle
			other.Root = tlog.RecordHash([]byte("another history"))
			return &other
		}, "consistency", -1, "the first 512 entries", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, realDir)
			prior := tt.tamper(dir)
			rep := verify(dir, prior)
			// The exact index: -1 for a failure of the whole log.
			if !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool {
				return f.Rule == tt.rule && f.Index == tt.index && strings.Contains(f.Msg, tt.says)
			}) {
				t.Fatalf("want failure %s at %d saying %q, got %v", tt.rule, tt.index, tt.says, rep.Failures)
			}
			if tt.alone && len(rep.Failures) != 1 {
				t.Fatalf("want %s alone, got %v", tt.rule, rep.Failures)
			}
			if tt.rule == "entry-altered" && !slices.ContainsFunc(rep.Failures, func(f audit.Failure) bool { return f.Rule == "tree" && f.Index == -1 }) {
				t.Fatalf("an altered entry without the whole log's tree failure: %v", rep.Failures)
			}
			if tt.rule == "entry-altered" { // exactly the altered entries are named: one, or the two swapped
				want := []int64{tt.index}
				if strings.HasPrefix(tt.name, "swap") {
					want = append(want, tt.index+1)
				}
				var named []int64
				for _, f := range rep.Failures {
					if f.Rule == tt.rule {
						named = append(named, f.Index)
					}
				}
				if !slices.Equal(named, want) {
					t.Fatalf("entries named altered: %v, want %v", named, want)
				}
			}
			t.Logf("caught: %v", rep.Failures[0])
		})
	}
}

// TestCompanionsLeftToTheReplay: the verifier's workers read companion data back ahead of the
// replay within a memory budget, and past it leave each record's companions for the replay to
// read itself. Either way every list is read and checked: with no budget at all, a step out of
// scope deep in a spilled batch is named, and so is an edited or removed companion.
func TestCompanionsLeftToTheReplay(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	recs := story(t0)
	values := make([]string, 400)
	for i := range values {
		values[i] = fmt.Sprintf("10.0.%d.%d", i>>8, i&255)
	}
	recs[1].Details["target_values"] = values
	at := recs[10].TS.Format(time.RFC3339Nano)
	var steps []map[string]any
	var targets []string
	for i, v := range values {
		if i == 333 {
			v = "198.51.100.66" // not approved
		}
		steps = append(steps, map[string]any{"target": v, "witness": "ex2", "at": at})
		targets = append(targets, v)
	}
	recs[10].Details = map[string]any{"targets": targets, "step_list": steps}
	recs = append(designations(t0), recs...)
	for i := range recs {
		if !strings.HasPrefix(recs[i].Action, "designation.") {
			recs[i].Measure = "m-spilled"
		}
	}
	dir := t.TempDir()
	vkey, _ := writeArchive(t, dir, len(recs), func(i int) *audit.Record { return &recs[i] })
	pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
	files, _ := os.ReadDir(filepath.Join(dir, "companions"))
	if len(files) != 3 { // the seal's target values, the batch's targets and its steps
		t.Fatalf("companions written: %d, want 3", len(files))
	}
	seal, batch := int64(3), int64(12) // the designations come first
	check := func(want func(*audit.Report) bool, what string) {
		t.Helper()
		for _, limit := range []int64{0, 1 << 30} {
			rep, err := audit.VerifyArchiveWithin(dir, pol, nil, limit)
			if err != nil {
				t.Fatal(err)
			}
			if !want(rep) {
				t.Fatalf("budget %d: %s: %v", limit, what, rep.Failures)
			}
		}
	}
	check(func(rep *audit.Report) bool {
		return len(rep.Failures) == 1 && hasFailure(rep, "scope", batch) && strings.Contains(rep.Failures[0].Msg, "198.51.100.66")
	}, "want the step out of scope alone")

	var largest string
	var size int64
	for _, f := range files {
		if info, _ := f.Info(); info.Size() > size {
			largest, size = f.Name(), info.Size()
		}
	}
	path := filepath.Join(dir, "companions", largest) // the steps
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, bytes.Replace(data, []byte(`"10.0.0.1"`), []byte(`"10.0.0.2"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	check(func(rep *audit.Report) bool { return hasFailure(rep, "companion", batch) }, "want the edited companion named")
	os.Remove(path)
	check(func(rep *audit.Report) bool { return hasFailure(rep, "companion", batch) }, "want the removed companion named")

	// The seal's target values, which every step is checked against.
	listed, _ := json.Marshal(values)
	sum := sha256.Sum256(listed)
	path = filepath.Join(dir, "companions", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(path, bytes.Replace(listed, []byte(`"10.0.0.7"`), []byte(`"198.51.100.66"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	check(func(rep *audit.Report) bool { return hasFailure(rep, "companion", seal) }, "want the edited seal named")
}
