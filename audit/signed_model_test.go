package audit_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

// TestSignedDecisionsModel writes random histories of keys proposed, registered and revoked
// by random people, and votes signed with random keys (or none), under a policy that requires
// every vote to be signed; a small model, written apart from the verifier, says which entries
// must fail, and the verifier must fail exactly those.
func TestSignedDecisionsModel(t *testing.T) {
	people := []string{"m1", "m2", "m3"}
	admins := []string{"adm1", "adm2"}
	// Each person has two passkeys of their own, made once: the model draws which is used.
	keys := map[string][]*passkey{}
	for _, p := range people {
		keys[p] = []*passkey{newPasskey(t, p), newPasskey(t, p)}
	}
	var v2 []string
	for _, r := range authz.DefaultPolicy() {
		v2 = append(v2, r.Effect+" "+string(r.Role)+" "+r.Op)
	}
	v2 = append(v2, "sign * vote")
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	rapid.Check(t, func(rt *rapid.T) {
		for _, ks := range keys {
			for _, k := range ks {
				k.counter = 0
			}
		}
		// The model: a key is proposed by its holder, registered by an administrator who is
		// not its holder after that, and in force until revoked by its holder, or by an
		// administrator naming another who proposed the revocation.
		type state struct{ proposed, registered, revoked bool }
		model := map[string]*state{}
		recs := []audit.Record{
			{Actor: actor("adm1", "admin"), Action: "policy.proposed", TS: t0, Details: map[string]any{"version": "v2", "rule_set": v2}},
			{Actor: actor("adm2", "admin"), Action: "policy.approved", TS: t0, Details: map[string]any{"version": "v2"}},
		}
		var bad []int64 // the entries the model says must fail
		at := func() time.Time { return t0.Add(time.Duration(len(recs)) * time.Minute) }
		add := func(r audit.Record, fails bool) {
			if fails {
				bad = append(bad, int64(2+len(recs))) // forged puts two designations first
			}
			recs = append(recs, r)
		}
		pick := func(label string) *passkey {
			p := rapid.SampledFrom(people).Draw(rt, label+" holder")
			return keys[p][rapid.IntRange(0, 1).Draw(rt, label+" key")]
		}
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for i := range steps {
			ts := at()
			switch rapid.IntRange(0, 4).Draw(rt, fmt.Sprint("event ", i)) {
			case 0: // a proposal, by the holder or by someone else in their name
				k := pick("propose")
				by := k.key.User
				if rapid.IntRange(0, 4).Draw(rt, "forged proposal") == 0 {
					by = rapid.SampledFrom(append(people, admins...)).Draw(rt, "proposer")
				}
				d := keyDetails(k.key)
				d["signature"] = sigDetails(k.sign(audit.Statement{Person: k.key.User, Op: audit.OpRegisterKey, Digest: k.key.ID, Time: ts.Add(-10 * time.Second)}, 0x05))
				st := model[k.key.ID]
				if st == nil {
					st = &state{}
					model[k.key.ID] = st
				}
				if by == k.key.User {
					st.proposed = true
				}
				add(audit.Record{Actor: actor(by, "commissioner"), Action: audit.KeyProposed, TS: ts, Details: d}, by != k.key.User)
			case 1: // a registration, by an administrator or by someone who is not one
				k := pick("register")
				by := rapid.SampledFrom(append(admins, k.key.User)).Draw(rt, "registrar")
				role := "admin"
				if rapid.IntRange(0, 5).Draw(rt, "registrar role") == 0 {
					role = "commissioner"
				}
				st := model[k.key.ID]
				ok := st != nil && st.proposed && !st.registered && role == "admin" && by != k.key.User
				if ok {
					st.registered = true
				}
				add(audit.Record{Actor: actor(by, role), Action: audit.KeyRegistered, TS: ts, Details: keyDetails(k.key)}, !ok)
			case 2: // a revocation, by the holder, or by an administrator with or without a second
				k := pick("revoke")
				by := rapid.SampledFrom(append(admins, k.key.User)).Draw(rt, "revoker")
				d := keyDetails(k.key)
				role := "commissioner"
				if by != k.key.User {
					role = "admin"
					if p := rapid.SampledFrom([]string{"", "adm1", "adm2"}).Draw(rt, "proposed by"); p != "" {
						d["proposed_by"] = p
					}
				}
				st := model[k.key.ID]
				registered := st != nil && st.registered
				ok := registered && (by == k.key.User || (d["proposed_by"] != nil && d["proposed_by"] != by))
				if ok {
					st.revoked = true
				}
				add(audit.Record{Actor: actor(by, role), Action: audit.KeyRevoked, TS: ts, Details: d}, !ok)
			default: // a vote by someone, signed with some key, or not signed
				voter := rapid.SampledFrom(people).Draw(rt, "voter")
				r := audit.Record{Actor: actor(voter, "commissioner"), Action: "vote", Measure: "m-model", From: "COMMISSION_REVIEW", To: "COMMISSION_REVIEW",
					Version: 1, TS: ts, PolicyVersion: "v2", Details: map[string]any{"vote": "approve", "digest": "sha256:v1"}}
				ok := false
				if rapid.IntRange(0, 4).Draw(rt, "unsigned") != 0 {
					k := pick("sign with")
					st := model[k.key.ID]
					ok = st != nil && st.registered && !st.revoked && k.key.User == voter
					s := audit.DecisionStatement(voter, "m-model", 1, "sha256:v1", "vote", audit.Decided{Decision: "approve"}, ts.Add(-10*time.Second))
					r.Details["signature"] = sigDetails(k.sign(s, 0x05))
				}
				add(r, !ok)
			}
		}
		rep := forged(t, recs)
		var got []int64
		for _, f := range rep.Failures {
			if slices.Contains([]string{"signature", "key", "two-person"}, f.Rule) && !slices.Contains(got, f.Index) {
				got = append(got, f.Index)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, bad) {
			rt.Fatalf("the verifier fails entries %v, the model %v: %v", got, bad, rep.Failures)
		}
	})
}
