package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestOpenAPICoversEveryRoute: every route the server registers is in the document.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	var mux recorder
	s := &Server{}
	s.Register(&mux)
	s.RegisterLog(&mux)
	doc := openAPIDoc()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	paths := doc["paths"].(obj)
	if len(mux) < 20 {
		t.Fatalf("only %d routes registered", len(mux))
	}
	for _, route := range mux {
		method, path, _ := strings.Cut(route, " ")
		path = strings.Replace(path, "{path...}", "{path}", 1)
		p, ok := paths[path].(obj)
		if !ok || p[strings.ToLower(method)] == nil {
			t.Errorf("%s is not in the OpenAPI document", route)
		}
	}
	if !strings.Contains(string(raw), "Idempotency-Key") {
		t.Error("the document does not describe Idempotency-Key")
	}
}

type recorder []string

func (r *recorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*r = append(*r, pattern)
}
