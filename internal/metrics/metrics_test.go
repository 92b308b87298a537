package metrics

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMethodsClientsInventAddNoSeries: a method a client makes up (any token will do over
// HTTP/1.1) is counted as "other", so no one can grow /metrics without bound.
func TestMethodsClientsInventAddNoSeries(t *testing.T) {
	m := New(nil, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
	h := m.Instrument(Routed(mux))
	for i := range 200 {
		method := fmt.Sprintf("FOO%d%s", rand.Int(), strings.Repeat("X", i*15))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/", nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	var methods []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "takedown_http_request_duration_seconds_count{") {
			methods = append(methods, line)
		}
	}
	if len(methods) != 2 || !strings.Contains(string(body), `method="other"`) || !strings.Contains(string(body), `method="GET"`) {
		t.Fatalf("series after 200 invented methods and one GET (want 2):\n%s", strings.Join(methods, "\n"))
	}
}
