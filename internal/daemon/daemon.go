package daemon

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/takedown/takedown/internal/notify"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault" // hashivault:// signing keys
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"golang.org/x/mod/sumdb/note"

	"github.com/takedown/takedown/activities"
	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/demo"
	"github.com/takedown/takedown/internal/devenv"
	"github.com/takedown/takedown/internal/metrics"
	"github.com/takedown/takedown/internal/payload"
	"github.com/takedown/takedown/internal/reconcile"
	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/internal/tracing"
	"github.com/takedown/takedown/internal/witness"
	"github.com/takedown/takedown/schema"
	"github.com/takedown/takedown/ui/api"
	"github.com/takedown/takedown/ui/signon"
	"github.com/takedown/takedown/ui/web"
	"github.com/takedown/takedown/workflows"
)

// Mode is which pieces a process runs.
type Mode int

const (
	// Dev runs everything in one process: Temporal, worker, HTTP, demo users.
	Dev Mode = iota
	// Serve runs the UI and API against external Temporal and PostgreSQL.
	Serve
	// Worker runs workflow and activity workers against external Temporal and PostgreSQL.
	Worker
	// Tool is an operator's one-off command (bootstrap, audit export): it only loads keys.
	Tool
)

// Daemon is a running takedownd.
type Daemon struct {
	URL         string            // base URL of the HTTP server, when serving
	DB          *pgxpool.Pool     // the database pool
	Temporal    client.Client     // the Temporal client
	Credentials []demo.Credential // demo users created by this start (Dev, first start only)
	Metrics     *metrics.Registry
	// Service is the one door, when serving (dev, serve): tests drive its notifier's clock.
	Service *service.Service
	// AdminURL is the worker's own health and metrics address, when it has one.
	AdminURL    string
	admin       *http.Server
	stopTraces  func(context.Context) error
	log         *slog.Logger
	pg          *devenv.Postgres
	devTemporal *devenv.Temporal
	worker      worker.Worker
	http        *http.Server
	unlock      func()
	stopWatch   context.CancelFunc
	stopNotify  context.CancelFunc
	stopSeq     context.CancelFunc
	seqDone     chan struct{}
	// VerifierKey is the audit log's note verifier key, for auditors' policy files.
	VerifierKey string
	// Appender authenticates the audit entries this process writes.
	Appender *audit.Appender
	// WitnessKey is the cosignature verifier key of dev's own witness ("" when none runs).
	WitnessKey string
	witnessSrv *http.Server
	witnessTmp string // the witness's state when dev keeps no data directory

	// While Start runs, the HTTP ports already answer: /healthz (alive, once the database
	// answers) and /readyz (503, naming what it waits for), so a probe does not kill a
	// process that waits for Temporal. front is swapped for the real handler at the end.
	front   atomic.Pointer[http.Handler]
	phase   atomic.Pointer[string]
	earlyDB atomic.Pointer[pgxpool.Pool]
}

// starting answers while Start has not finished.
func (d *Daemon) starting(w http.ResponseWriter, r *http.Request) {
	phase := "starting"
	if p := d.phase.Load(); p != nil {
		phase = *p
	}
	switch r.URL.Path {
	case "/healthz":
		// Alive while it waits for a Temporal that does not answer (a liveness probe must not
		// kill it for that); any other step is short, and not ready.
		if db := d.earlyDB.Load(); db != nil && strings.HasPrefix(phase, waitingForTemporal) {
			if err := db.Ping(r.Context()); err == nil {
				fmt.Fprintf(w, "ok (starting: %s)\n", phase)
				return
			}
		}
		http.Error(w, "starting: "+phase, http.StatusServiceUnavailable)
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "starting: "+phase, http.StatusServiceUnavailable)
	}
}

// serveFront serves with the handler of the moment: starting, then the real one.
func (d *Daemon) serveFront(w http.ResponseWriter, r *http.Request) {
	if h := d.front.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	d.starting(w, r)
}

func (d *Daemon) setPhase(p string) { d.phase.Store(&p) }

const waitingForTemporal = "waiting for Temporal, which does not answer, at "

