//go:build !nodev

package devenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/metrics"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// Embedded reports whether this build holds the embedded Temporal server.
const Embedded = true

// Temporal is a running in-process Temporal server.
type Temporal struct {
	server   temporal.Server
	HostPort string // frontend gRPC address, for client.Dial
	quiet    *atomic.Bool
}

// StartTemporal starts a single-process Temporal server (frontend, history, matching, worker)
// on free loopback ports. The schema is created on first use of the file, and the takedown
// namespace is registered if missing, so a restart resumes the workflows stored in the file.
func StartTemporal(ctx context.Context, opts TemporalOptions) (*Temporal, error) {
	sqlCfg := config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{},
		DatabaseName:      opts.DBFile,
	}
	switch {
	case opts.Postgres != nil:
		sqlCfg = opts.Postgres.SQLConfig(opts.Postgres.Database)
	case opts.DBFile == "":
		sqlCfg.ConnectAttributes["mode"] = "memory"
		sqlCfg.ConnectAttributes["cache"] = "shared"
	default:
		sqlCfg.ConnectAttributes["mode"] = "rwc"
		// WAL keeps the file consistent across a SIGKILL while staying fast.
		sqlCfg.ConnectAttributes["_journal_mode"] = "wal"
		sqlCfg.ConnectAttributes["_synchronous"] = "2"
		if _, err := os.Stat(opts.DBFile); os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(opts.DBFile), 0o700); err != nil {
				return nil, fmt.Errorf("create temporal state directory: %w", err)
			}
			if err := sqliteschema.SetupSchema(&sqlCfg); err != nil {
				return nil, fmt.Errorf("set up temporal schema in %s: %w", opts.DBFile, err)
			}
		}
	}

	// Another process may bind a chosen port before the server does; fresh ports then.
	for attempt := 1; ; attempt++ {
		t, err := startOn(opts, sqlCfg)
		if err == nil || attempt == 3 {
			return t, err
		}
		if opts.DBFile != "" {
			os.Remove(opts.DBFile + ".ports")
		}
	}
}

func startOn(opts TemporalOptions, sqlCfg config.SQL) (*Temporal, error) {
	// SQLite holds both schemas in one database; PostgreSQL keeps them apart.
	stores := map[string]config.DataStore{"main": {SQL: &sqlCfg}}
	visibility := "main"
	if pg := opts.Postgres; pg != nil {
		visCfg := pg.SQLConfig(pg.Visibility)
		visibility = "visibility"
		stores[visibility] = config.DataStore{SQL: &visCfg}
	} else if opts.DBFile == "" {
		// A distinct name per server and attempt: shared-cache memory databases are
		// process-wide. The SQLite plugin creates the schema of a memory database itself.
		sqlCfg.DatabaseName = fmt.Sprintf("takedown-%d", time.Now().UnixNano())
	}
	ports, err := temporalPorts(opts.DBFile)
	if err != nil {
		return nil, err
	}
	hostPort := fmt.Sprintf("127.0.0.1:%d", ports[0])
	service := func(grpc, membership int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: grpc, MembershipPort: membership, BindOnIP: "127.0.0.1"}}
	}
	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: "127.0.0.1"},
			Metrics: &metrics.Config{Prometheus: &metrics.PrometheusConfig{
				ListenAddress: fmt.Sprintf("127.0.0.1:%d", ports[8]), HandlerPath: "/metrics",
			}},
		},
		Persistence: config.Persistence{
			DefaultStore:     "main",
			VisibilityStore:  visibility,
			NumHistoryShards: 1,
			DataStores:       stores,
		},
		ClusterMetadata: &cluster.Config{
			FailoverVersionIncrement: 10,
			MasterClusterName:        "active",
			CurrentClusterName:       "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: hostPort},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": service(ports[0], ports[1]),
			"history":  service(ports[2], ports[3]),
			"matching": service(ports[4], ports[5]),
			"worker":   service(ports[6], ports[7]),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: hostPort},
	}

	var nss []*sqliteschema.NamespaceConfig
	for _, name := range append([]string{Namespace}, opts.Namespaces...) {
		ns, err := sqliteschema.NewNamespaceConfig("active", name, false, opts.SearchAttributes)
		if err != nil {
			return nil, fmt.Errorf("temporal namespace config: %w", err)
		}
		nss = append(nss, ns)
	}
	if err := sqliteschema.CreateNamespaces(&sqlCfg, nss...); err != nil {
		return nil, fmt.Errorf("create temporal namespace: %w", err)
	}

	level := opts.LogLevel
	if level == "" {
		level = "warn"
	}
	var logger log.Logger = log.NewNoopLogger()
	// Quiet until the product's client has connected: the services report each other as
	// unavailable while they come up.
	quiet := &atomic.Bool{}
	quiet.Store(true)
	if level != "off" {
		logger = quietLogger{log.NewZapLogger(log.BuildZapLogger(log.Config{Level: level})), quiet}
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporal authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporal claim mapper: %w", err)
	}
	services := temporal.DefaultServices
	if opts.NoSystemWorkers {
		services = slices.DeleteFunc(slices.Clone(services), func(s string) bool { return s == "worker" })
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(services),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// Updates arrive as human decisions and execution-step batches: allow plenty in flight.
			dynamicconfig.WorkflowExecutionMaxInFlightUpdates.Key(): 100,
			// Search attributes added at run time (temporal-setup, an older data directory)
			// apply within a second rather than ten.
			dynamicconfig.NamespaceCacheRefreshInterval.Key(): time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("create temporal server: %w", err)
	}
	if err := start(srv); err != nil {
		return nil, fmt.Errorf("start temporal server on ports %v: %w", ports, err)
	}
	return &Temporal{server: srv, HostPort: hostPort, quiet: quiet}, nil
}

