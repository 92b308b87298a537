package audit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

// BenchmarkVerifySignature: one signature's check, as the server makes it before a decision
// and the verifier for each signed decision, against hashing the statement alone.
func BenchmarkVerifySignature(b *testing.B) {
	st := audit.DecisionStatement("m1", "m-1", 2, "sha256:ab", "vote", audit.Decided{Decision: "approve", Reason: "necessary"}, time.Now().UTC().Truncate(time.Second))
	pk, sk := newPasskey(&testing.T{}, "m1"), newSSHKey(&testing.T{}, "m1")
	psig, ssig := pk.sign(st, 0x05), sk.sign(st)
	b.Run("statement hash (baseline)", func(b *testing.B) {
		for b.Loop() {
			_ = st.Hash()
		}
	})
	b.Run("passkey P-256", func(b *testing.B) {
		for b.Loop() {
			pk.counter = 0
			if _, err := audit.Verify(&pk.key, st, psig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ssh ed25519", func(b *testing.B) {
		for b.Loop() {
			if _, err := audit.Verify(&sk.key, st, ssig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifySignedLog: the verifier's cost per signed decision, from two logs of the same
// shape (measures each with a legal review and three votes), one whose decisions are signed
// under a policy requiring it, one unsigned; both verified in each iteration.
func BenchmarkVerifySignedLog(b *testing.B) {
	const measures = 100
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	t := &testing.T{}
	var v2 []string
	for _, r := range authz.DefaultPolicy() {
		v2 = append(v2, r.Effect+" "+string(r.Role)+" "+r.Op)
	}
	v2 = append(v2, "sign * vote", "sign legal legal_review")
	leg, chair, m1, m2 := newSSHKey(t, "leg"), newPasskey(t, "chair"), newPasskey(t, "m1"), newSSHKey(t, "m2")
	signer := map[string]func(audit.Statement) *audit.Signature{"leg": leg.sign, "m2": m2.sign,
		"chair": func(st audit.Statement) *audit.Signature { return chair.sign(st, 0x05) },
		"m1":    func(st audit.Statement) *audit.Signature { return m1.sign(st, 0x05) }}
	build := func(signed bool) []audit.Record {
		recs := designations(t0)
		if signed {
			recs = append(recs, audit.Record{Actor: actor("adm1", "admin"), Action: "policy.proposed", TS: t0.Add(-2 * time.Hour), Details: map[string]any{"version": "v2", "rule_set": v2}},
				audit.Record{Actor: actor("adm2", "admin"), Action: "policy.approved", TS: t0.Add(-2 * time.Hour), Details: map[string]any{"version": "v2"}})
			recs = append(recs, registration(leg.key, signer["leg"], actor("adm1", "admin"), t0.Add(-time.Hour))...)
			recs = append(recs, registration(chair.key, signer["chair"], actor("adm1", "admin"), t0.Add(-time.Hour))...)
			recs = append(recs, registration(m1.key, signer["m1"], actor("adm1", "admin"), t0.Add(-time.Hour))...)
			recs = append(recs, registration(m2.key, signer["m2"], actor("adm1", "admin"), t0.Add(-time.Hour))...)
		}
		for i := range measures {
			m := story(t0.Add(time.Duration(i) * time.Hour))
			for j := range m {
				r := &m[j]
				r.Measure = fmt.Sprintf("m-%d", i)
				if signed {
					r.PolicyVersion = "v2"
				}
				if r.Action == "vote" || r.Action == "legal_review" {
					r.Reason = "as the evidence shows"
					if r.Action == "legal_review" {
						r.Details["decision"] = "approve"
					}
					if signed {
						st := audit.DecisionStatement(r.Actor.ID, r.Measure, r.Version, "sha256:v1", r.Action, audit.Decided{Decision: "approve", Reason: r.Reason}, r.TS.Add(-20*time.Second))
						r.Details["signature"] = sigDetails(signer[r.Actor.ID](st))
					}
				}
			}
			recs = append(recs, m...)
		}
		return recs
	}
	archive := func(recs []audit.Record) (string, audit.Policy) {
		dir := b.TempDir()
		vkey, _ := writeArchive(b, dir, len(recs), func(i int) *audit.Record { return &recs[i] })
		pol, _ := audit.ParsePolicy("log " + vkey + "\nquorum none\n")
		return dir, pol
	}
	plainDir, plainPol := archive(build(false))
	signedDir, signedPol := archive(build(true))
	var plain, signed time.Duration
	for b.Loop() {
		start := time.Now()
		rep, err := audit.VerifyArchive(plainDir, plainPol, nil)
		if err != nil || !rep.OK() {
			b.Fatalf("unsigned: %v %v", err, rep.Failures)
		}
		mid := time.Now()
		rep, err = audit.VerifyArchive(signedDir, signedPol, nil)
		if err != nil || !rep.OK() || rep.Signed != 4*measures {
			b.Fatalf("signed: %v, %d signed, %v", err, rep.Signed, rep.Failures)
		}
		plain, signed = plain+mid.Sub(start), signed+time.Since(mid)
	}
	n := float64(b.N)
	b.ReportMetric(float64(plain.Microseconds())/n/1000, "unsigned-ms")
	b.ReportMetric(float64(signed.Microseconds())/n/1000, "signed-ms")
	b.ReportMetric(float64(signed-plain)/n/float64(4*measures)/1000, "µs/signed-decision")
	b.ReportMetric(float64(signed)/float64(plain), "ratio")
}