// Start brings up the pieces of mode and returns once they are ready: in Dev and Serve, the
// HTTP server answers /healthz with 200 as soon as Start returns.
func Start(ctx context.Context, cfg Config, mode Mode, log *slog.Logger) (_ *Daemon, err error) {
	if mode == Dev && !devenv.Embedded {
		return nil, devenv.StartTemporalErr()
	}
	if mode == Worker && cfg.LogOrigin == "" {
		return nil, ErrNoOrigin
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{log: log}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if mode == Dev && cfg.DataDir != "" {
		if d.unlock, err = lockDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	// Claim the HTTP address first, so a taken port fails before anything starts; requests
	// wait in the listen queue until everything is ready.
	if mode == Dev || mode == Serve {
		l, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
		}
		d.URL = "http://" + l.Addr().String()
		d.http = &http.Server{Handler: http.HandlerFunc(d.serveFront), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		if cfg.TLSCert != "" || cfg.TLSKey != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("load -tls-cert and -tls-key: %w", err)
			}
			d.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			l = tls.NewListener(l, d.http.TLSConfig)
			d.URL = "https://" + l.Addr().String()
		}
		go func() {
			if err := d.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		}()
	}
	if mode == Worker && cfg.AdminHTTP != "" {
		l, err := net.Listen("tcp", cfg.AdminHTTP)
		if err != nil {
			return nil, fmt.Errorf("listen on -admin-http %s: %w", cfg.AdminHTTP, err)
		}
		d.AdminURL = "http://" + l.Addr().String()
		d.admin = &http.Server{Handler: http.HandlerFunc(d.serveFront), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := d.admin.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin http server", "err", err)
			}
		}()
	}
	d.setPhase("connecting to the database")

	dbURL := cfg.DatabaseURL
	if mode == Dev {
		if d.pg, err = devenv.FindPostgres(ctx, log, cfg.DatabaseURL, cfg.DataDir); err != nil {
			return nil, fmt.Errorf("find PostgreSQL: %w", err)
		}
		dbURL = d.pg.URL
	}
	if dbURL == "" {
		return nil, errors.New("no database: set -database-url or DATABASE_URL")
	}
	poolCfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("parse the database URL: %w", err)
	}
	if !strings.Contains(dbURL, "pool_max_conns") {
		// The sequencer's lock and the policy watcher hold a connection each for good, and a
		// request may look up records while its transaction holds another: pgx's default
		// (4 on two cores) left requests waiting on each other for seconds.
		poolCfg.MaxConns = max(poolCfg.MaxConns, 16)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		var stop func(context.Context) error
		if tp, stop, err = tracing.Exporting(ctx, cfg.OTLPEndpoint, "takedownd"); err != nil {
			return nil, err
		}
		d.stopTraces = stop
	}
	poolCfg.ConnConfig.Tracer = tracing.NewSQL(tp)
	if mode == Dev {
		// dev migrates as the URL's role, the owner, and then runs as a role of its own that
		// may only add to the audit log, as serve and worker should.
		if err := Migrate(ctx, dbURL); err != nil {
			return nil, err
		}
		if err := devAppRole(ctx, dbURL, poolCfg.ConnConfig, log); err != nil {
			return nil, err
		}
	} else if err := CheckSchema(ctx, dbURL); err != nil {
		return nil, err
	}
	if d.DB, err = pgxpool.NewWithConfig(ctx, poolCfg); err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	d.earlyDB.Store(d.DB)
	d.Metrics = metrics.New(d.DB, log)
	if mode != Dev {
		warnPrivileged(ctx, d.DB, log)
	}
	if d.Appender, err = LoadAppender(cfg, mode); err != nil {
		return nil, err
	}
	if mode == Dev {
		if cfg.DataDir != "" {
			if err := pairDataDir(ctx, d.DB, cfg.DataDir, redactURL(dbURL)); err != nil {
				return nil, err
			}
			log.Info("state", "data_dir", absPath(cfg.DataDir), "database", redactURL(dbURL))
		}
		if d.Credentials, err = demo.Seed(ctx, d.DB, d.Appender, cfg.PasswordCost); err != nil {
			return nil, err
		}
	}

	codec, err := loadPayloadCodec(cfg, mode)
	if err != nil {
		return nil, err
	}
	copts := client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace, Logger: sdklog.NewStructuredLogger(log.With("component", "temporal-client")),
		DataConverter: codec.DataConverter(), FailureConverter: codec.FailureConverter(), MetricsHandler: d.Metrics.Temporal()}
	traced, err := tracing.Temporal(tp)
	if err != nil {
		return nil, err
	}
	copts.Interceptors = []interceptor.ClientInterceptor{traced}
	if mode == Dev {
		if cfg.DevTemporal != "" {
			copts.HostPort = cfg.DevTemporal
		} else {
			dbFile := ""
			if cfg.DataDir != "" {
				dbFile = filepath.Join(cfg.DataDir, "temporal.db")
			}
			if d.devTemporal, err = devenv.StartTemporal(ctx, devenv.TemporalOptions{DBFile: dbFile, LogLevel: cfg.TemporalLogLevel,
				SearchAttributes: workflows.SearchAttributes()}); err != nil {
				return nil, err
			}
			copts.HostPort, copts.Namespace = d.devTemporal.HostPort, devenv.Namespace
		}
		if d.Temporal, err = client.DialContext(ctx, copts); err != nil {
			return nil, fmt.Errorf("connect to Temporal at %s: %w", copts.HostPort, err)
		}
		if err := SetupTemporal(ctx, d.Temporal, copts.Namespace, DefaultRetention, log); err != nil {
			return nil, err
		}
	} else {
		if err := connectTemporal(cfg, &copts); err != nil {
			return nil, err
		}
		d.setPhase("connecting to Temporal at " + copts.HostPort)
		if d.Temporal, err = dialTemporal(ctx, copts, log, func() { d.setPhase(waitingForTemporal + copts.HostPort) }); err != nil {
			return nil, err
		}
		if err := checkTemporal(ctx, d.Temporal, copts.Namespace, log); err != nil {
			return nil, err
		}
	}
	if d.devTemporal != nil {
		d.devTemporal.Ready()
	}

	if mode == Dev || mode == Worker {
		d.worker = worker.New(d.Temporal, workflows.TaskQueue, worker.Options{})
		d.worker.RegisterWorkflow(workflows.MeasureWorkflow)
		d.worker.RegisterActivity(&activities.Activities{DB: d.DB, Audit: d.Appender})
		if err := d.worker.Start(); err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
	}

	if mode == Dev || mode == Worker {
		signer, vkey, err := loadSigner(ctx, cfg, mode)
		if err != nil {
			return nil, err
		}
		d.VerifierKey = vkey
		seq := &audit.Sequencer{DB: d.DB, Signer: signer, VerifierKeys: []string{vkey}, Origin: cfg.LogOrigin, Recheck: cfg.LogRecheck, Appender: d.Appender,
			Log: log.With("component", "audit-sequencer"), Signed: d.Metrics.Signed}
		if mode == Dev && cfg.DevWitness && len(cfg.Witnesses) == 0 {
			spec, err := d.startDevWitness(cfg, vkey, log)
			if err != nil {
				return nil, err
			}
			cfg.Witnesses = []string{spec}
		}
		if len(cfg.Witnesses) == 0 && mode == Worker {
			log.Warn("no -witness: nobody outside this installation cosigns the audit log, so a database restored from an older dump, or rewritten with the signing key, goes unnoticed (SECURITY.md)")
		}
		if len(cfg.Witnesses) > 0 {
			wit := &audit.Witnessing{DB: d.DB, Log: log.With("component", "audit-witnesses")}
			for _, spec := range cfg.Witnesses {
				w, err := audit.ParseWitness(spec)
				if err != nil {
					return nil, err
				}
				wit.Witnesses = append(wit.Witnesses, w)
			}
			seq.Witnessing = wit
		}
		if cfg.NextSigningKey != "" {
			s, err := openKey(ctx, cfg.NextSigningKey)
			if err != nil {
				return nil, fmt.Errorf("next signing key: %w", err)
			}
			next, nextKey, err := audit.NewNoteSigner(ctx, cfg.LogOrigin, s)
			if err != nil {
				return nil, err
			}
			seq.NextSigner, seq.VerifierKeys = next, append(seq.VerifierKeys, nextKey)
			log.Info("audit key rotation: checkpoints are signed by both keys", "next", nextKey)
		}
		if err := checkSigningKey(ctx, d.DB, cfg.LogOrigin, seq.VerifierKeys); err != nil {
			return nil, err
		}
		seqCtx, cancel := context.WithCancel(context.Background())
		d.stopSeq, d.seqDone = cancel, make(chan struct{})
		var background sync.WaitGroup
		background.Go(func() { _ = seq.Run(seqCtx) })
		if cfg.ReconcileEvery > 0 {
			mon := &reconcile.Monitor{DB: d.DB, Every: cfg.ReconcileEvery, Log: log.With("component", "reconcile")}
			background.Go(func() { mon.Run(seqCtx) })
		}
		go func() {
			background.Wait()
			close(d.seqDone)
		}()
		// Nothing is served before the start-up check of the log has ended (or found another
		// replica leading), so no request is accepted over a database it has not checked.
		d.setPhase("the audit log's start-up check")
		select {
		case <-seq.Ready():
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(StartupCheckWait):
			log.Warn("the audit log's start-up check is still running; nothing is accepted until it ends", "waited", StartupCheckWait)
		}
	}

	if mode == Worker && cfg.AdminHTTP != "" {
		mux := http.NewServeMux()
		d.registerHealth(mux)
		var h http.Handler = d.Metrics.Instrument(metrics.Routed(mux))
		d.front.Store(&h)
	}

	if mode == Dev || mode == Serve {
		mux := http.NewServeMux()
		az := &authz.Authorizer{}
		svc := &service.Service{DB: d.DB, Temporal: d.Temporal, Authz: az, Audit: d.Appender, Workflow: cfg.Workflow, MaxEvidence: cfg.MaxEvidence,
			TokenTTL: cfg.TokenTTL, PasswordCost: cfg.PasswordCost, Log: log, Now: cfg.Clock, Refusals: d.Metrics.Refused}
		d.Service = svc
		// Only a policy the log recorded is put in force.
		az.Verify = svc.VerifyPolicy
		if err := az.Reload(ctx, d.DB); err != nil {
			return nil, fmt.Errorf("load the authorization policy: %w", err)
		}
		wctx, cancel := context.WithCancel(context.Background())
		d.stopWatch = cancel
		go az.Watch(wctx, d.DB, log.With("component", "authz"))
		if cfg.NotifyEvery > 0 {
			base := cfg.PublicURL
			if base == "" {
				base = d.URL
			}
			sender := &notify.Sender{BaseURL: base, SMTP: notify.SMTP{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, User: cfg.SMTPUser,
				Password: cfg.SMTPPassword, TLS: cfg.SMTPTLS}, AllowPrivate: cfg.WebhookPrivate}
			nctx, cancel := context.WithCancel(context.Background())
			d.stopNotify = cancel
			clock := cfg.Clock
			if clock == nil {
				clock = time.Now
			}
			go notify.Run(nctx, svc, sender, cfg.NotifyEvery, clock, log.With("component", "notify"))
		}
		if d.VerifierKey != "" {
			svc.LogKeys = []string{d.VerifierKey}
		}
		for _, spec := range cfg.Witnesses {
			w, err := audit.ParseWitness(spec)
			if err != nil {
				return nil, err
			}
			svc.WitnessKeys = append(svc.WitnessKeys, w.Verifier.String())
		}
		sso := &signon.Provider{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
			RedirectURL: cfg.OIDCRedirectURL, RolesClaim: cfg.OIDCRolesClaim, OrgClaim: cfg.OIDCOrgClaim,
			CLIKey: ed25519.NewKeyFromSeed(d.Appender.Derive("takedown cli sign-on answer key v1"))}
		if err := sso.Check(ctx, log); err != nil {
			return nil, err
		}
		pages := web.New(svc, d.DB)
		pages.SSO = sso
		pages.Secure = cfg.Secure()
		srv := &api.Server{Service: svc, SSO: sso, BrowserSignOn: pages.SignOn}
		srv.Register(mux)
		srv.RegisterLog(mux)
		srv.RegisterCodec(mux, converter.NewPayloadCodecHTTPHandler(codec), cfg.CodecOrigins)
		pages.Register(mux)
		d.registerHealth(mux)
		var h http.Handler = d.Metrics.Instrument(tracing.HTTP(withRequestIDs(behindProxies(withDeadline(metrics.Routed(tracing.Named(mux)), cfg.RequestTimeout), cfg.TrustedProxies), log), tp))
		d.front.Store(&h)
	}
	return d, nil
}

