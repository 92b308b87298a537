package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/crypto/bcrypt"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/demo"
	"github.com/takedown/takedown/internal/devenv"
	"github.com/takedown/takedown/internal/payload"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/schema"
	"github.com/takedown/takedown/workflows"
)

// TestServeAndWorkerSplit runs the production shape: an external Temporal server, and
// `serve` and `worker` as separate pieces against it and one database, connected as a role
// that `migrate -app-role` granted no more than it needs: it cannot rewrite the audit log.
func TestServeAndWorkerSplit(t *testing.T) {
	ctx := context.Background()
	tmp, err := devenv.StartTemporal(ctx, devenv.TemporalOptions{LogLevel: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Stop()
	owner := testdb.New(t)
	role, db := testdb.AppRole(t, owner)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	key, appendKey := filepath.Join(dir, "audit.key"), filepath.Join(dir, "append.key")
	if err := audit.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	if err := audit.GenerateAppendKey(appendKey); err != nil {
		t.Fatal(err)
	}
	payloadKey := filepath.Join(dir, "payload.key")
	if _, err := payload.Generate(payloadKey); err != nil {
		t.Fatal(err)
	}
	cfg := daemon.Config{PayloadKey: payloadKey, HTTP: "127.0.0.1:0", DatabaseURL: db, TemporalAddress: tmp.HostPort, Namespace: devenv.Namespace,
		MaxEvidence: 1 << 20, Workflow: workflows.DefaultConfig(), LogOrigin: "takedown.test/audit", SigningKey: key, AppendKey: appendKey}
	// serve and worker do not migrate: they cannot, and say what to run.
	if _, err := daemon.Start(ctx, cfg, daemon.Serve, log); !errors.Is(err, schema.ErrBehind) {
		t.Fatalf("serve on an empty database: %v", err)
	}
	if err := daemon.Migrate(ctx, owner, role); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]func(*daemon.Config){
		"a signing key": func(c *daemon.Config) { c.SigningKey = "" },
		"an append key": func(c *daemon.Config) { c.AppendKey = "" },
		"a payload key": func(c *daemon.Config) { c.PayloadKey = "" },
	} {
		bad := cfg
		c(&bad)
		if _, err := daemon.Start(ctx, bad, daemon.Worker, log); err == nil {
			t.Fatalf("a worker without %s must refuse to start", name)
		}
	}
	// A namespace without the search attributes the workflows keep is named, with the fix.
	if _, err := daemon.Start(ctx, cfg, daemon.Worker, log); err == nil || !strings.Contains(err.Error(), "takedownd temporal-setup") ||
		!strings.Contains(err.Error(), "TakedownStage") {
		t.Fatalf("a worker on a namespace without search attributes: %v", err)
	}
	if err := daemon.TemporalSetup(ctx, cfg, daemon.DefaultRetention, log); err != nil {
		t.Fatal(err)
	}
	if err := daemon.TemporalSetup(ctx, cfg, daemon.DefaultRetention, log); err != nil {
		t.Fatalf("temporal-setup a second time: %v", err)
	}
	// A worker started while Temporal does not answer waits for it, and comes up when it does.
	late := lateForwarder(t, tmp.HostPort, 2*time.Second)
	wcfg := cfg
	wcfg.TemporalAddress = late
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wcfg.AdminHTTP = probe.Addr().String()
	probe.Close()
	began := time.Now()
	type started struct {
		d   *daemon.Daemon
		err error
	}
	up := make(chan started, 1)
	go func() {
		d, err := daemon.Start(ctx, wcfg, daemon.Worker, log)
		up <- started{d, err}
	}()
	// Meanwhile it is alive and says what it waits for: a liveness probe leaves it be.
	for saw := false; !saw; time.Sleep(50 * time.Millisecond) {
		if time.Since(began) > 2*time.Second {
			t.Fatal("the worker's health never answered while it waited for Temporal")
		}
		live, err1 := http.Get("http://" + wcfg.AdminHTTP + "/healthz")
		ready, err2 := http.Get("http://" + wcfg.AdminHTTP + "/readyz")
		if err1 != nil || err2 != nil {
			continue
		}
		lb, _ := io.ReadAll(live.Body)
		rb, _ := io.ReadAll(ready.Body)
		live.Body.Close()
		ready.Body.Close()
		if live.StatusCode == 200 && strings.Contains(string(lb), "waiting for Temporal") {
			if ready.StatusCode != 503 || !strings.Contains(string(rb), "waiting for Temporal") {
				t.Fatalf("while waiting for Temporal /readyz said %d %s", ready.StatusCode, rb)
			}
			saw = true
		}
	}
	st := <-up
	if st.err != nil {
		t.Fatalf("a worker started before Temporal answered: %v", st.err)
	}
	w := st.d
	defer w.Close()
	if waited := time.Since(began); waited < 2*time.Second {
		t.Fatalf("the worker came up after %v, before Temporal answered", waited)
	}
	// The worker answers its health and metrics on its own port.
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(w.AdminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("the worker's %s: %d", path, resp.StatusCode)
		}
	}
	// Its sequencer signs its first batch (its key's entry) a tick after its start-up check.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := scrape(t, w.AdminURL)
		if got["takedown_state_up"] == 1 && got["takedown_audit_batch_entries_count"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker's /metrics: up %v, batches %v", got["takedown_state_up"], got["takedown_audit_batch_entries_count"])
		}
	}
	s, err := daemon.Start(ctx, cfg, daemon.Serve, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if w.URL != "" || s.URL == "" {
		t.Fatalf("worker serves %q, serve serves %q", w.URL, s.URL)
	}
	// What a serving process's credentials could do to the log, were they stolen.
	for _, sql := range []string{
		`UPDATE audit_entries SET record = record`,
		`DELETE FROM audit_log`,
		`TRUNCATE audit_checkpoints`,
		`UPDATE audit_tiles SET data = data`,
		`DELETE FROM stage_history`,
		`UPDATE audit_halts SET cleared_at = now()`,
		`ALTER TABLE audit_entries DISABLE TRIGGER USER`,
		`ALTER TABLE audit_log DISABLE TRIGGER ALL`,
		`DROP TRIGGER audit_log_no_update ON audit_log`,
		`DROP TABLE audit_tiles`,
		`CREATE TABLE shadow (x int)`,
		`ALTER TABLE measures ADD COLUMN shadow int`,
		`CREATE OR REPLACE FUNCTION audit_entries_refuse_change() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'`,
		`INSERT INTO schema_version VALUES (0)`,
	} {
		_, err := s.DB.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("as the serving role, %s: %v; want insufficient privilege (42501)", sql, err)
		}
	}
	// serve and worker seed nothing: accounts come from the operators.
	creds, err := demo.Seed(ctx, s.DB, s.Appender, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{}
	for _, c := range creds {
		pw[c.Username] = c.Password
	}
	off, err := client.Login(ctx, s.URL, "officer", pw["officer"])
	if err != nil {
		t.Fatal(err)
	}
	caseID, err := off.CreateCase(ctx, "split", "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := off.CreateMeasure(ctx, caseID, plan("self_execute", "u-executor"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := off.AddTargets(ctx, m.ID, domestic); err != nil {
		t.Fatal(err)
	}
	if m, err = off.Act(ctx, m.ID, "submit", nil); err != nil || m.Stage != "LEGAL_REVIEW" {
		t.Fatalf("submit through serve, executed by worker: %v, stage %s", err, m.Stage)
	}
	// The cluster holds the history sealed; an auditor reads it through the codec endpoint.
	var me struct{ ID string }
	if err := off.Do(ctx, "GET", "/api/v1/me", nil, &me); err != nil {
		t.Fatal(err)
	}
	aud, err := client.Login(ctx, s.URL, "auditor", pw["auditor"])
	if err != nil {
		t.Fatal(err)
	}
	checkHistorySealed(t, ctx, tmp.HostPort, m.ID, s.URL, aud.Token, off.Token, caseID, me.ID)
	// Operators find it by stage and organisation, without the key.
	findByStage(t, ctx, tmp.HostPort, m.ID, "TakedownStage = 'LEGAL_REVIEW' AND TakedownOrg = 'npa-cyber' AND TakedownEmergency = false")
	// Someone who reaches the cluster but holds no payload key cannot act in anyone's name: an
	// Update sent in clear (as `temporal workflow update execute` sends it) is refused, and the
	// measure stays where it was.
	var legalID string
	for _, c := range creds {
		if c.Username == "legal" {
			legalID = c.ID
		}
	}
	forgeUpdate(t, ctx, tmp.HostPort, m.ID, legalID, m.Digest)
	if got, err := off.Measure(ctx, m.ID); err != nil || got.Stage != "LEGAL_REVIEW" {
		t.Fatalf("after a forged legal review the measure is in %s (%v), want LEGAL_REVIEW", got.Stage, err)
	}

	// A second serve replica picks up a policy approved through the first.
	s2, err := daemon.Start(ctx, cfg, daemon.Serve, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	admins := map[string]*client.Client{}
	for _, name := range []string{"admin", "admin2"} {
		if admins[name], err = client.Login(ctx, s.URL, name, pw[name]); err != nil {
			t.Fatal(err)
		}
	}
	var policy struct {
		Version string
		Rules   []map[string]string
	}
	if err := admins["admin"].Do(ctx, "GET", "/api/v1/admin/policy", nil, &policy); err != nil {
		t.Fatal(err)
	}
	var proposed struct{ Version string }
	if err := admins["admin"].Do(ctx, "POST", "/api/v1/admin/policy", map[string]any{"rules": policy.Rules, "reason": "re-issue"}, &proposed); err != nil {
		t.Fatal(err)
	}
	if err := admins["admin2"].Do(ctx, "POST", "/api/v1/admin/policy/"+proposed.Version+"/approve", nil, nil); err != nil {
		t.Fatal(err)
	}
	other := &client.Client{BaseURL: s2.URL, Token: admins["admin"].Token}
	err = eventually(t, func() error {
		if err := other.Do(ctx, "GET", "/api/v1/admin/policy", nil, &policy); err != nil || policy.Version != proposed.Version {
			return fmt.Errorf("the other replica enforces %s, want %s (%v)", policy.Version, proposed.Version, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lateForwarder listens on a loopback port that refuses every connection for the first
// delay, and then forwards them to target: a Temporal cluster that comes up late.
func lateForwarder(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	open := time.Now().Add(delay)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if time.Now().Before(open) {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return l.Addr().String()
}
