package daemon_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
)

// TestDecisionOnTheVersionSeen is the race a member meets when they read a measure, leave it
// open, and decide after it was returned and came back changed: the decision is refused,
// names both versions and records nothing; read again, it is recorded on what they read.
func TestDecisionOnTheVersionSeen(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	first := mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")

	// member3 reads version 1.
	seen, err := u["member3"].Measure(ctx, id)
	if err != nil || seen.Digest != first.Digest || seen.Version != 1 {
		t.Fatalf("member3 reads %+v (%v), want version 1 %s", seen, err, first.Digest)
	}
	// The Commission returns it; a target is added; it comes back as version 2.
	for _, who := range []string{"chair", "member1"} {
		mustAct(t, u[who], id, "vote", vote("return"), "COMMISSION_REVIEW")
	}
	mustAct(t, u["member2"], id, "vote", vote("return"), "DRAFT")
	if _, err := u["officer"].AddTargets(ctx, id, []map[string]any{{"kind": "cidr", "value": "10.0.0.0/8", "location": "domestic"}}); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	now := mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	if now.Version != 2 || now.Digest == first.Digest {
		t.Fatalf("back before the Commission as %d %s, want version 2 with a new digest", now.Version, now.Digest)
	}

	// Every operation that judges a version refuses the digest of version 1, names both
	// versions, and records nothing.
	refused := func(who, op string, body map[string]any, status int, code string) *client.Error {
		t.Helper()
		var ce *client.Error
		_, err := u[who].Act(ctx, id, op, body)
		if !errors.As(err, &ce) || ce.Status != status || ce.Code != code || ce.Field != "digest" {
			t.Fatalf("%s %s with %v: %v, want %d %s naming digest", who, op, body["digest"], err, status, code)
		}
		return ce
	}
	for _, tt := range []struct {
		who, op string
		body    map[string]any
	}{
		{"member3", "vote", map[string]any{"decision": "approve"}},
		{"member3", "request_info", map[string]any{"reason": "the hosting contract"}},
		{"member4", "declare_conflict", map[string]any{"conflicted": true, "reason": "former counsel"}},
	} {
		tt.body["digest"] = first.Digest
		if ce := refused(tt.who, tt.op, tt.body, 409, "stale_version"); ce.Seen != 1 || ce.Current != 2 {
			t.Fatalf("%s on version 1 names versions %d and %d, want 1 and 2: %s", tt.op, ce.Seen, ce.Current, ce.Message)
		}
	}
	ds, err := u["chair"].Decisions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Version == 2 && d.Kind != "legal" && d.Kind != "command" {
			t.Fatalf("a refused decision was recorded: %+v", d)
		}
	}
	if m, _ := u["chair"].Measure(ctx, id); m.Stage != "COMMISSION_REVIEW" {
		t.Fatalf("after refused decisions the measure is %s", m.Stage)
	}
	// A decision naming no digest is refused naming the field; one on no version at all too; a
	// digest on an operation that judges none is a mistake, not ignored.
	refused("member3", "vote", map[string]any{"decision": "approve", "digest": ""}, 400, "invalid")
	if ce := refused("member3", "vote", map[string]any{"decision": "approve", "digest": "sha256:0123"}, 409, "stale_version"); ce.Seen != 0 {
		t.Fatalf("a digest of no version is named as version %d", ce.Seen)
	}
	refused("officer", "withdraw", map[string]any{"reason": "no longer needed", "digest": now.Digest}, 400, "invalid")

	// What changed since version 1: the target added.
	var changes struct {
		Changes struct {
			From  int `json:"from"`
			Added []struct {
				Value string `json:"value"`
			} `json:"added"`
		} `json:"changes"`
	}
	if err := u["member3"].Do(ctx, "GET", "/api/v1/measures/"+id+"/changes?from=1", nil, &changes); err != nil {
		t.Fatal(err)
	}
	if changes.Changes.From != 1 || !slices.ContainsFunc(changes.Changes.Added, func(a struct {
		Value string `json:"value"`
	}) bool {
		return a.Value == "10.0.0.0/8"
	}) {
		t.Fatalf("changes since version 1: %+v", changes.Changes)
	}

	// Read again, the vote is recorded on version 2, and its audit record carries that digest.
	mustAct(t, u["member3"], id, "vote", map[string]any{"decision": "approve", "digest": now.Digest}, "COMMISSION_REVIEW")
	ds, _ = u["chair"].Decisions(ctx, id)
	if !slices.ContainsFunc(ds, func(d client.Decision) bool {
		return d.Kind == "vote" && d.By == e.IDs["member3"] && d.Version == 2 && d.Digest == now.Digest
	}) {
		t.Fatalf("member3's vote on version 2 is not recorded with its digest: %+v", ds)
	}
	h, err := u["chair"].History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	votes := 0
	for _, r := range h {
		if r.Action == "vote" && r.Version == 2 {
			votes++
			if r.Details["digest"] != now.Digest {
				t.Fatalf("the vote's audit record carries digest %v, want %s", r.Details["digest"], now.Digest)
			}
		}
	}
	if votes != 1 {
		t.Fatalf("%d votes recorded on version 2, want 1", votes)
	}
}

