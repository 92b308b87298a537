package measure

import "testing"

// TestDigestIsOfTheCanonicalForm: key order and spacing do not change a digest; a value does;
// what is not JSON has none.
func TestDigestIsOfTheCanonicalForm(t *testing.T) {
	a, err := Digest([]byte(`{"b": 1, "a": "x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if a != "sha256:cdab067e9f3beb32d1252cfd63e492592fecbf591b0d08cadb24bb17f3864246" { // sha256sum of {"a":"x","b":1}
		t.Fatalf("digest %q", a)
	}
	if b, _ := Digest([]byte(`{"a":"x","b":1}`)); b != a {
		t.Errorf("key order changed the digest: %s, %s", a, b)
	}
	if c, _ := Digest([]byte(`{"a":"y","b":1}`)); c == a {
		t.Error("a changed value kept the digest")
	}
	if d, err := Digest([]byte(`{"a":`)); err == nil || d != "" {
		t.Errorf("not JSON: %q, %v", d, err)
	}
}
