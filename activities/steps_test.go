package activities

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/testdb"
)

// TestStagedSteps: the activity takes a stored batch only as the service stored it. A batch
// whose bytes were changed (a target, a time, a step dropped), that is gone, or that is not
// JSON is refused as unstaged, naming the digest; the batch as stored is read back whole.
func TestStagedSteps(t *testing.T) {
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.FixedZone("JST", 9*3600))
	steps := []measure.Step{
		{Target: "203.0.113.10", Technique: "disable_malware", Action: "sent <self-delete> & \u2028 checked", Result: "success", Witness: "u-w", At: at},
		{Target: "例え.jp", Technique: "disable_malware", Action: "a", Result: "partial", Witness: "u-w2", At: at.Add(time.Second)},
	}
	digest, err := audit.ContentDigest(steps)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(steps)
	b := measure.Summarise(digest, steps)
	b.Stored = "sb-1"
	for _, tc := range []struct {
		name, stored string // what the row holds; "" for no row
		says         string // "" for taken
	}{
		{"as stored", string(body), ""},
		{"a target changed", strings.Replace(string(body), "203.0.113.10", "198.18.0.66", 1), "does not hash"},
		{"a time moved", strings.Replace(string(body), "10:00:00.123456789", "09:00:00.123456789", 1), "does not hash"},
		{"a step dropped", string(body[:strings.Index(string(body), "},{")+1]) + "]", "does not hash"},
		{"not JSON", "steps", "does not decode"},
		{"gone", "", "is not stored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				if tc.stored != "" {
					if _, err := tx.Exec(ctx, `INSERT INTO step_batches (id, measure_id, digest, actor_id, steps) VALUES ('sb-1', 'm-1', $1, 'u-e', $2)`, digest, []byte(tc.stored)); err != nil {
						return err
					}
				}
				got, err := stagedSteps(ctx, tx, "m-1", b)
				if err != nil {
					return err
				}
				if len(got) != len(steps) || got[0].Action != steps[0].Action || !got[1].At.Equal(steps[1].At) || got[1].Target != steps[1].Target {
					t.Errorf("read back %+v, stored %+v", got, steps)
				}
				return errors.New("roll back")
			})
			var us *unstaged
			switch {
			case tc.says == "" && err.Error() != "roll back":
				t.Fatalf("refused: %v", err)
			case tc.says != "" && (!errors.As(err, &us) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), digest)):
				t.Fatalf("%v, want a refusal saying %q and naming %s", err, tc.says, digest)
			}
		})
	}
}

// TestSealCache: a version's sealed set is used for batches until as many targets were named
// as it holds, never below cachedFrom targets, never for another digest, and not after it was
// found altered; at most maxSealedSets versions are kept.
func TestSealCache(t *testing.T) {
	var c sealCache
	named := func(vs ...string) map[string]bool {
		m := map[string]bool{}
		for _, v := range vs {
			m[v] = true
		}
		return m
	}
	set := func(n int) map[string]bool {
		m := map[string]bool{}
		for i := range n {
			m["v"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune(i))] = true
		}
		m["in"] = true
		return m
	}
	small := sealKey{"m-small", 1, "sha256:s"}
	c.keep(small, set(10), 10)
	if _, ok := c.judge(small, 10, named("in")); ok {
		t.Fatal("a measure below cachedFrom targets was judged from memory")
	}
	big := sealKey{"m-big", 1, "sha256:b"}
	if _, ok := c.judge(big, cachedFrom, named("in")); ok {
		t.Fatal("a version never read was judged from memory")
	}
	c.keep(big, set(cachedFrom-1), cachedFrom)
	known, ok := c.judge(big, cachedFrom, named("in", "out"))
	if !ok || len(known) != 1 || known[0] != "in" {
		t.Fatalf("judged %v (%v), want [in] from memory", known, ok)
	}
	if _, ok := c.judge(sealKey{"m-big", 1, "sha256:other"}, cachedFrom, named("in")); ok {
		t.Fatal("another digest was judged from the remembered set")
	}
	if _, ok := c.judge(big, cachedFrom+1, named("in")); ok {
		t.Fatal("a seal of another size was judged from the remembered set")
	}
	many := map[string]bool{}
	for i := range cachedFrom - 3 {
		many[string(rune(0x4e00+i))] = true
	}
	if _, ok := c.judge(big, cachedFrom, many); !ok {
		t.Fatal("judged from memory before as many targets were named as the version holds")
	}
	if _, ok := c.judge(big, cachedFrom, named("in")); ok {
		t.Fatal("still judged from memory once as many targets were named as the version holds")
	}
	c.keep(big, set(cachedFrom-1), cachedFrom)
	c.forget(big)
	if _, ok := c.judge(big, cachedFrom, named("in")); ok {
		t.Fatal("a version found altered was judged from memory")
	}
	for i := range maxSealedSets + 2 {
		c.keep(sealKey{"m", i, "d"}, named("in"), cachedFrom)
	}
	if len(c.m) > maxSealedSets {
		t.Fatalf("%d versions kept, at most %d", len(c.m), maxSealedSets)
	}
}
