package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/internal/testdb"
)

// TestStoreLoadsTheApprovedPolicy: a fresh database gets the default policy as version 1,
// once; a version proposed and not yet approved changes nothing; once approved it is in
// force; a role granted while the service runs takes effect without a restart; and Casbin
// cannot write the policy around the proposal.
func TestStoreLoadsTheApprovedPolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := pgxpool.New(ctx, testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgxpool.New(ctx, testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pgxpool.New(ctx, testdb.Migrated(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
