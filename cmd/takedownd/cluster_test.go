package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/workflowservice/v1"
	temporalclient "go.temporal.io/sdk/client"
	"golang.org/x/crypto/bcrypt"

	"github.com/takedown/takedown/internal/client"
	"github.com/takedown/takedown/internal/daemon"
	"github.com/takedown/takedown/internal/demo"
	"github.com/takedown/takedown/internal/litewitness"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/internal/witness"
)

// process is a takedownd serve or worker the cluster test runs, kills and starts again.
type process struct {
	name   string
	args   []string
	health string // its /healthz
	cmd    *exec.Cmd
}

// TestCluster runs the production shape as processes: the Temporal CLI's dev server as the
// cluster, two `serve` and two `worker` processes as the serving role, two witnesses (one of
// them filippo.io/torchwood's litewitness, as a process); drives
// measures through both serve replicas while killing workers and serves with SIGKILL at
// random and cutting every database connection once; then every measure must reach APPROVED
// with exactly the audit entries its transitions call for, the exported log must verify with
// both witnesses' quorum, and Temporal must find the measures by stage.
//
// Run with TAKEDOWN_CLUSTER_TEST=1; short by default (20 measures, at least 10 kills);
// TAKEDOWN_CLUSTER_MEASURES=100 and TAKEDOWN_CLUSTER_KILLS=30 make the long run. It needs the
// temporal CLI.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of processes")
	}
	// .ci/run sets it and installs the CLI; `go test ./...` alone leaves it out.
	if os.Getenv("TAKEDOWN_CLUSTER_TEST") != "1" {
		t.Skip("set TAKEDOWN_CLUSTER_TEST=1 to run the cluster test (it needs the temporal CLI)")
	}
	temporalBin, err := exec.LookPath("temporal")
	if err != nil {
		t.Fatal("no temporal CLI: go install github.com/temporalio/cli/cmd/temporal@v1.5.1")
	}
	n, kills := envInt("TAKEDOWN_CLUSTER_MEASURES", 20), envInt("TAKEDOWN_CLUSTER_KILLS", 10)
	// Restarting the PostgreSQL server every test shares is for a run of this test alone (the
	// long one), never beside other packages' tests, as in .ci/run.
	restartPG := os.Getenv("TAKEDOWN_CLUSTER_RESTART_PG") == "1"
	ctx := context.Background()
	dir := t.TempDir()
	bin := takedowndBinary(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The cluster.
	tport := freePort(t)
	taddr := "127.0.0.1:" + strconv.Itoa(tport)
	tsrv := exec.Command(temporalBin, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(tport),
		"--http-port", strconv.Itoa(freePort(t)), "--metrics-port", strconv.Itoa(freePort(t)),
		"--db-filename", filepath.Join(dir, "temporal.db"), "--log-level", "error")
	tsrv.Stdout, tsrv.Stderr = os.Stderr, os.Stderr
	if err := tsrv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tsrv.Process.Signal(syscall.SIGINT); _ = tsrv.Wait() }()

	// The database, migrated as its owner; serve and worker connect as the serving role.
	owner := testdb.New(t)
	role, app := testdb.AppRole(t, owner)
	const origin = "cluster.test/audit"
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("takedownd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("migrate", "-database-url", owner, "-app-role", role)
	run("keygen", "-out", filepath.Join(dir, "audit.key"), "-log-origin", origin)
	run("keygen", "-append", "-out", filepath.Join(dir, "append.key"))
	run("keygen", "-payload", "-out", filepath.Join(dir, "payload.key"))
	run("temporal-setup", "-temporal-address", taddr)
	vkey, err := os.ReadFile(filepath.Join(dir, "audit.vkey"))
	if err != nil {
		t.Fatal(err)
	}

	// A witness outside the processes, for the whole run.
	wkey, err := witness.LoadKey(filepath.Join(dir, "witness.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	wit, err := witness.New("cluster-witness", wkey, filepath.Join(dir, "witness"), []string{strings.TrimSpace(string(vkey))}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	wl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wsrv := &http.Server{Handler: wit}
	go wsrv.Serve(wl)
	defer wsrv.Close()
	spec := "http://" + wl.Addr().String() + " " + wit.VerifierKey()
	// And a witness written by others: filippo.io/torchwood's litewitness, as a process.
	lite := litewitness.Start(t, "litewitness.cluster.test", origin, strings.TrimSpace(string(vkey)))
	spec += ";" + lite.Spec()

	// Demo users, as an operator would create them.
	db, err := pgxpool.New(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	appender, err := daemon.LoadAppender(daemon.Config{AppendKey: filepath.Join(dir, "append.key")}, daemon.Tool)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := demo.Seed(ctx, db, appender, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{}
	for _, c := range creds {
		pw[c.Username] = c.Password
	}

	env := append(os.Environ(), "DATABASE_URL="+app, "TEMPORAL_ADDRESS="+taddr, "TAKEDOWN_APPEND_KEY="+filepath.Join(dir, "append.key"),
		"TAKEDOWN_PAYLOAD_KEY="+filepath.Join(dir, "payload.key"), "TAKEDOWN_LOG_ORIGIN="+origin, "TAKEDOWN_WITNESSES="+spec,
		"TAKEDOWN_LOG_LEVEL="+cmp.Or(os.Getenv("TAKEDOWN_CLUSTER_LOG_LEVEL"), "error"))
	var procs []*process
	for i := range 2 {
		a := freeAddr(t)
		procs = append(procs, &process{name: fmt.Sprintf("worker%d", i), health: "http://" + a + "/healthz",
			args: []string{"worker", "-signing-key", filepath.Join(dir, "audit.key"), "-admin-http", a}})
	}
	var serves []string
	for i := range 2 {
		a := freeAddr(t)
		serves = append(serves, "http://"+a)
		procs = append(procs, &process{name: fmt.Sprintf("serve%d", i), health: "http://" + a + "/healthz", args: []string{"serve", "-http", a}})
	}
	var procMu sync.Mutex
	start := func(p *process) {
		p.cmd = exec.Command(bin, p.args...)
		p.cmd.Env, p.cmd.Stderr = env, os.Stderr
		if err := p.cmd.Start(); err != nil {
			t.Error(err)
		}
	}
	for _, p := range procs {
		start(p)
	}
	defer func() {
		procMu.Lock()
		defer procMu.Unlock()
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGINT)
			_ = p.cmd.Wait()
		}
	}()
	for _, p := range procs {
		waitHealthy(t, p.health, 2*time.Minute)
	}

	// Everyone logs in once; a token works on either replica.
	users := map[string]string{}
	for _, name := range []string{"officer", "legal", "commander", "chair", "member1", "member2"} {
		c, err := client.Login(ctx, serves[0], name, pw[name])
		if err != nil {
			t.Fatal(err)
		}
		users[name] = c.Token
	}
	// A request goes to either replica; decisions name the digest the person read.
	as := func(name string) *client.Client {
		c := testenv.Reading(&client.Client{BaseURL: serves[rand.IntN(len(serves))], Token: users[name]})
		c.HTTP.Timeout = 45 * time.Second
		return c
	}
	var ids []string
	for i := range n {
		off := as("officer")
		caseID, err := off.CreateCase(ctx, fmt.Sprintf("cluster case %d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		m, err := as("officer").CreateMeasure(ctx, caseID, map[string]any{
			"title": "m", "legal_basis": "police_duties_act_6_2", "kind": "self_execute", "technique": "block_c2",
			"operations": []string{"block"}, "executors": []string{"u-executor"},
			"alternatives": []map[string]string{{"means": "ask", "outcome": "tried", "reason": "no answer"}},
			"necessity":    "n", "proportionality": "p", "collateral": "c", "rollback_plan": "r",
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := as("officer").AddTargets(ctx, m.ID, []map[string]any{{"kind": "ip", "value": fmt.Sprintf("198.51.100.%d", i%250+1), "location": "domestic"}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}

	// Chaos: a process killed with SIGKILL and started again every one or two seconds, kills
	// times (the rest at once if the measures are through first); once, every database
	// connection cut. Each worker killed may hand the sequencer's lead over, and actions wait
	// for the new leader's start-up check.
	path := []struct {
		who, op string
		body    map[string]any
	}{
		{"officer", "submit", nil},
		{"legal", "legal_review", map[string]any{"decision": "approve", "checklist": measure.LegalRequirements}},
		{"commander", "command_review", map[string]any{"decision": "approve"}},
		{"chair", "vote", map[string]any{"decision": "approve"}},
		{"member1", "vote", map[string]any{"decision": "approve"}},
		{"member2", "vote", map[string]any{"decision": "approve"}},
	}
	var killed, retries atomic.Int64
	driving := make(chan struct{})
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		cut, restarted := false, false
		for killed.Load() < int64(kills) {
			select {
			case <-driving:
			case <-time.After(time.Duration(700+rand.IntN(1300)) * time.Millisecond):
			}
			procMu.Lock()
			p := procs[rand.IntN(len(procs))]
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			_ = p.cmd.Wait()
			killed.Add(1)
			start(p)
			procMu.Unlock()
			if !cut && killed.Load() == int64(kills/2) {
				cut = true
				if _, err := db.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`, role); err != nil {
					t.Logf("cut the connections: %v", err)
				}
				db.Reset() // this pool's other connections were cut too
			}
			if restartPG && !restarted && killed.Load() == int64(2*kills/3) {
				restarted = true
				restartPostgres(t)
				db.Reset()
			}
		}
	}()
	var wg sync.WaitGroup
	failures := make(chan error, n)
	for i, id := range ids {
		wg.Go(func() {
			for k, s := range path {
				key := fmt.Sprintf("%s/%d", id, k)
				// Generous: a leader change holds every action until the new leader's start-up check
				// ends, and a killed worker's activities wait out their timeouts.
				began := time.Now()
				deadline := began.Add(5 * time.Minute)
				// A decision names the digest read once, before the first try: every retry under
				// the key is then the same request (a read failing mid-chaos would change it).
				body := s.body
				if s.op != "submit" {
					for {
						m, err := as(s.who).Measure(ctx, id)
						if err == nil && m.Digest != "" {
							body = map[string]any{"digest": m.Digest}
							for k, v := range s.body {
								body[k] = v
							}
							break
						}
						if time.Now().After(deadline) {
							failures <- fmt.Errorf("measure %d step %s: read its digest: %v", i, s.op, err)
							return
						}
						time.Sleep(200 * time.Millisecond)
					}
				}
				for {
					m, err := as(s.who).ActOnce(ctx, id, s.op, key, body)
					if err == nil {
						_ = m
						if took := time.Since(began); took > 30*time.Second {
							t.Logf("measure %d step %s took %v", i, s.op, took.Round(time.Second))
						}
						break
					}
					if time.Now().After(deadline) {
						failures <- fmt.Errorf("measure %d step %s: %v", i, s.op, err)
						return
					}
					retries.Add(1)
					time.Sleep(200 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(driving)
	<-chaosDone
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	t.Logf("%d measures through 2 serve and 2 worker processes: %d kills, connections cut once, PostgreSQL restarted %v, %d requests retried", n, killed.Load(), restartPG, retries.Load())
	for _, p := range procs {
		waitHealthy(t, p.health, 2*time.Minute)
	}

	// Every measure approved, with exactly the entries its transitions call for.
	want := map[string]int{"measure.created": 1, "targets.added": 1, "submit": 1, "legal_review": 1, "command_review": 1,
		"gates_satisfied": 1, "vote": 3, "decide": 1}
	var entries int
	for i, id := range ids {
		m, err := as("officer").Measure(ctx, id)
		if err != nil || m.Stage != "APPROVED" {
			t.Errorf("measure %d: %s, %v; want APPROVED", i, m.Stage, err)
		}
		got := map[string]int{}
		rows, err := db.Query(ctx, `SELECT convert_from(record, 'UTF8')::jsonb->>'action', count(*) FROM audit_entries
			WHERE measure_id = $1 AND convert_from(record, 'UTF8')::jsonb->>'action' NOT LIKE 'refused.%' GROUP BY 1`, id)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			var c int
			if err := rows.Scan(&a, &c); err != nil {
				t.Fatal(err)
			}
			got[a] = c
			entries += c
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("measure %d audit entries:\n got  %v\n want %v", i, got, want)
		}
	}

	// Everything signed and cosigned, then exported and verified offline with the quorum.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var unsigned, signed, cosigned int64
		_ = db.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_entries e WHERE NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.entry_id = e.id)),
			(SELECT COALESCE(max(size), 0) FROM audit_checkpoints),
			(SELECT CASE WHEN count(*) = 2 THEN min(s) ELSE 0 END FROM (SELECT max(size) s FROM audit_cosignatures GROUP BY witness) w)`).Scan(&unsigned, &signed, &cosigned)
		if unsigned == 0 && signed > 0 && cosigned == signed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log is not signed and cosigned: %d entries waiting, checkpoint %d, cosigned %d", unsigned, signed, cosigned)
		}
	}
	archive := filepath.Join(dir, "archive")
	run("audit", "export", "-database-url", app, "-append-key", filepath.Join(dir, "append.key"), "-out", archive)
	policy := filepath.Join(dir, "policy.txt")
	if err := os.WriteFile(policy, fmt.Appendf(nil, "log %s\nwitness w %s\nwitness lite %s\ngroup both all w lite\nquorum both\n",
		strings.TrimSpace(string(vkey)), wit.VerifierKey(), lite.VKey), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := filepath.Join(dir, "takedown")
	if out, err := exec.Command("go", "build", "-o", cli, "../takedown").CombinedOutput(); err != nil {
		t.Fatalf("build takedown: %v\n%s", err, out)
	}
	if out, err := exec.Command(cli, "audit", "verify", "-policy", policy, "-archive", archive).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("takedown audit verify: %v\n%s", err, out)
	}

	// Temporal finds them by stage.
	tc, err := temporalclient.DialContext(ctx, temporalclient.Options{HostPort: taddr, Namespace: "takedown", Logger: quietSDK{}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		res, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "takedown", Query: "TakedownStage = 'APPROVED'"})
		if err == nil && res.Count == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporal finds %v measures in APPROVED (%v), want %d", res, err, n)
		}
	}
	t.Logf("%d audit entries for the measures, each as its transitions call for; the export verifies with both witnesses' cosignatures (one of them litewitness)", entries)
}

// restartPostgres restarts the local PostgreSQL server (Debian's pg_ctlcluster) and waits until
// it answers again: every connection of every process is cut, and the server is away for a while.
func restartPostgres(t *testing.T) {
	versions, err := filepath.Glob("/etc/postgresql/*/main")
	if err != nil || len(versions) == 0 {
		t.Errorf("no Debian PostgreSQL cluster to restart: %v", err)
		return
	}
	version := filepath.Base(filepath.Dir(versions[len(versions)-1]))
	began := time.Now()
	if out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart").CombinedOutput(); err != nil {
		t.Errorf("pg_ctlcluster %s main restart: %v\n%s", version, err, out)
		return
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:5432"); err == nil {
			c.Close()
			t.Logf("PostgreSQL restarted in %v", time.Since(began).Round(time.Millisecond))
			return
		}
	}
	t.Error("PostgreSQL did not answer within a minute of its restart")
}

// quietSDK keeps the Temporal SDK's client logs out of the test's output.
type quietSDK struct{}

func (quietSDK) Debug(string, ...any) {}
func (quietSDK) Info(string, ...any)  {}
func (quietSDK) Warn(string, ...any)  {}
func (quietSDK) Error(string, ...any) {}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func freePort(t *testing.T) int {
	_, p, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

func waitHealthy(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %v (%v)", url, within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
