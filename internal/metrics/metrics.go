// Package metrics holds what takedownd exposes to Prometheus at /metrics: the state of the
// installation read from the database at each scrape (measures by stage and time in stage,
// decisions, the audit log's halts, signing lag, checkpoint age and witnesses, reconcile),
// which every replica reports alike; and what the process itself sees (HTTP latency by route,
// refusals by rule, the Temporal SDK's series, the PostgreSQL pool, Go runtime).
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is one process's metrics.
type Registry struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	refusals *prometheus.CounterVec
	batches  prometheus.Histogram
}

// New registers the process's collectors and, when db is set, the installation's state read
// from it at each scrape.
func New(db *pgxpool.Pool, log *slog.Logger) *Registry {
	m := &Registry{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "takedown_http_request_duration_seconds", Help: "HTTP requests by route pattern, method and status code.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "method", "code"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "takedown_refusals_total", Help: "Requests refused by this process, by the rule that refused them (each is also an audit entry).",
	}, []string{"rule"})
	m.batches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "takedown_audit_batch_entries", Help: "Entries per batch this process's sequencer signed.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 6),
	})
	m.reg.MustRegister(m.requests, m.refusals, m.batches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		m.reg.MustRegister(&poolCollector{db: db}, &stateCollector{db: db, log: log})
	}
	return m
}

// Handler serves the registry in Prometheus' exposition format.
func (m *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil, ErrorHandling: promhttp.ContinueOnError})
}

// Refused counts a refusal by its rule.
func (m *Registry) Refused(rule string) {
	if rule == "" {
		rule = "none"
	}
	m.refusals.WithLabelValues(rule).Inc()
}

// Signed records the size of a batch the sequencer signed.
func (m *Registry) Signed(entries int) { m.batches.Observe(float64(entries)) }

// Instrument times every request h serves, by the route pattern that matched (never the raw
// path: IDs would make a series per measure). The mux inside h must be wrapped in Routed.
func (m *Registry) Instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		var route string
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, &route)))
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, methodLabel(r.Method), itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

type routeKey struct{}

// Routed tells Instrument the pattern mux matched (the handlers between them hand on copies
// of the request, which the mux marks).
func Routed(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if p, ok := r.Context().Value(routeKey{}).(*string); ok {
			*p = r.Pattern
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func itoa(code int) string {
	const digits = "0123456789"
	if code < 100 || code > 999 {
		return "other"
	}
	return string([]byte{digits[code/100], digits[code/10%10], digits[code%10]})
}

// poolCollector reports the PostgreSQL pool's statistics.
type poolCollector struct{ db *pgxpool.Pool }

var (
	poolConns    = prometheus.NewDesc("takedown_db_pool_connections", "Connections of the PostgreSQL pool, by state.", []string{"state"}, nil)
	poolMax      = prometheus.NewDesc("takedown_db_pool_max_connections", "Largest size of the PostgreSQL pool.", nil, nil)
	poolAcquires = prometheus.NewDesc("takedown_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolWaits    = prometheus.NewDesc("takedown_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", nil, nil)
	poolWaited   = prometheus.NewDesc("takedown_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMax, poolAcquires, poolWaits, poolWaited} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.Stat()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaited, prometheus.CounterValue, s.AcquireDuration().Seconds())
}

// methodLabel is a request's method as a label: the standard methods as they are, anything
// else (which a client chooses freely) as "other", so no client can add series at will.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