// registerHealth adds /healthz (alive, and its database answers), /readyz (it can do its job:
// the database, Temporal and the audit log all answer and the log is neither halted nor being
// checked) and /metrics to mux.
func (d *Daemon) registerHealth(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.ready(r.Context(), false); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.ready(r.Context(), true); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", d.Metrics.Handler())
}

// ready says what keeps this process from doing its job; withTemporal also asks Temporal.
func (d *Daemon) ready(ctx context.Context, withTemporal bool) error {
	if err := d.DB.Ping(ctx); err != nil {
		// The detail (which host, user and database) is for the log, not for whoever asks.
		d.log.WarnContext(ctx, "health: the database does not answer", "err", err)
		return errors.New("database: does not answer (the process's log says why)")
	}
	// Not ready while the audit log refuses to sign over a database it does not trust, nor
	// before its start-up check has finished.
	problems, err := audit.Blocked(ctx, d.DB)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("audit log halted: %s", strings.Join(problems, "; "))
	}
	if withTemporal {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := d.Temporal.CheckHealth(tctx, &client.CheckHealthRequest{}); err != nil {
			d.log.WarnContext(ctx, "health: Temporal does not answer", "err", err)
			return errors.New("temporal: does not answer (the process's log says why)")
		}
	}
	return nil
}

