// Package devenv starts what the embedded default needs on one machine: a Temporal server whose
// state lives in a SQLite file (the tests': in PostgreSQL), and a PostgreSQL server when none
// is reachable.
//
// Nothing here is used in production: `takedownd serve` and `takedownd worker` dial an external
// Temporal cluster and PostgreSQL instead. Built with -tags nodev, takedownd links no Temporal
// server at all, and `dev` says so.
package devenv

import (
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
)

// Namespace is the Temporal namespace the embedded server creates and the product uses.
const Namespace = "takedown"

// TemporalOptions configures StartTemporal.
type TemporalOptions struct {
	// DBFile holds the server's state; empty keeps it in memory (tests).
	DBFile string
	// LogLevel of the server's own logger: "debug", "info", "warn", "error", or "off".
	LogLevel string
	// SearchAttributes are registered with the namespace when it is created, so the first
	// workflow can use them (added later, they take a namespace cache refresh to apply).
	SearchAttributes map[string]enumspb.IndexedValueType
	// Namespaces are created beside Namespace, with the same search attributes: tests share
	// one server, each running takedown in a namespace of its own.
	Namespaces []string
	// NoSystemWorkers leaves out Temporal's worker service (schedules, batch operations,
	// namespace deletion, scanners), which takedown does not use and which runs pollers for
	// every namespace: tests sharing one server over a hundred namespaces.
	NoSystemWorkers bool
	// Postgres keeps the server's state in PostgreSQL databases whose Temporal schema is set up
	// (tests put it on their own server: under the race detector, SQLite's transpiled C took
	// a fifth of the tests' CPU); nil keeps it in SQLite (DBFile).
	Postgres *PostgresStore
}

// PostgresStore names the PostgreSQL databases of a Temporal server's state.
type PostgresStore struct {
	Addr, User           string // host:port, and a role that needs no password (tests)
	Database, Visibility string // the Temporal and the visibility schema's databases
}

// StartTemporalErr is what `dev` answers in a build without the embedded server.
func StartTemporalErr() error {
	return errors.New("this takedownd was built with -tags nodev, without the embedded Temporal server: `dev` needs a build without that tag; serve and worker dial a cluster")
}
