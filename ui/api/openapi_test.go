package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/takedown/takedown/internal/measure"
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

// TestOpenAPILimitsAreTheDoorsLimits: the maxLength the document gives an action's text field
// is what the door accepts, and one byte more is refused naming the field.
func TestOpenAPILimitsAreTheDoorsLimits(t *testing.T) {
	props := openAPIDoc()["components"].(obj)["schemas"].(obj)["Action"].(obj)["properties"].(obj)
	for _, field := range []string{"decision", "reason", "reference", "body"} {
		max, ok := props[field].(obj)["maxLength"].(int)
		if !ok || max <= 0 {
			t.Errorf("%s has no maxLength in the document", field)
			continue
		}
		with := func(n int) measure.Action {
			a := measure.Action{}
			v := strings.Repeat("a", n)
			switch field {
			case "decision":
				a.Decision = v
			case "reason":
				a.Reason = v
			case "reference":
				a.Reference = v
			case "body":
				a.Body = v
			}
			return a
		}
		a := with(max)
		if err := a.CheckInput(); err != nil {
			t.Errorf("%s of %d bytes, the documented limit, is refused: %v", field, max, err)
		}
		a = with(max + 1)
		var fe *measure.FieldError
		if err := a.CheckInput(); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s of %d bytes is not refused naming the field: %v", field, max+1, err)
		}
	}
}