// StartupCheckWait is how long Start waits for the audit log's start-up check before it
// serves anyway (refusing every action, 503, until the check ends).
const StartupCheckWait = 2 * time.Minute

// redactURL shows a connection string without its password.
func redactURL(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return "(unparsable connection string)"
	}
	return fmt.Sprintf("host=%s port=%d dbname=%s user=%s", cfg.Host, cfg.Port, cfg.Database, cfg.User)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// withDeadline gives every request a deadline: handlers answer 504 when it passes rather than
// leave the client waiting on a database or workflow that does not answer.
func withDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Close stops everything Start started, newest first.
func (d *Daemon) Close() {
	if d.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.http.Shutdown(ctx)
		cancel()
	}
	if d.admin != nil {
		_ = d.admin.Close()
	}
	defer func() {
		if d.stopTraces != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = d.stopTraces(ctx) // flushes the spans not exported yet
			cancel()
		}
	}()
	if d.stopNotify != nil {
		d.stopNotify()
	}
	if d.stopWatch != nil {
		d.stopWatch()
	}
	if d.worker != nil {
		d.worker.Stop()
	}
	if d.stopSeq != nil {
		d.stopSeq()
		<-d.seqDone
	}
	if d.witnessSrv != nil {
		_ = d.witnessSrv.Close()
	}
	if d.witnessTmp != "" {
		os.RemoveAll(d.witnessTmp)
	}
	if d.Temporal != nil {
		d.Temporal.Close()
	}
	if d.devTemporal != nil {
		if err := d.devTemporal.Stop(); err != nil {
			d.log.Warn("stop temporal", "err", err)
		}
	}
	if d.DB != nil {
		d.DB.Close()
	}
	if d.pg != nil {
		if err := d.pg.Stop(); err != nil {
			d.log.Warn("stop private PostgreSQL", "err", err)
		}
	}
	if d.unlock != nil {
		d.unlock()
	}
}

