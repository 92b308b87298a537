package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/internal/testdb"
)

// newPool is a pool on a fresh migrated database, and a context that bounds the test.
func newPool(t *testing.T) (context.Context, *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	db, err := pgxpool.New(ctx, testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return ctx, db
}

// TestStoreLoadsTheApprovedPolicy: a fresh database gets the default policy as version 1,
// once; a version proposed and not yet approved changes nothing; once approved it is in
// force; a role granted while the service runs takes effect without a restart; and Casbin
// cannot write the policy around the proposal.
func TestStoreLoadsTheApprovedPolicy(t *testing.T) {
	ctx, db := newPool(t)
	az, err := Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if az.Version() != "v1" || len(az.Rules()) != len(DefaultPolicy()) {
		t.Fatalf("a fresh database: %s with %d rules, want v1 with the %d default ones", az.Version(), len(az.Rules()), len(DefaultPolicy()))
	}
	if err := az.Reload(ctx, db); err != nil || az.Version() != "v1" || len(az.Rules()) != len(DefaultPolicy()) {
		t.Fatalf("loaded again: %s, %d rules (%v)", az.Version(), len(az.Rules()), err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO organisations (id, name, kind) VALUES ('o', 'o', 'agency')`)
	exec(`INSERT INTO users (id, username, display_name, org_id, password_hash) VALUES ('leg', 'leg', 'leg', 'o', 'x')`)
	exec(`INSERT INTO role_grants (user_id, role) VALUES ('leg', 'legal')`)
	leg := Actor{ID: "leg", Roles: []Role{Legal}, Org: "o"}
	facts := Facts{Requester: "off", LegalReviewer: "leg2"}
	now := time.Now()

	// Version 2 lets a legal officer endorse for the command; proposed, not approved.
	exec(`INSERT INTO authz_policy_versions (version, proposed_by, reason) VALUES (2, 'adm1', 'test')`)
	for _, r := range append(DefaultPolicy(), Rule{Role: Legal, Op: string(OpCommandReview), Effect: "allow"}) {
		exec(`INSERT INTO authz_rules (version, role, op, effect) VALUES (2, $1, $2, $3)`, r.Role, r.Op, r.Effect)
	}
	if err := az.Reload(ctx, db); err != nil || az.Version() != "v1" {
		t.Fatalf("a version proposed, not approved: %s (%v)", az.Version(), err)
	}
	if err := az.Check(OpCommandReview, leg, facts, now); err == nil {
		t.Fatal("a legal officer endorsed for the command under v1")
	}

	// Approved while the service runs: in force at once, through the watch.
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	watching := make(chan struct{})
	go func() { defer close(watching); az.Watch(watchCtx, db, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	exec(`UPDATE authz_policy_versions SET approved_by = 'adm2', approved_at = now() WHERE version = 2`)
	for az.Version() != "v2" && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if err := az.Check(OpCommandReview, leg, facts, now); err != nil {
		t.Fatalf("v2 in force: %v", err)
	}

	// A role granted while it runs.
	exec(`INSERT INTO users (id, username, display_name, org_id, password_hash) VALUES ('off', 'off', 'off', 'o', 'x')`)
	off := Actor{ID: "off", Roles: []Role{Officer}, Org: "o"}
	exec(`INSERT INTO role_grants (user_id, role) VALUES ('off', 'officer')`)
	for az.Check(OpSubmit, off, Facts{Requester: "off"}, now) != nil && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if err := az.Check(OpSubmit, off, Facts{Requester: "off"}, now); err != nil {
		t.Fatalf("a role granted while the service runs: %v", err)
	}

	ad := &Adapter{DB: db, Version: 2}
	for name, err := range map[string]error{"save": ad.SavePolicy(nil), "add": ad.AddPolicy("p", "p", nil),
		"remove": ad.RemovePolicy("p", "p", nil), "remove filtered": ad.RemoveFilteredPolicy("p", "p", 0)} {
		if !errors.Is(err, errReadOnly) {
			t.Errorf("%s through Casbin: %v, want refused", name, err)
		}
	}
	// A database that cannot be read is an error, not an empty policy.
	stop()
	<-watching
	db.Close()
	if err := az.Reload(context.Background(), db); err == nil {
		t.Fatal("reload from a closed pool succeeded")
	}
}

// TestStoreWritesTheDefaultOnce: servers starting together on a fresh database write the
// default policy once between them, and each loads all of it.
func TestStoreWritesTheDefaultOnce(t *testing.T) {
	ctx, db := newPool(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			az, err := Load(ctx, db)
			if err == nil && (az.Version() != "v1" || len(az.Rules()) != len(DefaultPolicy())) {
				err = fmt.Errorf("loaded %s with %d rules", az.Version(), len(az.Rules()))
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	var versions, rules int
	db.QueryRow(ctx, `SELECT count(*) FROM authz_policy_versions`).Scan(&versions)
	db.QueryRow(ctx, `SELECT count(*) FROM authz_rules WHERE version = 1`).Scan(&rules)
	if versions != 1 || rules != len(DefaultPolicy()) {
		t.Fatalf("%d versions, %d rules in version 1; want 1 and %d", versions, rules, len(DefaultPolicy()))
	}
}

// TestWatchOutlivesItsConnection: when the database drops the watch's connection (a restart,
// an administrator's pg_terminate_backend), the watch listens again and a policy approved
// afterwards still takes effect.
func TestWatchOutlivesItsConnection(t *testing.T) {
	ctx, db := newPool(t)
	az, err := Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stop := context.WithCancel(ctx)
	watching := make(chan struct{})
	go func() { defer close(watching); az.Watch(watchCtx, db, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	killed := 0
	for killed == 0 && ctx.Err() == nil {
		db.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN authz_policy' AND pid <> pg_backend_pid()`).Scan(&killed)
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := db.Exec(ctx, `INSERT INTO authz_policy_versions (version, proposed_by, approved_by, reason, approved_at) VALUES (2, 'adm1', 'adm2', 'test', now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO authz_rules (version, role, op, effect) SELECT 2, role, op, effect FROM authz_rules WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `NOTIFY authz_policy`); err != nil {
		t.Fatal(err)
	}
	for az.Version() != "v2" && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if az.Version() != "v2" {
		t.Fatalf("after its connection was dropped the watch still has %s", az.Version())
	}
	stop()
	select {
	case <-watching:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not stop with its context")
	}
}

// ruleReads counts the policy reads a pool makes (a pgx tracer), and logs keeps the
// watch's warnings: together they show what the watch does while nothing changes.
type ruleReads struct{ n atomic.Int64 }

func (c *ruleReads) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "FROM authz_rules WHERE version") {
		c.n.Add(1)
	}
	return ctx
}
func (c *ruleReads) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Level >= slog.LevelWarn {
		w.msgs = append(w.msgs, r.Message)
	}
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }
func (w *warnings) count() int                         { w.mu.Lock(); defer w.mu.Unlock(); return len(w.msgs) }

// TestWatchReloadsOncePerChange: an idle watch does not query the database; a change is one
// reload; a dropped connection is logged, listened again after a pause, and not retried in a
// busy loop.
func TestWatchReloadsOncePerChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	reads := &ruleReads{}
	cfg.ConnConfig.Tracer = reads
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	az, err := Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	warned := &warnings{}
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	go az.Watch(watchCtx, db, slog.New(warned))
	settle := func(want int64, why string) {
		t.Helper()
		for reads.n.Load() < want && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		if got := reads.n.Load(); got != want {
			t.Fatalf("%s: %d policy reads in all, want %d", why, got, want)
		}
	}
	settle(2, "loaded, then the watch's first read") // Load's, then the watch's on listening

	if _, err := db.Exec(ctx, `INSERT INTO authz_policy_versions (version, proposed_by, approved_by, reason, approved_at) VALUES (2, 'adm1', 'adm2', 'test', now())`); err != nil {
		t.Fatal(err)
	}
	for az.Version() != "v2" && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	settle(3, "one approval")

	if _, err := db.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN authz_policy' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	for warned.count() == 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	settle(4, "the connection dropped, then listened again") // one read on listening again
	if n := warned.count(); n != 1 {
		t.Fatalf("%d warnings for one dropped connection", n)
	}
}

// TestAdapterLoadsThePolicyIntoCasbin: a Casbin model loaded through the adapter holds the
// version's rules and every grant with its organisation.
func TestAdapterLoadsThePolicyIntoCasbin(t *testing.T) {
	ctx, db := newPool(t)
	if _, err := Load(ctx, db); err != nil { // writes version 1
		t.Fatal(err)
	}
	for _, q := range []string{`INSERT INTO organisations (id, name, kind) VALUES ('o', 'o', 'agency')`,
		`INSERT INTO users (id, username, display_name, org_id, password_hash) VALUES ('leg', 'leg', 'leg', 'o', 'x')`,
		`INSERT INTO role_grants (user_id, role) VALUES ('leg', 'legal')`} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Adapter{DB: db, Version: 1}).LoadPolicy(m); err != nil {
		t.Fatal(err)
	}
	p, _ := m.GetPolicy("p", "p")
	g, _ := m.GetPolicy("g", "g")
	if len(p) != len(DefaultPolicy()) || len(g) != 1 || strings.Join(g[0], " ") != "leg legal o" {
		t.Fatalf("loaded %d rules (want %d) and grants %v", len(p), len(DefaultPolicy()), g)
	}
	db.Close()
	if err := (&Adapter{DB: db, Version: 1}).LoadPolicy(m); err == nil {
		t.Fatal("loaded from a closed pool")
	}
}
