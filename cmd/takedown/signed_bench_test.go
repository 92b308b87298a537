package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// BenchmarkSignedVote: what a signature adds to a vote on the server, from votes by the same
// member on measures of the same shape, unsigned and signed with a registered SSH key, taken
// in turn in one run (the client's signing is not timed; the server's check is).
func BenchmarkSignedVote(b *testing.B) {
	e := testenv.Start(b, workflows.DefaultConfig())
	ctx := context.Background()
	u := e.Users
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	line, _ := audit.ParseSSHKey(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	keyID := audit.KeyID(audit.KeySSH, line)
	sign := func(st audit.Statement) string {
		s, _ := signer.Sign(rand.Reader, audit.SSHSignedData(st.Bytes()))
		return audit.ArmorSSHSig(signer.PublicKey(), s)
	}
	t := time.Now().UTC().Truncate(time.Second)
	proof := sign(audit.Statement{Person: e.IDs["member1"], Op: audit.OpRegisterKey, Digest: keyID, Time: t})
	if err := u["member1"].Do(ctx, "POST", "/api/v1/keys", map[string]any{"kind": "ssh", "public_key": line,
		"proof": map[string]string{"kind": "ssh", "key": keyID, "time": t.Format(time.RFC3339), "sshsig": proof}}, nil); err != nil {
		b.Fatal(err)
	}
	if err := u["admin"].Do(ctx, "POST", "/api/v1/keys/"+keyID+"/approve", nil, nil); err != nil {
		b.Fatal(err)
	}
	ready := func() client.Measure {
		off := u["officer"]
		caseID, err := off.CreateCase(ctx, "bench", "bench")
		if err != nil {
			b.Fatal(err)
		}
		m, err := off.CreateMeasure(ctx, caseID, map[string]any{"title": "bench", "legal_basis": "police_duties_act_6_2",
			"kind": "self_execute", "technique": "disable_malware", "operations": []string{"x"}, "executors": []string{e.IDs["executor"]},
			"alternatives": []map[string]string{{"means": "ask", "outcome": "tried", "reason": "none"}},
			"necessity":    "n", "proportionality": "p", "collateral": "c", "rollback_plan": "r", "notification_plan": "n"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := off.AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": "203.0.113.10", "location": "domestic"}}); err != nil {
			b.Fatal(err)
		}
		for _, st := range []struct {
			who, op string
			body    map[string]any
		}{{"officer", "submit", nil}, {"legal", "legal_review", map[string]any{"decision": "approve", "checklist": []string{"harmful_telecommunication",
			"serious_harm", "urgency", "normally_necessary", "via_telecommunication_lines", "minimum_necessary"}}},
			{"commander", "command_review", map[string]any{"decision": "approve"}}} {
			if m, err = u[st.who].Act(ctx, m.ID, st.op, st.body); err != nil {
				b.Fatal(err)
			}
		}
		return m
	}
	var plain, signed time.Duration
	for b.Loop() {
		b.StopTimer()
		m1, m2 := ready(), ready()
		body := map[string]any{"decision": "approve", "digest": m2.Digest, "reason": "necessary"}
		var view struct{ Statement, Time string }
		if err := u["member1"].Do(ctx, "POST", "/api/v1/measures/"+m2.ID+"/statements/vote", body, &view); err != nil {
			b.Fatal(err)
		}
		var st map[string]any
		_ = json.Unmarshal([]byte(view.Statement), &st)
		at, _ := time.Parse(time.RFC3339, view.Time)
		s := audit.DecisionStatement(e.IDs["member1"], m2.ID, m2.Version, m2.Digest, "vote", audit.Decided{Decision: "approve", Reason: "necessary"}, at)
		body["signature"] = map[string]string{"kind": "ssh", "key": keyID, "time": view.Time, "sshsig": sign(s)}
		b.StartTimer()
		start := time.Now()
		if _, err := u["member1"].Act(ctx, m1.ID, "vote", map[string]any{"decision": "approve", "digest": m1.Digest, "reason": "necessary"}); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := u["member1"].Act(ctx, m2.ID, "vote", body); err != nil {
			b.Fatal(err)
		}
		plain, signed = plain+mid.Sub(start), signed+time.Since(mid)
	}
	n := float64(b.N)
	b.ReportMetric(float64(plain.Microseconds())/n/1000, "unsigned-ms")
	b.ReportMetric(float64(signed.Microseconds())/n/1000, "signed-ms")
	b.ReportMetric(float64(signed)/float64(plain), "ratio")
}