// startDevWitness runs dev's own witness: its own key and state under <data-dir>/witness
// (a temporary directory without one), its own loopback port, speaking c2sp.org/tlog-witness
// to the sequencer like any other. It returns the witness as a -witness value.
func (d *Daemon) startDevWitness(cfg Config, logKey string, log *slog.Logger) (string, error) {
	dir := ""
	if cfg.DataDir != "" {
		dir = filepath.Join(cfg.DataDir, "witness")
	} else {
		tmp, err := os.MkdirTemp("", "takedown-witness-")
		if err != nil {
			return "", fmt.Errorf("dev witness: %w", err)
		}
		d.witnessTmp, dir = tmp, tmp
	}
	key, err := witness.LoadKey(filepath.Join(dir, "witness.key"), true)
	if err != nil {
		return "", fmt.Errorf("dev witness: %w", err)
	}
	w, err := witness.New(DevWitnessName, key, dir, []string{logKey}, log.With("component", "dev-witness"))
	if err != nil {
		return "", fmt.Errorf("dev witness: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "witness.vkey"), []byte(w.VerifierKey()+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("dev witness: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("dev witness: %w", err)
	}
	d.witnessSrv = &http.Server{Handler: w, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.witnessSrv.Serve(l) }()
	d.WitnessKey = w.VerifierKey()
	log.Info("dev witness", "url", "http://"+l.Addr().String(), "vkey", d.WitnessKey, "state", absPath(dir))
	return "http://" + l.Addr().String() + " " + d.WitnessKey, nil
}

// DevWitnessName names dev's own witness in its cosignatures.
const DevWitnessName = "takedown.local/dev-witness"

// lockDir takes an exclusive lock on the data directory: two processes on one Temporal
// SQLite file would corrupt each other's work.
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another takedownd is using %s (hint: stop it, or pass a different -data-dir)", dir)
	}
	return func() { f.Close() }, nil
}

