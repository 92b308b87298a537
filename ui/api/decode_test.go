package api

import (
	"strings"
	"testing"

	"github.com/takedown/takedown/audit"
)

// TestDecodeSaysJSONNotGo: a body of the wrong JSON kind is refused in JSON's words, never
// with a Go type's name.
func TestDecodeSaysJSONNotGo(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`[1, 2]`, "must be a JSON object"},
		{`"text"`, "must be a JSON object"},
		{`{"signature": []}`, "must be a JSON object"},
		{`{"signature": {"kind": 5}}`, "must be a JSON string"},
	} {
		var in struct {
			Signature *audit.Signature `json:"signature"`
		}
		err := decodeJSON(strings.NewReader(tt.body), &in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "struct") || strings.Contains(err.Error(), "audit.") {
			t.Errorf("%s: %v, want %q", tt.body, err, tt.want)
		}
	}
}
