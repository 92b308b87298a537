package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/server/common/log"
	tschema "go.temporal.io/server/tools/common/schema"
	tsql "go.temporal.io/server/tools/sql"

	"github.com/takedown/takedown/internal/devenv"
	"github.com/takedown/takedown/internal/testdb"
	"github.com/takedown/takedown/workflows"
)

// pooled is how many namespaces the test binary's Temporal server is created with; a server
// started after they are taken registers one more, which takes a namespace cache refresh.
const pooled = 128

// temporal is the test binary's embedded Temporal server, started on first use and stopped by
// Main. Servers of different tests stay apart in namespaces of their own.
var temporal struct {
	once sync.Once
	srv  *devenv.Temporal
	drop func() // the databases of its state
	err  error
	mu   sync.Mutex
	next int
}

// temporalNamespace returns the address of the test binary's Temporal server and a namespace
// no other server of this binary has used.
func temporalNamespace(t testing.TB) (hostPort, namespace string) {
	t.Helper()
	temporal.once.Do(func() {
		names := make([]string, pooled)
		for i := range names {
			names[i] = fmt.Sprintf("test-%d", i+1)
		}
		var store *devenv.PostgresStore
		store, temporal.drop, temporal.err = temporalStore(context.Background())
		if temporal.err != nil {
			return
		}
		temporal.srv, temporal.err = devenv.StartTemporal(context.Background(), devenv.TemporalOptions{LogLevel: "off",
			SearchAttributes: workflows.SearchAttributes(), Namespaces: names, NoSystemWorkers: true, Postgres: store})
	})
	if temporal.err != nil {
		t.Fatalf("start the tests' Temporal server: %v", temporal.err)
	}
	temporal.mu.Lock()
	defer temporal.mu.Unlock()
	temporal.next++
	return temporal.srv.HostPort, fmt.Sprintf("test-%d", temporal.next)
}

// stopTemporal stops the test binary's Temporal server if it was started.
func stopTemporal() {
	if temporal.srv != nil {
		_ = temporal.srv.Stop()
	}
	if temporal.drop != nil {
		temporal.drop()
	}
}

// temporalStore creates the PostgreSQL databases the test binary's Temporal server keeps its
// state in, with Temporal's schema, on the tests' server (testdb.AdminURL), and returns them
// and a func that drops them.
func temporalStore(ctx context.Context) (*devenv.PostgresStore, func(), error) {
	admin, err := pgx.ParseConfig(testdb.AdminURL())
	if err != nil {
		return nil, nil, fmt.Errorf("the tests' PostgreSQL address: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to PostgreSQL for tests (set TAKEDOWN_TEST_PG): %w", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	store := &devenv.PostgresStore{Addr: net.JoinHostPort(admin.Host, strconv.Itoa(int(admin.Port))), User: admin.User,
		Database: "takedown_test_temporal_" + hex.EncodeToString(b)}
	store.Visibility = store.Database + "_visibility"
	var made []string
	drop := func() {
		conn, err := pgx.ConnectConfig(context.Background(), admin)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		for _, name := range made {
			_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
	}
	for _, db := range []struct{ name, schema string }{{store.Database, "postgresql/v12/temporal"}, {store.Visibility, "postgresql/v12/visibility"}} {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db.name); err != nil {
			drop()
			return nil, nil, fmt.Errorf("create %s: %w", db.name, err)
		}
		made = append(made, db.name)
		if err := setUpTemporalSchema(store, db.name, db.schema); err != nil {
			drop()
			return nil, nil, err
		}
	}
	return store, drop, nil
}

// setUpTemporalSchema applies Temporal's versioned schema (PostgreSQL, from the server module)
// to an empty database, as temporal-sql-tool's setup-schema and update-schema do.
func setUpTemporalSchema(store *devenv.PostgresStore, database, schemaName string) error {
	cfg := store.SQLConfig(database)
	conn, err := tsql.NewConnection(&cfg, log.NewNoopLogger())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", database, err)
	}
	defer conn.Close()
	if err := tschema.NewSetupSchemaTask(conn, &tschema.SetupConfig{InitialVersion: "0.0"}, log.NewNoopLogger()).Run(); err != nil {
		return fmt.Errorf("temporal schema versions in %s: %w", database, err)
	}
	if err := tschema.NewUpdateSchemaTask(conn, &tschema.UpdateConfig{DBName: database, SchemaName: schemaName}, log.NewNoopLogger()).Run(); err != nil {
		return fmt.Errorf("temporal schema %s in %s: %w", schemaName, database, err)
	}
	return nil
}