// Migrate applies the schema's migrations to the database at url, as the tables' owner, and
// when appRoles are named, grants each what serve and worker need (schema.Grant).
func Migrate(ctx context.Context, url string, appRoles ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if err := schema.Migrate(ctx, conn); err != nil {
		return err
	}
	for _, r := range appRoles {
		if err := schema.Grant(ctx, conn, r); err != nil {
			return err
		}
	}
	return nil
}

// CheckSchema returns nil when the database at url is at this binary's migration.
func CheckSchema(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	return schema.Check(ctx, conn)
}

// devAppRole makes (or updates) dev's serving role, <database>_app, with a new random password,
// grants it what it needs, and points cc at it. When the URL's role cannot make roles, dev runs
// as that role and says so.
func devAppRole(ctx context.Context, ownerURL string, cc *pgx.ConnConfig, log *slog.Logger) error {
	conn, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var db string
	var canCreate bool
	if err := conn.QueryRow(ctx, `SELECT current_database(), rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user`).Scan(&db, &canCreate); err != nil {
		return fmt.Errorf("look at the database role: %w", err)
	}
	if !canCreate {
		log.Warn("the database role cannot create roles: dev serves as the tables' owner, which can rewrite the audit log (see SECURITY.md, least privilege)")
		return nil
	}
	role := db
	if len(role) > 59 {
		role = role[:59]
	}
	role += "_app"
	pw := make([]byte, 24)
	_, _ = rand.Read(pw)
	password := hex.EncodeToString(pw)
	ident := pgx.Identifier{role}.Sanitize()
	// Roles are the cluster's, not the database's: another dev on the same cluster may be
	// creating its own at the same moment, so a failed CREATE is retried as an ALTER.
	if _, err := conn.Exec(ctx, `CREATE ROLE `+ident+` LOGIN PASSWORD '`+password+`'`); err != nil {
		if _, err := conn.Exec(ctx, `ALTER ROLE `+ident+` LOGIN PASSWORD '`+password+`'`); err != nil {
			return fmt.Errorf("set up the serving role %s: %w", role, err)
		}
	}
	if err := schema.Grant(ctx, conn, role); err != nil {
		return err
	}
	cc.User, cc.Password = role, password
	return nil
}

// warnPrivileged says so when serve or worker connects as a role that could rewrite the audit
// log (its owner, a superuser, or one granted UPDATE on it): the log still detects a rewrite,
// but least privilege would have prevented it.
func warnPrivileged(ctx context.Context, db *pgxpool.Pool, log *slog.Logger) {
	var can bool
	err := db.QueryRow(ctx, `SELECT has_table_privilege('audit_entries', 'UPDATE') OR pg_has_role(c.relowner, 'USAGE')
		FROM pg_class c WHERE c.oid = 'audit_entries'::regclass`).Scan(&can)
	if err == nil && can {
		log.Warn("connected as a role that may alter the audit tables; run serve and worker as a role granted by `takedownd migrate -app-role` (see SECURITY.md)")
	}
}

// loadSigner returns the audit checkpoint signer. `dev` keeps its key in the data directory
// (made on first start, with the verifier key beside it in audit.vkey), or in memory when
// there is no data directory (tests).
// LoadSigner opens the checkpoint signing key -signing-key names, under -log-origin, for a
// command that signs (audit restart-log), and returns its verifier key.
func LoadSigner(ctx context.Context, cfg Config) (note.Signer, string, error) {
	if cfg.LogOrigin == "" {
		return nil, "", ErrNoOrigin
	}
	return loadSigner(ctx, cfg, Tool)
}

