package measure

import "testing"

// TestTargetHashCommitsToTheList: the hash counts the targets and commits to each and to their
// order; the empty list has sha256's empty digest.
func TestTargetHashCommitsToTheList(t *testing.T) {
	a := Target{Kind: "ip", Value: "203.0.113.10", Location: "domestic", Role: "c2"}
	b := Target{Kind: "domain", Value: "update.example-c2.jp", Location: "domestic", Role: "c2"}
	sum := func(ts ...Target) (string, int) {
		h := NewTargetHash()
		for _, t := range ts {
			h.Add(t)
		}
		return h.Sum(), h.Len()
	}
	if s, n := sum(); n != 0 || s != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("the empty list: %s, %d", s, n)
	}
	ab, n := sum(a, b)
	if n != 2 {
		t.Errorf("two targets counted as %d", n)
	}
	if again, _ := sum(a, b); again != ab {
		t.Error("the same list hashes differently")
	}
	ba, _ := sum(b, a)
	moved := a
	moved.Location = "abroad"
	other, _ := sum(moved, b)
	if ba == ab || other == ab {
		t.Error("the hash does not commit to the order or to every field")
	}
}
