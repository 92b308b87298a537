package daemon

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRequestIDsReachTheLog: a line logged while serving a request carries the ID the client
// is answered with; a caller's sane ID is kept, a hostile one replaced.
func TestRequestIDsReachTheLog(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	h := withRequestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.ErrorContext(r.Context(), "the database is not answering", "measure", "m-1")
		w.WriteHeader(http.StatusServiceUnavailable)
	}), log)
	for _, tt := range []struct{ sent, want string }{
		{"", ""},
		{"edge-7f3a.1", "edge-7f3a.1"},
		{"a\nb", ""},
		{strings.Repeat("x", 65), ""},
		{`"}{"admin":true`, ""},
	} {
		buf.Reset()
		req := httptest.NewRequest("GET", "/api/v1/me", nil)
		if tt.sent != "" {
			req.Header["X-Request-Id"] = []string{tt.sent}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-ID")
		if id == "" || tt.want != "" && id != tt.want || tt.want == "" && id == tt.sent {
			t.Errorf("sent %q, answered %q", tt.sent, id)
		}
		var line map[string]any
		if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
			t.Fatalf("not one JSON line: %v\n%s", err, buf.String())
		}
		if line["request_id"] != id || line["measure"] != "m-1" || line["level"] != "ERROR" {
			t.Errorf("logged %v, want request_id %q", line, id)
		}
	}
	for _, bad := range [][2]string{{"loud", "text"}, {"info", "xml"}} {
		if _, err := NewLogger(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("level %q format %q accepted", bad[0], bad[1])
		}
	}
}
