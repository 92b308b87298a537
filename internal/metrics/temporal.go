package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// Temporal returns a handler that puts the Temporal SDK's own series (requests, polls,
// workflow and activity task latencies, schedule-to-start, sticky cache) in the registry.
func (m *Registry) Temporal() client.MetricsHandler {
	return &sdkHandler{vecs: &sdkVecs{reg: m.reg, byName: map[string]*sdkVec{}}}
}

// sdkVecs holds one collector per SDK series. A series' label names are fixed by its first
// use (Prometheus needs them fixed); a later use with other tags fills missing ones with ""
// and drops extras.
type sdkVecs struct {
	reg    *prometheus.Registry
	mu     sync.Mutex
	byName map[string]*sdkVec
}

type sdkVec struct {
	labels  []string
	vec     prometheus.Collector
	counter *prometheus.CounterVec
	gauge   *prometheus.GaugeVec
	timer   *prometheus.HistogramVec
}

func (v *sdkVecs) get(name, kind string, tags map[string]string) (*sdkVec, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.byName[name]
	if !ok {
		x = &sdkVec{labels: slices.Sorted(maps.Keys(tags))}
		help := "Temporal SDK: " + strings.ReplaceAll(name, "_", " ") + "."
		switch kind {
		case "counter":
			x.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, x.labels)
			x.vec = x.counter
		case "gauge":
			x.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, x.labels)
			x.vec = x.gauge
		default:
			x.timer = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name + "_seconds", Help: help,
				Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 60}}, x.labels)
			x.vec = x.timer
		}
		if err := v.reg.Register(x.vec); err != nil {
			// A name the SDK uses as two kinds: keep the series out rather than fail.
			x.counter, x.gauge, x.timer = nil, nil, nil
		}
		v.byName[name] = x
	}
	values := make([]string, len(x.labels))
	for i, l := range x.labels {
		values[i] = tags[l]
	}
	return x, values
}

type sdkHandler struct {
	vecs *sdkVecs
	tags map[string]string
}

func (h *sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return &sdkHandler{vecs: h.vecs, tags: merged}
}

func (h *sdkHandler) Counter(name string) client.MetricsCounter {
	x, values := h.vecs.get(name, "counter", h.tags)
	if x.counter == nil {
		return client.MetricsNopHandler.Counter(name)
	}
	c := x.counter.WithLabelValues(values...)
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

func (h *sdkHandler) Gauge(name string) client.MetricsGauge {
	x, values := h.vecs.get(name, "gauge", h.tags)
	if x.gauge == nil {
		return client.MetricsNopHandler.Gauge(name)
	}
	g := x.gauge.WithLabelValues(values...)
	return gaugeFunc(g.Set)
}

func (h *sdkHandler) Timer(name string) client.MetricsTimer {
	x, values := h.vecs.get(name, "timer", h.tags)
	if x.timer == nil {
		return client.MetricsNopHandler.Timer(name)
	}
	o := x.timer.WithLabelValues(values...)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }
