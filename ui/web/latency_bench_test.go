package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/demo"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/ui/web"
	"github.com/takedown/takedown/workflows"
)

// BenchmarkPageLatency times "My work" and a measure's page at 50 concurrent browser sessions,
// with 100,000 measures in the database (all readable by the officer whose sessions they are)
// and one sealed measure of 100,000 targets and 100,000 execution steps, against a trivial page behind the same middleware
// (headers, cross-origin protection, the PostgreSQL session, the sign-in check) on the same
// server, requests interleaved in one run. It reports p50 and p99 of each and their ratios to
// the trivial page's.
//
//	go test -run XXX -bench BenchmarkPageLatency -benchtime 20x ./ui/web
func BenchmarkPageLatency(b *testing.B) {
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testdb.Migrated(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	app, _ := audit.NewAppender(make([]byte, audit.AppendKeySize))
	creds, err := demo.Seed(ctx, db, app, bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	pw := ""
	for _, c := range creds {
		if c.Username == "officer" {
			pw = c.Password
		}
	}
	start := time.Now()
	for _, q := range []string{
		`INSERT INTO cases (id, org_id, title, summary, created_by) VALUES ('c-bench', 'npa-cyber', 'bench', '', 'u-officer')`,
		// Stages in turn, so that My work has every kind of row to judge.
		`INSERT INTO measures (id, case_id, stage, version, requester_id, plan, facts, updated_at)
			SELECT 'm-bench-' || g, 'c-bench', (ARRAY['DRAFT','LEGAL_REVIEW','COMMAND_REVIEW','COMMISSION_REVIEW','APPROVED','EXECUTING','REPORTED','NOTIFYING','CLOSED','WITHDRAWN'])[1 + g % 10],
				1, 'u-officer', jsonb_build_object('title', 'Botnet C2 ' || g), '{"requester": "u-officer"}', now() - g * interval '1 minute'
			FROM generate_series(1, 100000) g`,
		// A Qakbot-sized measure under execution: sealed, 100,000 targets, 100,000 steps logged.
		`INSERT INTO measures (id, case_id, stage, version, digest, requester_id, plan, facts)
			VALUES ('m-bench-big', 'c-bench', 'EXECUTING', 1, 'sha256:bench', 'u-officer', '{"title": "Qakbot-sized", "executors": ["u-executor"]}',
				'{"requester": "u-officer", "named_executors": ["u-executor"]}')`,
		`INSERT INTO measure_versions (measure_id, version, digest, body, sealed_by) VALUES ('m-bench-big', 1, 'sha256:bench',
			'{"sealed": {"version": 1}, "content": {"measure": "m-bench-big", "version": 1, "plan": {"title": "Qakbot-sized", "executors": ["u-executor"]},
			"targets": 100000, "targets_sha256": "00", "evidence_sha256": [], "reviews": [], "foreign": false}}', 'u-officer')`,
		`INSERT INTO targets (measure_id, version, seq, kind, value, location, country)
			SELECT 'm-bench-big', 1, g, 'ip', '10.' || (g / 65536) || '.' || (g / 256 % 256) || '.' || (g % 256), 'domestic', 'JP'
			FROM generate_series(1, 100000) g`,
		`INSERT INTO execution_steps (measure_id, seq, executor_id, witness_id, target, technique, action, result, at)
			SELECT 'm-bench-big', g, 'u-executor', 'u-executor2', '10.' || (g / 65536) || '.' || (g / 256 % 256) || '.' || (g % 256),
				'disable_malware', 'sent the self-delete command', 'success', now() - g * interval '1 second'
			FROM generate_series(1, 100000) g`,
		`ANALYZE`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("100,000 measures and a measure of 100,000 targets and 100,000 steps written in %v", time.Since(start).Round(time.Millisecond))
	az, err := authz.Load(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	svc := &service.Service{DB: db, Authz: az, Audit: app, Workflow: workflows.DefaultConfig(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	pages := web.New(svc, db)
	mux := http.NewServeMux()
	pages.Register(mux)
	mux.Handle("GET /bench/trivial", pages.Page(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	const sessions = 50
	clients := make([]*http.Client, sessions)
	for i := range clients {
		jar, _ := cookiejar.New(nil)
		clients[i] = &http.Client{Jar: jar, Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := clients[i].PostForm(srv.URL+"/login", url.Values{"username": {"officer"}, "password": {pw}})
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			b.Fatalf("log in: %s", resp.Status)
		}
	}
	kinds := []struct{ name, path, must string }{
		{"trivial", "/bench/trivial", "ok"},
		{"my-work", "/", `id="waits"`},
		{"measure", "/measures/m-bench-big", `id="step-list"`},
	}
	// One session alone first: the time each page costs, without queueing.
	for _, k := range kinds {
		var alone []time.Duration
		for range 20 {
			t0 := time.Now()
			resp, err := clients[0].Get(srv.URL + k.path)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			alone = append(alone, time.Since(t0))
		}
		slices.Sort(alone)
		b.Logf("%-8s alone: p50 %v", k.name, alone[10].Round(10*time.Microsecond))
	}
	rounds := max(b.N, 10)
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	var failed error
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			order := []int{0, 1, 2}
			for range rounds {
				rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
				for _, k := range order {
					t0 := time.Now()
					resp, err := clients[i].Get(srv.URL + kinds[k].path)
					var body []byte
					if err == nil {
						body, err = io.ReadAll(resp.Body)
						resp.Body.Close()
						if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(body), kinds[k].must)) {
							err = fmt.Errorf("%s: %s %.200s", kinds[k].path, resp.Status, body)
						}
					}
					d := time.Since(t0)
					mu.Lock()
					if err != nil && failed == nil {
						failed = err
					}
					lat[kinds[k].name] = append(lat[kinds[k].name], d)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	pct := func(d []time.Duration, p int) time.Duration { slices.Sort(d); return d[min(len(d)*p/100, len(d)-1)] }
	base50, base99 := pct(lat["trivial"], 50), pct(lat["trivial"], 99)
	for _, k := range kinds {
		p50, p99 := pct(lat[k.name], 50), pct(lat[k.name], 99)
		b.ReportMetric(float64(p50.Microseconds()), k.name+"-p50-µs")
		b.ReportMetric(float64(p99.Microseconds()), k.name+"-p99-µs")
		if k.name != "trivial" {
			b.ReportMetric(float64(p50)/float64(base50), k.name+"-p50-ratio")
			b.ReportMetric(float64(p99)/float64(base99), k.name+"-p99-ratio")
		}
		b.Logf("%-8s n=%d p50 %v p99 %v", k.name, len(lat[k.name]), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	}
}