// SQLConfig is the Temporal server's connection to one of the store's databases.
func (s *PostgresStore) SQLConfig(database string) config.SQL {
	return config.SQL{PluginName: postgresplugin.PluginNamePGX, ConnectAddr: s.Addr, ConnectProtocol: "tcp",
		User: s.User, DatabaseName: database, MaxConns: 20, MaxIdleConns: 20}
}

// start starts srv, turning a panic into an error: when a port it was given is taken by the
// time it binds, the membership layer serves a nil listener and panics instead of failing.
func start(srv temporal.Server) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("a service failed to start (a port taken meanwhile?): %v", r)
		}
	}()
	return srv.Start()
}

// Ready marks the server as serving: from now until Stop, its warnings and errors are logged.
func (t *Temporal) Ready() { t.quiet.Store(false) }

// Stop shuts the server down.
func (t *Temporal) Stop() error {
	t.quiet.Store(true)
	return t.server.Stop()
}

// quietLogger drops the server's warnings and errors while it starts and stops: its services
// report each other's arrival and departure as errors, which only alarm the person watching.
type quietLogger struct {
	log.Logger
	quiet *atomic.Bool
}

func (q quietLogger) Warn(msg string, tags ...tag.Tag) {
	if !q.quiet.Load() {
		q.Logger.Warn(msg, tags...)
	}
}

func (q quietLogger) Error(msg string, tags ...tag.Tag) {
	if !q.quiet.Load() {
		q.Logger.Error(msg, tags...)
	}
}

func (q quietLogger) With(tags ...tag.Tag) log.Logger {
	return quietLogger{log.With(q.Logger, tags...), q.quiet}
}

// temporalPorts returns the server's nine ports. A file-backed server keeps them across
// restarts: its membership table still lists the previous process's addresses, and a new
// process on other ports would wait for those entries to expire (about a minute) before
// serving.
func temporalPorts(dbFile string) ([]int, error) {
	if dbFile == "" {
		return freePorts(9)
	}
	f := dbFile + ".ports"
	if b, err := os.ReadFile(f); err == nil {
		var ports []int
		for _, field := range strings.Fields(string(b)) {
			p, err := strconv.Atoi(field)
			if err != nil {
				break
			}
			ports = append(ports, p)
		}
		if len(ports) == 9 && portsFree(ports) {
			return ports, nil
		}
	}
	ports, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	text := strings.Trim(fmt.Sprint(ports), "[]")
	return ports, os.WriteFile(f, []byte(text+"\n"), 0o600)
}

func portsFree(ports []int) bool {
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
