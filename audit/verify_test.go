package audit_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/takedown/takedown/audit"
)

// rawArchive writes an archive of the raw records given, signed by a fresh log key: what a
// log holding them exactly would export. It returns the policy that trusts that key, and the
// key.
func rawArchive(t *testing.T, dir string, raws ...string) (audit.Policy, string) {
	t.Helper()
	mem := &memTree{}
	var bundle []byte
	for i, r := range raws {
		if err := mem.add(int64(i), []byte(r)); err != nil {
			t.Fatal(err)
		}
		bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(r)))
		bundle = append(bundle, r...)
	}
	p := filepath.Join(dir, "tile", filepath.FromSlash(audit.TilePath(-1, 0, len(raws))))
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := tlog.TreeHash(int64(len(raws)), mem)
	if err != nil {
		t.Fatal(err)
	}
	_, signer, vkey := newLogKeyOnly(t)
	signed, err := note.Sign(&note.Note{Text: audit.Checkpoint{Origin: origin, Size: int64(len(raws)), Root: root}.Text()}, signer)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "checkpoint"), signed, 0o644)
	pol, err := audit.ParsePolicy("log " + vkey + "\nquorum none\norigin " + origin + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return pol, vkey
}

// wholeLog reports whether rep holds a failure of rule about the whole log (index -1, and
// printed without one).
func wholeLog(rep *audit.Report, rule string) bool {
	for _, f := range rep.Failures {
		if f.Rule == rule && f.Index == -1 && strings.HasPrefix(f.String(), rule+": ") {
			return true
		}
	}
	return false
}

// TestFailureNamesItsEntry: a failure about one entry reads with its index, one about the
// whole log without.
func TestFailureNamesItsEntry(t *testing.T) {
	if got := (audit.Failure{Index: 7, Rule: "SoD-1", Msg: "m"}).String(); got != "index 7: SoD-1: m" {
		t.Errorf("%q", got)
	}
	if got := (audit.Failure{Index: 0, Rule: "record", Msg: "m"}).String(); got != "index 0: record: m" {
		t.Errorf("%q", got)
	}
	if got := (audit.Failure{Index: -1, Rule: "fork", Msg: "m"}).String(); got != "fork: m" {
		t.Errorf("%q", got)
	}
}

const okRecord = `{"action":"test","actor":{"id":"u","org":"o","roles":["officer"]},"id":"a","log":"takedown.audit/v1","policy_version":"none","ts":"2026-11-02T09:00:00Z","v":1}`