// TestCLIDecisionOnTheVersionSeen is the same race through the CLI: the digest `measure show
// -digest` printed is refused once the measure has moved on; a script that names none is
// refused before anything is sent; the new digest is accepted.
func TestCLIDecisionOnTheVersionSeen(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "takedown")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/takedown").CombinedOutput(); err != nil {
		t.Fatalf("build the CLI: %v\n%s", err, out)
	}
	e := testenv.Shared(t)
	u := e.Users
	cli := func(who string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TAKEDOWN_SERVER="+e.D.URL, "TAKEDOWN_TOKEN="+u[who].Token)
		cmd.Stdin = strings.NewReader("y\n") // not a terminal: no question is asked
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")
	seen, err := cli("member3", "measure", "show", "-digest", id)
	if err != nil || !strings.HasPrefix(seen, "sha256:") {
		t.Fatalf("measure show -digest: %q (%v)", seen, err)
	}
	seen = strings.TrimSpace(seen)
	for _, who := range []string{"chair", "member1"} {
		mustAct(t, u[who], id, "vote", vote("return"), "COMMISSION_REVIEW")
	}
	mustAct(t, u["member2"], id, "vote", vote("return"), "DRAFT")
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	mustAct(t, u["legal"], id, "legal_review", legalApproval, "COMMAND_REVIEW")
	now := mustAct(t, u["commander"], id, "command_review", map[string]any{"decision": "approve"}, "COMMISSION_REVIEW")

	out, err := cli("member3", "act", "-measure", id, "-op", "vote", "-decision", "approve", "-digest", seen)
	if err == nil || !strings.Contains(out, "409 stale_version") || !strings.Contains(out, "version 1") || !strings.Contains(out, "version 2") {
		t.Fatalf("a vote on the digest read before the return: %v\n%s", err, out)
	}
	out, err = cli("member3", "act", "-measure", id, "-op", "vote", "-decision", "approve")
	if err == nil || !strings.Contains(out, "-digest is required") || !strings.Contains(out, now.Digest) {
		t.Fatalf("a scripted vote naming no digest: %v\n%s", err, out)
	}
	if ds, _ := u["chair"].Decisions(context.Background(), id); slices.ContainsFunc(ds, func(d client.Decision) bool { return d.By == e.IDs["member3"] }) {
		t.Fatalf("a refused vote was recorded: %+v", ds)
	}
	out, err = cli("member3", "act", "-measure", id, "-op", "vote", "-decision", "approve", "-digest", now.Digest)
	if err != nil || !strings.Contains(out, "COMMISSION_REVIEW (version 2)") {
		t.Fatalf("a vote on the version read: %v\n%s", err, out)
	}
}
