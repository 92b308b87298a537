package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Adapter is a read-only Casbin adapter over PostgreSQL: the rules of one approved policy
// version ("p" lines) and every principal's role grants in its organisation ("g" lines).
// Policy changes are not made through Casbin but proposed and approved (see Propose), so the
// write methods refuse.
type Adapter struct {
	DB      *pgxpool.Pool
	Version int
}

var _ persist.Adapter = (*Adapter)(nil)

var errReadOnly = errors.New("authz: the policy changes only by an approved proposal")

// LoadPolicy adds the version's rules and the grants to m.
func (a *Adapter) LoadPolicy(m model.Model) error {
	ctx := context.Background()
	rules, grants, err := a.load(ctx)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if err := persist.LoadPolicyArray([]string{"p", string(r.Role), r.Op, r.Effect}, m); err != nil {
			return err
		}
	}
	for _, g := range grants {
		if err := persist.LoadPolicyArray([]string{"g", g.User, string(g.Role), g.Org}, m); err != nil {
			return err
		}
	}
	return nil
}

func (a *Adapter) load(ctx context.Context) ([]Rule, []Grant, error) {
	rows, err := a.DB.Query(ctx, `SELECT role, op, effect FROM authz_rules WHERE version = $1 ORDER BY role, op, effect`, a.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("load policy version %d: %w", a.Version, err)
	}
	rules, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rule, error) {
		var x Rule
		err := r.Scan(&x.Role, &x.Op, &x.Effect)
		return x, err
	})
	if err != nil {
		return nil, nil, err
	}
	rows, err = a.DB.Query(ctx, `SELECT g.user_id, g.role, u.org_id FROM role_grants g JOIN users u ON u.id = g.user_id ORDER BY 1, 2`)
	if err != nil {
		return nil, nil, fmt.Errorf("load role grants: %w", err)
	}
	grants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Grant, error) {
		var x Grant
		err := r.Scan(&x.User, &x.Role, &x.Org)
		return x, err
	})
	return rules, grants, err
}

// SavePolicy refuses: see Propose.
func (a *Adapter) SavePolicy(model.Model) error { return errReadOnly }

// AddPolicy refuses: see Propose.
func (a *Adapter) AddPolicy(string, string, []string) error { return errReadOnly }

// RemovePolicy refuses: see Propose.
func (a *Adapter) RemovePolicy(string, string, []string) error { return errReadOnly }

// RemoveFilteredPolicy refuses: see Propose.
func (a *Adapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errReadOnly }

// currentVersion is the newest approved policy version, writing the default policy as version
// 1 on a database that has none.
func currentVersion(ctx context.Context, db *pgxpool.Pool) (int, error) {
	var v int
	err := db.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM authz_policy_versions WHERE approved_by IS NOT NULL`).Scan(&v)
	if err != nil || v > 0 {
		return v, err
	}
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO authz_policy_versions (version, proposed_by, approved_by, reason, approved_at)
			VALUES (1, 'system', 'system', 'default policy of DESIGN section 4', now()) ON CONFLICT DO NOTHING`)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		for _, r := range DefaultPolicy() {
			if _, err := tx.Exec(ctx, `INSERT INTO authz_rules (version, role, op, effect) VALUES (1, $1, $2, $3)`, r.Role, r.Op, r.Effect); err != nil {
				return err
			}
		}
		return nil
	})
	return 1, err
}

// Load builds an Authorizer from the policy in force in db.
func Load(ctx context.Context, db *pgxpool.Pool) (*Authorizer, error) {
	a := &Authorizer{}
	return a, a.Reload(ctx, db)
}

// Reload loads the newest approved policy and the grants through the adapter.
func (a *Authorizer) Reload(ctx context.Context, db *pgxpool.Pool) error {
	v, err := currentVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("policy version: %w", err)
	}
	ad := &Adapter{DB: db, Version: v}
	rules, grants, err := ad.load(ctx)
	if err != nil {
		return err
	}
	if a.Verify != nil {
		// The version in force stays in force unless the new one is what the log recorded.
		if err := a.Verify(ctx, v, rules); err != nil {
			return err
		}
	}
	return a.Load("v"+strconv.Itoa(v), rules, grants)
}

// Watch reloads the policy whenever it or a grant changes (LISTEN authz_policy), until ctx
// ends. Notifications only mark the policy stale; the reload runs here, so nothing blocks the
// connection's notification handling.
func (a *Authorizer) Watch(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) {
	for ctx.Err() == nil {
		if err := a.listen(ctx, db); err != nil && ctx.Err() == nil {
			log.Warn("authz policy watcher", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (a *Authorizer) listen(ctx context.Context, db *pgxpool.Pool) error {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN authz_policy`); err != nil {
		return err
	}
	// A change may have come while no one listened.
	if err := a.Reload(ctx, db); err != nil {
		return err
	}
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		if err := a.Reload(ctx, db); err != nil {
			return err
		}
	}
}