func loadSigner(ctx context.Context, cfg Config, mode Mode) (note.Signer, string, error) {
	path := cfg.SigningKey
	var s signature.Signer
	var err error
	switch {
	case path == "" && mode == Dev && cfg.DataDir == "":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, "", err
		}
		if s, err = signature.LoadED25519SignerVerifier(priv); err != nil {
			return nil, "", err
		}
	case path == "" && mode != Dev:
		return nil, "", errors.New("the audit sequencer needs -signing-key (make one with `takedownd keygen`)")
	case path == "":
		path = filepath.Join(cfg.DataDir, "audit.key")
		if _, err := os.Stat(path); os.IsNotExist(err) {
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return nil, "", err
			}
			if err := audit.GenerateKey(path); err != nil {
				return nil, "", err
			}
		}
		fallthrough
	default:
		if s, err = openKey(ctx, path); err != nil {
			return nil, "", err
		}
	}
	signer, vkey, err := audit.NewNoteSigner(ctx, cfg.LogOrigin, s)
	if err != nil {
		return nil, "", err
	}
	if mode == Dev && cfg.DataDir != "" {
		if err := os.WriteFile(filepath.Join(cfg.DataDir, "audit.vkey"), []byte(vkey+"\n"), 0o644); err != nil {
			return nil, "", fmt.Errorf("write audit.vkey: %w", err)
		}
	}
	return signer, vkey, nil
}

// LoadAppender returns the key that authenticates audit entries. `dev` keeps it in the data
// directory (made on first start), or in memory when there is none (tests); serve and worker
// must be given the same file.
func LoadAppender(cfg Config, mode Mode) (*audit.Appender, error) {
	path := cfg.AppendKey
	switch {
	case path == "" && mode == Dev && cfg.DataDir == "":
		key := make([]byte, audit.AppendKeySize)
		_, _ = rand.Read(key)
		return audit.NewAppender(key)
	case path == "" && mode == Tool:
		// An operator's command beside a `dev` installation uses its key.
		path = filepath.Join(cfg.DataDir, "append.key")
		if _, err := os.Stat(path); err != nil {
			return nil, errors.New("this command writes an audit entry: give it -append-key (TAKEDOWN_APPEND_KEY), the file serve and worker use")
		}
	case path == "" && mode != Dev:
		return nil, errors.New("audit entries need -append-key (make one with `takedownd keygen -append`), the same file for serve and worker")
	case path == "":
		path = filepath.Join(cfg.DataDir, "append.key")
		if _, err := os.Stat(path); os.IsNotExist(err) {
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return nil, err
			}
			if err := audit.GenerateAppendKey(path); err != nil {
				return nil, err
			}
		}
	}
	return audit.LoadAppender(path)
}

// ErrNoOrigin asks for the name of a production audit log.
var ErrNoOrigin = errors.New("the audit log needs a name of its own: give -log-origin (TAKEDOWN_LOG_ORIGIN), unique among the logs your witnesses cosign, " +
	"e.g. audit.npa.example/takedown; an installation that ran without one keeps " + DefaultLogOrigin)

// DefaultRetention is how long Temporal keeps a closed measure's history in a namespace
// `takedownd temporal-setup` or `dev` registers (the record that counts is the audit log).
const DefaultRetention = 30 * 24 * time.Hour

// TemporalSetup connects as cfg says and registers the namespace and search attributes
// (`takedownd temporal-setup`).
func TemporalSetup(ctx context.Context, cfg Config, retention time.Duration, log *slog.Logger) error {
	opts := client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace, Logger: sdklog.NewStructuredLogger(log.With("component", "temporal-client"))}
	var err error
	if err = connectTemporal(cfg, &opts); err != nil {
		return err
	}
	c, err := dialTemporal(ctx, opts, log, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return SetupTemporal(ctx, c, cfg.Namespace, retention, log)
}

// loadPayloadCodec returns the codec that seals what the workflows hand to Temporal. `dev`
// keeps its key in the data directory (made on first start), or in memory when there is none;
// serve and worker must be given the same file.
func loadPayloadCodec(cfg Config, mode Mode) (*payload.Codec, error) {
	c, err := openPayloadCodec(cfg, mode)
	if err != nil {
		return nil, err
	}
	c.AcceptPlaintext = cfg.PayloadAcceptPlaintext
	return c, nil
}

