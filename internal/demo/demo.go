// Package demo holds the demo organisations and the one user per role that `takedownd dev`
// creates on an empty database, for a newcomer and for the tests.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/service"
)

// Credential is a demo user's login, shown once when it is created.
type Credential struct {
	Username string
	Password string
	ID       string
	Org      string
	Role     authz.Role
}

type demoUser struct {
	username, name, org string
	role                authz.Role
	designation         string // executor scope
}

var demoOrgs = []struct{ id, name, kind string }{
	{"npa-cyber", "National Police Agency, Cyber Special Investigation Unit", "agency"},
	{"mpd-tokyo", "Tokyo Metropolitan Police Department", "agency"},
	{"commission", "Cyber Communications Information Supervisory Commission", "commission"},
	{"oversight", "Audit office", "agency"},
}

var demoUsers = []demoUser{
	{"officer", "Case Officer", "npa-cyber", authz.Officer, ""},
	{"officer2", "Second Case Officer", "npa-cyber", authz.Officer, ""},
	{"legal", "Legal Reviewer", "npa-cyber", authz.Legal, ""},
	{"commander", "Commander", "npa-cyber", authz.Commander, ""},
	{"executor", "Executor (NPA)", "npa-cyber", authz.Executor, "npa"},
	{"executor2", "Executor (NPA, witness)", "npa-cyber", authz.Executor, "npa"},
	{"executor-pref", "Executor (prefectural)", "mpd-tokyo", authz.Executor, "prefectural"},
	{"secretariat", "Commission Secretariat", "commission", authz.CommissionSecretariat, ""},
	{"chair", "Commission Chair", "commission", authz.CommissionChair, ""},
	{"member1", "Commissioner 1", "commission", authz.Commissioner, ""},
	{"member2", "Commissioner 2", "commission", authz.Commissioner, ""},
	{"member3", "Commissioner 3", "commission", authz.Commissioner, ""},
	{"member4", "Commissioner 4", "commission", authz.Commissioner, ""},
	{"auditor", "Auditor", "oversight", authz.Auditor, ""},
	{"admin", "Administrator", "oversight", authz.Admin, ""},
	{"admin2", "Second Administrator", "oversight", authz.Admin, ""},
}

// Seed creates the demo organisations and one user per role on an empty database, and returns
// their passwords (which are stored only as hashes). On a seeded database it does nothing.
//
// cost is the bcrypt cost of the stored hashes: 0 for bcrypt's default; tests, which start
// many servers under the race detector, use bcrypt's least.
func Seed(ctx context.Context, db *pgxpool.Pool, app *audit.Appender, cost int) ([]Credential, error) {
	var creds []Credential
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE users IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		for _, o := range demoOrgs {
			if _, err := tx.Exec(ctx, `INSERT INTO organisations (id, name, kind) VALUES ($1,$2,$3)`, o.id, o.name, o.kind); err != nil {
				return fmt.Errorf("seed organisation %s: %w", o.id, err)
			}
		}
		now := time.Now()
		for _, u := range demoUsers {
			raw := make([]byte, 12)
			_, _ = rand.Read(raw)
			pw := base64.RawURLEncoding.EncodeToString(raw)
			hash, err := service.HashPassword(pw, cost)
			if err != nil {
				return err
			}
			id := "u-" + u.username
			if _, err := tx.Exec(ctx, `INSERT INTO users (id, username, display_name, org_id, password_hash) VALUES ($1,$2,$3,$4,$5)`,
				id, u.username, u.name, u.org, hash); err != nil {
				return fmt.Errorf("seed user %s: %w", u.username, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO role_grants (user_id, role) VALUES ($1, $2)`, id, u.role); err != nil {
				return fmt.Errorf("seed role of %s: %w", u.username, err)
			}
			system := audit.Actor{ID: "system", Roles: []string{}, Org: "system"}
			if err := app.Append(ctx, tx, "seed/"+id, &audit.Record{
				Actor: system, Action: "role.granted", Details: map[string]any{"user": id, "role": u.role, "org": u.org},
			}); err != nil {
				return err
			}
			if u.designation != "" {
				// Logged in full: the auditor's replay judges each execution step by the
				// designations the log shows in force.
				d := "d-" + u.username
				from, until := now.Add(-time.Hour).UTC().Truncate(time.Second), now.AddDate(1, 0, 0).UTC().Truncate(time.Second)
				if _, err := tx.Exec(ctx, `INSERT INTO executor_designations (id, user_id, scope, valid_from, valid_until) VALUES ($1,$2,$3,$4,$5)`,
					d, id, u.designation, from, until); err != nil {
					return fmt.Errorf("seed designation of %s: %w", u.username, err)
				}
				if err := app.Append(ctx, tx, "seed/"+d, &audit.Record{Actor: system, Action: "designation.issued", Details: map[string]any{
					"designation": d, "user": id, "scope": u.designation, "valid_from": from, "valid_until": until,
				}}); err != nil {
					return err
				}
			}
			creds = append(creds, Credential{Username: u.username, Password: pw, ID: id, Org: u.org, Role: u.role})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seed demo users: %w", err)
	}
	return creds, nil
}
