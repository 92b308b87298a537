package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/demo"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/ui/api"
)

type noopAuthorizer struct{}

func (noopAuthorizer) Check(authz.Op, authz.Actor, authz.Facts, time.Time) error { return nil }
func (noopAuthorizer) Version() string                                           { return "noop" }
func (noopAuthorizer) Rules() []authz.Rule                                       { return nil }

// BenchmarkAuthorizationOverhead times the same authorized API request (replacing a draft's
// plan: authentication, authorization, a transaction with its audit entry) with the Casbin
// authorizer and with a no-op one, alternating, in one run; and the Check call alone.
func BenchmarkAuthorizationOverhead(b *testing.B) {
	ctx := context.Background()
	db, az, pw := benchDB(b, 0)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, _ := audit.NewAppender(make([]byte, audit.AppendKeySize))
	servers := map[string]*httptest.Server{}
	for name, a := range map[string]service.Authorizer{"casbin": az, "noop": noopAuthorizer{}} {
		mux := http.NewServeMux()
		(&api.Server{Service: &service.Service{DB: db, Authz: a, Audit: app, MaxEvidence: 1 << 20, Log: log}}).Register(mux)
		servers[name] = httptest.NewServer(mux)
		defer servers[name].Close()
	}
	off, err := client.Login(ctx, servers["casbin"].URL, "officer", pw)
	if err != nil {
		b.Fatal(err)
	}
	caseID, err := off.CreateCase(ctx, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	// A draft row, without a workflow: this request does not need one.
	id := "m-bench"
	if _, err := db.Exec(ctx, `INSERT INTO measures (id, case_id, stage, version, requester_id, plan, facts) VALUES ($1, $2, 'DRAFT', 1, 'u-officer', '{}', '{"requester":"u-officer"}')`, id, caseID); err != nil {
		b.Fatal(err)
	}
	plan := map[string]any{"title": "t", "kind": "self_execute"}
	n := max(b.N, 300)
	lat := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range n {
		for _, name := range []string{"casbin", "noop"} {
			c := &client.Client{BaseURL: servers[name].URL, Token: off.Token}
			start := time.Now()
			if err := c.Do(ctx, "PUT", "/api/v1/measures/"+id+"/plan", plan, nil); err != nil {
				b.Fatalf("%s request %d: %v", name, i, err)
			}
			lat[name] = append(lat[name], time.Since(start))
		}
	}
	b.StopTimer()
	for _, name := range []string{"casbin", "noop"} {
		b.ReportMetric(float64(q(lat[name], 50).Microseconds()), "us-p50-"+name)
		b.ReportMetric(float64(q(lat[name], 99).Microseconds()), "us-p99-"+name)
	}

	// The decision alone.
	actor := authz.Actor{ID: "u-officer", Username: "officer", Org: "npa-cyber", Roles: []authz.Role{authz.Officer}}
	facts := authz.Facts{Requester: "u-officer"}
	var checks []time.Duration
	for range 10000 {
		start := time.Now()
		if err := az.Check(authz.OpSubmit, actor, facts, time.Now()); err != nil {
			b.Fatal(err)
		}
		checks = append(checks, time.Since(start))
	}
	b.ReportMetric(float64(q(checks, 50).Nanoseconds())/1000, "us-p50-check")
	b.ReportMetric(float64(q(checks, 99).Nanoseconds())/1000, "us-p99-check")
}

// benchDB is a migrated database with the demo users (passwords hashed at bcrypt cost) and the
// role policy loaded; it returns the officer's password.
func benchDB(b *testing.B, cost int) (*pgxpool.Pool, *authz.Authorizer, string) {
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testdb.Migrated(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	app, _ := audit.NewAppender(make([]byte, audit.AppendKeySize))
	creds, err := demo.Seed(ctx, db, app, cost)
	if err != nil {
		b.Fatal(err)
	}
	az, err := authz.Load(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range creds {
		if c.Username == "officer" {
			return db, az, c.Password
		}
	}
	b.Fatal("no demo officer")
	return nil, nil, ""
}

// q is the p-th percentile of d (sorting d).
func q(d []time.Duration, p int) time.Duration { slices.Sort(d); return d[len(d)*p/100] }
