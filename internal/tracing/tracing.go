// Package tracing follows a request across takedownd with OpenTelemetry: the HTTP request, the
// Temporal Update it sends, the workflow and the activity that handle it, and the SQL the
// activity runs, as one trace exported over OTLP. Spans carry route patterns, workflow and
// activity names and SQL text: no parameters, no case content.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Propagator carries a trace across HTTP and Temporal headers (W3C Trace Context).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Exporting returns a provider that exports spans over OTLP/gRPC to endpoint (a URL:
// http://collector:4317 without TLS, https:// with), and its shutdown, which flushes. An empty
// endpoint traces nothing.
func Exporting(ctx context.Context, endpoint, service string) (trace.TracerProvider, func(context.Context) error, error) {
	if endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP exporter for %s: %w", endpoint, err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// HTTP traces every request h serves; Named, inside it around the mux, names each span by the
// route pattern that matched.
func HTTP(h http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(h, "http", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(Propagator))
}

// Named renames the request's span after the route pattern mux matched (never the raw path).
func Named(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if r.Pattern != "" {
			trace.SpanFromContext(r.Context()).SetName(r.Pattern)
		}
	})
}

// Temporal is the client interceptor that carries the trace into workflows and activities.
func Temporal(tp trace.TracerProvider) (interceptor.ClientInterceptor, error) {
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: tp.Tracer("takedown/temporal"), TextMapPropagator: Propagator,
		DisableQueryTracing: true,
	})
	if err != nil {
		return nil, fmt.Errorf("Temporal tracing interceptor: %w", err)
	}
	return i, nil
}

// SQL is a pgx tracer: one span per statement, named by its first word, with its text.
type SQL struct{ tracer trace.Tracer }

// NewSQL traces statements with tp.
func NewSQL(tp trace.TracerProvider) *SQL { return &SQL{tracer: tp.Tracer("takedown/sql")} }

// TraceQueryStart opens a statement's span.
func (s *SQL) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return ctx // a statement outside any request or task (the sequencer's loop): untraced
	}
	ctx, span := s.tracer.Start(ctx, "sql "+verb(data.SQL), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "postgresql"), attribute.String("db.query.text", clip(data.SQL, 2048))))
	return context.WithValue(ctx, sqlSpan{}, span)
}

type sqlSpan struct{}

// TraceQueryEnd closes it, with its error.
func (s *SQL) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span, ok := ctx.Value(sqlSpan{}).(trace.Span)
	if !ok {
		return
	}
	if data.Err != nil {
		span.RecordError(data.Err)
		span.SetStatus(codes.Error, "statement failed")
	}
	span.End()
}

func verb(sql string) string {
	if f := strings.Fields(clip(sql, 64)); len(f) > 0 {
		return strings.ToUpper(clip(f[0], 16))
	}
	return "?"
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
