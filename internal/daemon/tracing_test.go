package daemon_test

import (
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestOneTraceFromRequestToSQL: an officer's submit is one trace: the HTTP request, the
// Temporal Update, the workflow's handling of it, the activity that records it and the SQL the
// activity runs, each span a descendant of the request's.
func TestOneTraceFromRequestToSQL(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(t.Context())
	e := testenv.StartWith(t, workflows.DefaultConfig(), func(c *daemon.Config) { c.TracerProvider = tp })
	m := newDraft(t, e, "self_execute", domestic)
	exp.Reset()
	mustAct(t, e.Users["officer"], m.ID, "submit", nil, "LEGAL_REVIEW")

	spans := exp.GetSpans()
	byID := map[string]tracetest.SpanStub{}
	var root *tracetest.SpanStub
	for i, s := range spans {
		byID[s.SpanContext.SpanID().String()] = s
		if s.Name == "POST /api/v1/measures/{measure}/actions/{op}" {
			root = &spans[i]
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	if root == nil {
		t.Fatalf("no span for the request among %v", names)
	}
	// under reports whether s descends from the request's span.
	under := func(s tracetest.SpanStub) bool {
		for range 64 {
			if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
				return false
			}
			if s.SpanContext.SpanID() == root.SpanContext.SpanID() {
				return true
			}
			p, ok := byID[s.Parent.SpanID().String()]
			if !ok {
				return false
			}
			s = p
		}
		return false
	}
	var inTrace []string
	for _, s := range spans {
		if under(s) && s.SpanContext.SpanID() != root.SpanContext.SpanID() {
			inTrace = append(inTrace, s.Name)
		}
	}
	for _, want := range []string{"UpdateWorkflow:act", "HandleUpdate:act", "RunActivity:Record", "sql INSERT"} {
		if !slices.ContainsFunc(inTrace, func(n string) bool { return strings.HasPrefix(n, want) }) {
			t.Errorf("no %q span under the request; under it: %v", want, inTrace)
		}
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if v := a.Value.String(); strings.Contains(v, "u-officer") || strings.Contains(v, m.Case) {
				t.Errorf("span %s carries %s=%q: a user or case in clear", s.Name, a.Key, v)
			}
		}
	}
}