// TestVerifyArchiveNamesWhatIsWrong: an archive's own faults, each named by the verifier with
// its rule: a checkpoint of another log, a record that is not JSON, one not in canonical
// form under a strict policy, a companion that is not JSON; and an auditor's saved state
// that disagrees (rollback, fork, a prefix that is not this log's) is a fork they can show.
func TestVerifyArchiveNamesWhatIsWrong(t *testing.T) {
	verify := func(t *testing.T, dir string, pol audit.Policy, prior *audit.Checkpoint) *audit.Report {
		t.Helper()
		rep, err := audit.VerifyArchive(dir, pol, prior)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	t.Run("an honest archive", func(t *testing.T) {
		dir := t.TempDir()
		pol, _ := rawArchive(t, dir, okRecord)
		if rep := verify(t, dir, pol, nil); !rep.OK() || rep.Forked() || rep.Records != 1 {
			t.Fatalf("%+v", rep)
		}
	})
	t.Run("another log's checkpoint", func(t *testing.T) {
		dir := t.TempDir()
		pol, _ := rawArchive(t, dir, okRecord)
		pol.Origin = "takedown.other/audit"
		if rep := verify(t, dir, pol, nil); !wholeLog(rep, "checkpoint") || !strings.Contains(rep.Failures[0].Msg, "takedown.other/audit") {
			t.Fatalf("%v", rep.Failures)
		}
	})
	t.Run("a record that is not JSON", func(t *testing.T) {
		dir := t.TempDir()
		pol, _ := rawArchive(t, dir, okRecord, `{"action":`)
		if rep := verify(t, dir, pol, nil); !hasFailure(rep, "record", 1) || !strings.Contains(rep.Failures[0].Msg, "not a JSON audit record") {
			t.Fatalf("%v", rep.Failures)
		}
	})
	t.Run("a record out of canonical form, strictly", func(t *testing.T) {
		dir := t.TempDir()
		spaced := strings.Replace(okRecord, `"action":"test"`, `"action": "test"`, 1)
		pol, vkey := rawArchive(t, dir, okRecord, spaced)
		if rep := verify(t, dir, pol, nil); !rep.OK() {
			t.Fatalf("lenient: %v", rep.Failures)
		}
		for _, line := range []string{"strict", "strict false"} {
			if p, err := audit.ParsePolicy("log " + vkey + "\nquorum none\n" + line + "\n"); err != nil || p.Strict != (line == "strict") {
				t.Fatalf("policy line %q: strict %v (%v)", line, p.Strict, err)
			}
		}
		pol, _ = audit.ParsePolicy("log " + vkey + "\nquorum none\nstrict true\n")
		if rep := verify(t, dir, pol, nil); len(rep.Failures) != 1 || !hasFailure(rep, "record", 1) || !strings.Contains(rep.Failures[0].Msg, "RFC 8785") {
			t.Fatalf("strict: %v", rep.Failures)
		}
	})
	t.Run("a companion that is not JSON", func(t *testing.T) {
		dir := t.TempDir()
		h := sha256.Sum256([]byte("[{"))
		sum := hex.EncodeToString(h[:])
		rec := strings.Replace(okRecord, `"action":"test"`, `"action":"log_steps","details":{"companions":{"step_list":"sha256:`+sum+`"}}`, 1)
		pol, _ := rawArchive(t, dir, rec)
		os.MkdirAll(filepath.Join(dir, "companions"), 0o755)
		os.WriteFile(filepath.Join(dir, "companions", sum), []byte("[{"), 0o644)
		if rep := verify(t, dir, pol, nil); !hasFailure(rep, "companion", 0) || !strings.Contains(rep.Failures[0].Msg, "is not JSON") {
			t.Fatalf("%v", rep.Failures)
		}
	})
	t.Run("the auditor's saved state", func(t *testing.T) {
		dir := t.TempDir()
		pol, _ := rawArchive(t, dir, okRecord, okRecord, okRecord)
		rep := verify(t, dir, pol, nil)
		ck := rep.Checkpoint
		// The state an auditor saves is the signed note: read back under the policy, and
		// refused when another key signed it; an older state is the checkpoint's text alone.
		if got, err := audit.ReadState(rep.Note, pol); err != nil || got != ck {
			t.Fatalf("saved state: %v %v", got, err)
		}
		if got, err := audit.ReadState([]byte(ck.Text()), pol); err != nil || got != ck {
			t.Fatalf("an older state: %v %v", got, err)
		}
		otherPol, _ := rawArchive(t, t.TempDir(), okRecord)
		if _, err := audit.ReadState(rep.Note, otherPol); err == nil {
			t.Fatal("a state signed by another key was read")
		}
		bigger := ck
		bigger.Size++
		other := ck
		other.Root = tlog.Hash{1}
		prefix := audit.Checkpoint{Origin: ck.Origin, Size: 2, Root: tlog.Hash{2}}
		for name, tt := range map[string]struct {
			prior audit.Checkpoint
			rule  string
		}{"rollback": {bigger, "rollback"}, "fork": {other, "fork"}, "not a prefix": {prefix, "consistency"}} {
			rep := verify(t, dir, pol, &tt.prior)
			if !wholeLog(rep, tt.rule) || !rep.Forked() {
				t.Errorf("%s: %v (forked %v)", name, rep.Failures, rep.Forked())
			}
		}
		// A prior that is a true prefix is consistent.
		same := verify(t, dir, pol, &ck)
		if !same.OK() || same.Forked() {
			t.Fatalf("the same checkpoint again: %v", same.Failures)
		}
	})
}

// TestAuditorPolicyRequiresEveryWitness: the policy dev writes for its auditors trusts the
// log's keys and needs every witness the log asks: none, the one, or all of several.
func TestAuditorPolicyRequiresEveryWitness(t *testing.T) {
	_, _, logKey := newLogKeyOnly(t)
	var wkeys []string
	for i := range 3 {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := torchwood.NewCosignatureSigner(fmt.Sprintf("w%d.test", i), priv)
		if err != nil {
			t.Fatal(err)
		}
		wkeys = append(wkeys, s.Verifier().String())
	}
	for n, want := range []string{"quorum none\n", "quorum w0.test\n", "group witnesses all w0.test w1.test w2.test\nquorum witnesses\n"} {
		keys := wkeys[:n]
		if n == 2 {
			keys = wkeys
		}
		text := audit.AuditorPolicy([]string{logKey}, keys)
		if !strings.HasPrefix(text, "log "+logKey+"\n") || !strings.HasSuffix(text, want) {
			t.Errorf("%d witnesses:\n%s", len(keys), text)
		}
		pol, err := audit.ParsePolicy(text)
		if err != nil || len(pol.Witnesses) != len(keys) {
			t.Errorf("%d witnesses: the policy does not parse back (%v)", len(keys), err)
		}
	}
}

// TestParsePolicyReadsWhatAnAuditorWrites: each line of the policy file as an auditor would
// write it, or get wrong, and what the verifier then holds the log to.
func TestParsePolicyReadsWhatAnAuditorWrites(t *testing.T) {
	_, _, k1 := newLogKeyOnly(t)
	_, _, k2 := newLogKeyOnly(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ws, err := torchwood.NewCosignatureSigner("w1.test", priv)
	if err != nil {
		t.Fatal(err)
	}
	wk := ws.Verifier().String()
	tests := []struct {
		name, text string
		check      func(audit.Policy) string // what is wrong with the policy read, or ""
		err        string                    // the refusal, when the file is refused
	}{
		{"the defaults", "log " + k1 + "\nquorum none\n", func(p audit.Policy) string {
			if p.EmergencyNotification != 24*time.Hour || p.QuorumMembers != 2 || p.CommissionSize != 5 || p.Strict {
				return fmt.Sprintf("defaults %v %d %d %v", p.EmergencyNotification, p.QuorumMembers, p.CommissionSize, p.Strict)
			}
			if p.Origin != origin || p.LogKey != k1 || len(p.Witnesses) != 0 || p.Quorum != "none" {
				return fmt.Sprintf("origin %q key %q witnesses %v quorum %q", p.Origin, p.LogKey, p.Witnesses, p.Quorum)
			}
			return ""
		}, ""},
		{"every setting, with comments", "# the auditor's policy\nlog " + k1 + " https://log.example # the log\norigin other.example/log\n" +
			"emergency-notification 36h\nquorum-members 3\ncommission-size 7\nstrict\nquorum none\n", func(p audit.Policy) string {
			if p.Origin != "other.example/log" || p.EmergencyNotification != 36*time.Hour || p.QuorumMembers != 3 || p.CommissionSize != 7 || !p.Strict {
				return fmt.Sprintf("%+v", p)
			}
			return ""
		}, ""},
		{"strict written out, and not", "log " + k1 + "\nstrict false\nquorum none\n", func(p audit.Policy) string {
			if p.Strict {
				return "strict false read as strict"
			}
			return ""
		}, ""},
		{"a key rotation: two log keys", "log " + k1 + "\nlog " + k2 + "\nquorum none\n", func(p audit.Policy) string {
			if p.LogKey != k1 || len(p.LogKeys) != 2 || p.LogKeys[1] != k2 {
				return fmt.Sprintf("key %q keys %v", p.LogKey, p.LogKeys)
			}
			return ""
		}, ""},
		{"a witness with and without its URL", "log " + k1 + "\nwitness w1 " + wk + " https://w1.example\nwitness w2 " + wk + "\ngroup g any w1 w2\nquorum g\n", func(p audit.Policy) string {
			if len(p.Witnesses) != 2 || p.Witnesses[0] != (audit.PolicyWitness{Name: "w1", VKey: wk, URL: "https://w1.example"}) || p.Witnesses[1].URL != "" || p.Quorum != "g" {
				return fmt.Sprintf("witnesses %+v quorum %q", p.Witnesses, p.Quorum)
			}
			return ""
		}, ""},
		{"no log key", "quorum none\n", nil, "no `log <verifier key>` line"},
		{"a log line without its key", "log\nquorum none\n", nil, "line 1: write `log <verifier key>`"},
		{"a log key that is not one", "log takedown+00+AA\nquorum none\n", nil, "line 1"},
		{"no quorum", "log " + k1 + "\n", nil, "no `quorum` line"},
		{"a quorum line naming nothing", "log " + k1 + "\nquorum\n", nil, "no `quorum` line"},
		{"a witness without its key", "log " + k1 + "\nwitness w1\nquorum w1\n", nil, "line 2: write `witness NAME VKEY [URL]`"},
		{"the old witnesses line", "log " + k1 + "\nwitnesses 2\nquorum none\n", nil, "replaced by the C2SP policy's"},
		{"a quorum of a witness never named", "log " + k1 + "\nquorum w9\n", nil, "policy:"},
		{"a duration that is not one", "log " + k1 + "\nemergency-notification a day\nquorum none\n", nil, "line 2"},
		{"a quorum size that is not a number", "log " + k1 + "\nquorum-members two\nquorum none\n", nil, "line 2"},
		{"a Commission size that is not a number", "log " + k1 + "\ncommission-size five\nquorum none\n", nil, "line 2"},
		{"a setting that does not exist", "log " + k1 + "\nquorom none\n", nil, `line 2: unknown setting "quorom"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := audit.ParsePolicy(tt.text)
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("read with error %v, want one saying %q", err, tt.err)
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.check != nil:
				if why := tt.check(p); why != "" {
					t.Fatal(why)
				}
			}
		})
	}
}

// TestVerifyArchiveAtItsEdges: archives an honest log makes at the edges of the format (whole
// bundles only, a key rotation, an auditor who saw the empty log, witnesses) verify; a
// checkpoint that says nothing, or lacks its witness, does not.
func TestVerifyArchiveAtItsEdges(t *testing.T) {
	rec := func(i int) *audit.Record {
		return &audit.Record{Actor: audit.Actor{ID: "u-test"}, Action: "test.append", Details: map[string]any{"n": i}}
	}
	verify := func(t *testing.T, dir string, text string, prior *audit.Checkpoint) *audit.Report {
		t.Helper()
		pol, err := audit.ParsePolicy(text)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.VerifyArchive(dir, pol, prior)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	t.Run("whole bundles only", func(t *testing.T) {
		dir := t.TempDir()
		vkey, _ := writeArchive(t, dir, 2*audit.EntriesPerTile, rec)
		if rep := verify(t, dir, "log "+vkey+"\nquorum none\n", nil); !rep.OK() || rep.Records != 2*audit.EntriesPerTile {
			t.Fatalf("%d records: %v", rep.Records, rep.Failures)
		}
	})
	t.Run("one bundle but one entry", func(t *testing.T) {
		dir := t.TempDir()
		vkey, _ := writeArchive(t, dir, audit.EntriesPerTile-1, rec)
		if rep := verify(t, dir, "log "+vkey+"\nquorum none\n", nil); !rep.OK() || rep.Records != audit.EntriesPerTile-1 {
			t.Fatalf("%d records: %v", rep.Records, rep.Failures)
		}
	})
	t.Run("signed by the second key of a rotation", func(t *testing.T) {
		dir := t.TempDir()
		_, _, oldKey := newLogKeyOnly(t)
		_, next, newKey := newLogKeyOnly(t)
		writeSigned(t, dir, 3, rec, next)
		if rep := verify(t, dir, "log "+oldKey+"\nlog "+newKey+"\nquorum none\n", nil); !rep.OK() {
			t.Fatalf("%v", rep.Failures)
		}
	})
	t.Run("an auditor who saw the empty log", func(t *testing.T) {
		dir := t.TempDir()
		vkey, _ := writeArchive(t, dir, 3, rec)
		empty, _ := tlog.TreeHash(0, nil)
		if rep := verify(t, dir, "log "+vkey+"\nquorum none\n", &audit.Checkpoint{Origin: origin, Size: 0, Root: empty}); !rep.OK() || rep.Forked() {
			t.Fatalf("%v", rep.Failures)
		}
	})
	t.Run("a signed checkpoint that is not a checkpoint", func(t *testing.T) {
		dir := t.TempDir()
		_, signer, vkey := newLogKeyOnly(t)
		writeSigned(t, dir, 3, rec, signer)
		signed, err := note.Sign(&note.Note{Text: "not a checkpoint\n"}, signer)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "checkpoint"), signed, 0o644)
		if rep := verify(t, dir, "log "+vkey+"\nquorum none\n", nil); !wholeLog(rep, "checkpoint") {
			t.Fatalf("%v", rep.Failures)
		}
	})
	t.Run("a witness's cosignature, present and missing", func(t *testing.T) {
		dir := t.TempDir()
		_, signer, vkey := newLogKeyOnly(t)
		ck, _ := writeSigned(t, dir, 3, rec, signer)
		var wkeys []string
		var cosigners []note.Signer
		for i := range 2 {
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			w, err := torchwood.NewCosignatureSigner(fmt.Sprintf("w%d.test", i), priv)
			if err != nil {
				t.Fatal(err)
			}
			wkeys, cosigners = append(wkeys, w.Verifier().String()), append(cosigners, w)
		}
		policy := "log " + vkey + "\nwitness w0 " + wkeys[0] + "\nwitness w1 " + wkeys[1] + "\n"
		if rep := verify(t, dir, policy+"quorum w0\n", nil); !wholeLog(rep, "witnesses") || !strings.Contains(rep.Failures[0].Msg, "none of the policy's witnesses") {
			t.Fatalf("no cosignature: %v", rep.Failures)
		}
		signed, err := note.Sign(&note.Note{Text: ck.Text()}, signer, cosigners[1])
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "checkpoint"), signed, 0o644)
		if rep := verify(t, dir, policy+"quorum w0\n", nil); !wholeLog(rep, "witnesses") || !strings.Contains(rep.Failures[0].Msg, "cosigned by w1") {
			t.Fatalf("another witness's cosignature: %v", rep.Failures)
		}
		if rep := verify(t, dir, policy+"quorum w1\n", nil); !rep.OK() {
			t.Fatalf("cosigned as the policy asks: %v", rep.Failures)
		}
	})
}
