package measure

import (
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

// TestTargetSum: the sum of a multiset of targets does not depend on their order or on the
// path of additions and removals that made it, it agrees with big-integer arithmetic modulo
// 2^256, it tells one target from another, and it reads back what it writes.
func TestTargetSum(t *testing.T) {
	gen := rapid.Custom(func(t *rapid.T) Target {
		return Target{Kind: "ip", Value: rapid.SampledFrom([]string{"203.0.113.10", "198.18.0.66", "update.example-c2.jp", "a", "b"}).Draw(t, "value"),
			Location: rapid.SampledFrom([]string{"domestic", "abroad"}).Draw(t, "location")}
	})
	mod := new(big.Int).Lsh(big.NewInt(1), 256)
	asBig := func(s TargetSum) *big.Int {
		v, _ := new(big.Int).SetString(s.String(), 16)
		return v
	}
	rapid.Check(t, func(t *rapid.T) {
		added := rapid.SliceOf(gen).Draw(t, "added")
		removed := rapid.SliceOfN(rapid.IntRange(0, 1<<20), 0, len(added)).Draw(t, "removed")
		var path, direct TargetSum
		want := new(big.Int)
		for _, x := range added {
			path.Add(x)
			want.Add(want, asBig(targetPoint(x)))
		}
		gone := map[int]bool{}
		for _, r := range removed {
			i := r % len(added)
			if gone[i] {
				continue
			}
			gone[i] = true
			var one TargetSum
			one.Add(added[i])
			path.Minus(one)
			want.Sub(want, asBig(targetPoint(added[i])))
		}
		for i := len(added) - 1; i >= 0; i-- { // the rest, in another order
			if !gone[i] {
				direct.Add(added[i])
			}
		}
		if path != direct {
			t.Fatalf("adding and removing gave %s, adding the rest %s", path, direct)
		}
		if got := asBig(path); got.Cmp(want.Mod(want, mod)) != 0 {
			t.Fatalf("sum %s, big-integer arithmetic %x", path, want)
		}
		back, err := ParseTargetSum(path.String())
		if err != nil || back != path {
			t.Fatalf("%s read back as %s (%v)", path, back, err)
		}
	})
	var a, b TargetSum
	a.Add(Target{Kind: "ip", Value: "203.0.113.10"})
	b.Add(Target{Kind: "ip", Value: "198.18.0.66"})
	if a == b {
		t.Fatal("two targets have one sum")
	}
	for _, bad := range []string{"", "zz", a.String()[:62]} {
		if _, err := ParseTargetSum(bad); err == nil {
			t.Errorf("ParseTargetSum(%q) accepted", bad)
		}
	}
	small := TargetSum{5}
	small.Plus(TargetSum{1})
	if small != (TargetSum{6}) {
		t.Fatalf("5 + 1 = %s", small)
	}
	var full TargetSum
	for i := range full {
		full[i] = ^uint64(0)
	}
	one := TargetSum{1}
	full.Plus(one)
	if full != (TargetSum{}) {
		t.Fatalf("2^256-1 + 1 = %s, want 0", full)
	}
	full.Minus(one)
	if full.String() != "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" {
		t.Fatalf("0 - 1 = %s", full)
	}
}
