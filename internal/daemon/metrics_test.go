package daemon_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// scrape reads /metrics and returns each sample's value by its line's name and labels.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	for _, m := range regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[^"}]|"[^"]*")*\})?) (\S+)$`).FindAllStringSubmatch(string(body), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			out[m[1]] = v
		}
	}
	return out
}

// TestMetricsAfterALifecycle: what an operator's Prometheus reads after a measure is approved
// and an action refused: the state from the database, this process's requests and refusals,
// the Temporal SDK's series and the pool.
func TestMetricsAfterALifecycle(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	ctx := context.Background()
	m := newDraft(t, e, "self_execute", domestic)
	reviewAndApprove(t, e, m.ID)
	_, err := e.Users["officer"].Act(ctx, m.ID, "start_execution", nil)
	refusedWith(t, err, 403, "role")
	// A refusal no rule makes is counted by its kind, not as "none".
	_, err = e.Users["officer"].Act(ctx, m.ID, "submit", nil)
	refusedWith(t, err, 409, "")

	got := scrape(t, e.D.URL)
	for name, want := range map[string]float64{
		`takedown_measures{stage="APPROVED"}`:         1,
		`takedown_decisions{outcome="approved"}`:      1,
		`takedown_refusals_total{rule="role"}`:        1,
		`takedown_refusals_total{rule="wrong_stage"}`: 1,
		`takedown_audit_halted`:                       0,
		`takedown_state_up`:                           1,
		`takedown_db_pool_max_connections`:            16,
		`takedown_http_request_duration_seconds_count{code="200",method="POST",route="POST /api/v1/measures/{measure}/actions/{op}"}`: 6,
		`takedown_http_request_duration_seconds_count{code="403",method="POST",route="POST /api/v1/measures/{measure}/actions/{op}"}`: 1,
		`takedown_http_request_duration_seconds_count{code="409",method="POST",route="POST /api/v1/measures/{measure}/actions/{op}"}`: 1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	for _, name := range []string{`takedown_measure_stage_oldest_seconds{stage="APPROVED"}`, `takedown_audit_signed_entries`,
		`takedown_audit_batch_entries_count`, `takedown_audit_checkpoint_age_seconds`, `takedown_audit_unsigned_entries`,
		`go_goroutines`, `takedown_db_pool_acquires_total`} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	temporal := 0
	for name := range got {
		if len(name) > 9 && name[:9] == "temporal_" {
			temporal++
		}
	}
	if temporal < 5 {
		t.Errorf("%d Temporal SDK series, want its request and task metrics", temporal)
	}
}