func openPayloadCodec(cfg Config, mode Mode) (*payload.Codec, error) {
	path := cfg.PayloadKey
	switch {
	case path == "" && mode == Dev && cfg.DataDir == "":
		key := make([]byte, payload.KeySize)
		_, _ = rand.Read(key)
		return payload.New(key)
	case path == "" && mode != Dev:
		return nil, errors.New("-payload-key is needed: it seals every Temporal payload (make one with `takedownd keygen -payload`), the same file for serve and worker")
	case path == "":
		path = filepath.Join(cfg.DataDir, "payload.key")
		if _, err := os.Stat(path); os.IsNotExist(err) {
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return nil, err
			}
			if _, err := payload.Generate(path); err != nil {
				return nil, err
			}
		}
	}
	return payload.Load(path)
}

// openKey opens a signing key: a KMS reference through sigstore's providers (hashivault:// is
// compiled in; VAULT_ADDR and VAULT_TOKEN configure it), or a PEM file from `takedownd keygen`.
func openKey(ctx context.Context, ref string) (signature.Signer, error) {
	if strings.Contains(ref, "://") {
		// Hash 0: an Ed25519 key signs the checkpoint text itself, as signed notes require.
		sv, err := kms.Get(ctx, ref, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", ref, err)
		}
		return sv, nil
	}
	return audit.LoadKey(ref)
}

// connectTemporal sets how serve, worker and temporal-setup reach a cluster: TLS (with a
// client certificate for mTLS, or a CA of its own), and an API key (Temporal Cloud), which
// implies TLS.
func connectTemporal(cfg Config, opts *client.Options) error {
	var err error
	if opts.ConnectionOptions.TLS, err = tlsConfig(cfg); err != nil {
		return err
	}
	if cfg.TemporalAPIKey != "" {
		key, err := os.ReadFile(cfg.TemporalAPIKey)
		if err != nil {
			return fmt.Errorf("read the Temporal API key: %w", err)
		}
		opts.Credentials = client.NewAPIKeyStaticCredentials(strings.TrimSpace(string(key)))
		if opts.ConnectionOptions.TLS == nil {
			opts.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TemporalTLSServerName}
		}
	}
	return nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	if !cfg.TemporalTLS && cfg.TemporalTLSCert == "" && cfg.TemporalTLSCA == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TemporalTLSServerName}
	if cfg.TemporalTLSCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.TemporalTLSCert, cfg.TemporalTLSKey)
		if err != nil {
			return nil, fmt.Errorf("load Temporal client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	if cfg.TemporalTLSCA != "" {
		pem, err := os.ReadFile(cfg.TemporalTLSCA)
		if err != nil {
			return nil, fmt.Errorf("read Temporal CA: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", cfg.TemporalTLSCA)
		}
	}
	return t, nil
}

// checkSigningKey refuses to start a sequencer configured for another log: an origin that is
// not the newest checkpoint's, or keys none of which the log's key history holds. Started, it
// would find a checkpoint its keys do not open and halt the log as tampered with, a false
// alarm that stops every action until an operator clears it.
func checkSigningKey(ctx context.Context, db *pgxpool.Pool, origin string, vkeys []string) error {
	var text string
	err := db.QueryRow(ctx, `SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&text)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // nothing signed yet: this key starts the log
	}
	if err != nil {
		return fmt.Errorf("read the newest checkpoint: %w", err)
	}
	body, _, _ := strings.Cut(text, "\n\n")
	if ck, err := audit.ParseCheckpoint(body + "\n"); err == nil && ck.Origin != origin {
		return fmt.Errorf("-log-origin %q is not this log's origin, %q (its newest checkpoint): give -log-origin %q; after a restore the witnesses saw past, go on under a new origin with `takedownd audit restart-log`", origin, ck.Origin, ck.Origin)
	}
	var known []string
	if err := db.QueryRow(ctx, `SELECT COALESCE(array_agg(vkey), '{}') FROM audit_keys`).Scan(&known); err != nil {
		return fmt.Errorf("read the log's key history: %w", err)
	}
	if len(known) == 0 {
		return nil
	}
	for _, k := range vkeys {
		if slices.Contains(known, k) {
			return nil
		}
	}
	return fmt.Errorf("-signing-key is not a key this log was ever signed with (its key history holds %s): give the key that signs it; a new key joins with -next-signing-key beside the old one", strings.Join(known, ", "))
}
