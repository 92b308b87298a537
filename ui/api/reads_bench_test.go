package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/ui/api"
)

// readAll is a read rule that lets everyone read everything: the baseline.
type readAll struct{}

func (readAll) CanRead(authz.Actor, authz.Subject) error { return nil }
func (readAll) Scope(authz.Actor) authz.ReadScope        { return authz.ReadScope{All: true} }

// BenchmarkListMeasuresAuthorization times one list request of 100 measures by an officer
// (authentication, the need-to-know filter in the query, the rule re-checked on each row) with
// the real read rule and with one that reads everything, alternating, in one run. The
// database holds 100 measures of the officer's organisation and 100 of another's, so the
// filter has work to do.
func BenchmarkListMeasuresAuthorization(b *testing.B) {
	ctx := context.Background()
	db, az, pw := benchDB(b, 4)
	for i, org := range []string{"npa-cyber", "mpd-tokyo"} {
		caseID := fmt.Sprintf("c-bench-%d", i)
		if _, err := db.Exec(ctx, `INSERT INTO cases (id, org_id, title, summary, created_by) VALUES ($1, $2, 'bench', '', 'u-officer')`, caseID, org); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO measures (id, case_id, stage, version, requester_id, plan, facts)
			SELECT 'm-bench-' || $2 || '-' || g, $1, 'DRAFT', 1, 'u-officer', '{"title": "bench"}', '{"requester": "u-officer"}'
			FROM generate_series(1, 100) g`, caseID, fmt.Sprint(i)); err != nil {
			b.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, _ := audit.NewAppender(make([]byte, audit.AppendKeySize))
	servers := map[string]*httptest.Server{}
	for name, reads := range map[string]interface {
		CanRead(authz.Actor, authz.Subject) error
		Scope(authz.Actor) authz.ReadScope
	}{"need-to-know": az, "read-all": readAll{}} {
		mux := http.NewServeMux()
		(&api.Server{Service: &service.Service{DB: db, Authz: az, Audit: app, Reads: reads, MaxEvidence: 1 << 20, Log: log}}).Register(mux)
		servers[name] = httptest.NewServer(mux)
		defer servers[name].Close()
	}
	off, err := client.Login(ctx, servers["need-to-know"].URL, "officer", pw)
	if err != nil {
		b.Fatal(err)
	}
	n := max(b.N, 300)
	lat := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range n {
		for _, name := range []string{"need-to-know", "read-all"} {
			c := &client.Client{BaseURL: servers[name].URL, Token: off.Token}
			var out struct{ Measures []service.MeasureSummary }
			start := time.Now()
			if err := c.Do(ctx, "GET", "/api/v1/measures?limit=100", nil, &out); err != nil {
				b.Fatalf("%s request %d: %v", name, i, err)
			}
			lat[name] = append(lat[name], time.Since(start))
			if len(out.Measures) != 100 {
				b.Fatalf("%s listed %d measures", name, len(out.Measures))
			}
			for _, m := range out.Measures {
				if name == "need-to-know" && m.Org != "npa-cyber" {
					b.Fatalf("the officer was listed %s's measure %s", m.Org, m.ID)
				}
			}
		}
	}
	b.StopTimer()
	p50 := map[string]time.Duration{}
	for _, name := range []string{"need-to-know", "read-all"} {
		p50[name] = q(lat[name], 50)
		b.ReportMetric(float64(p50[name].Microseconds()), "us-p50-"+name)
		b.ReportMetric(float64(q(lat[name], 99).Microseconds()), "us-p99-"+name)
	}
	b.ReportMetric(float64(p50["need-to-know"])/float64(p50["read-all"]), "ratio-p50")
}
