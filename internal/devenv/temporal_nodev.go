//go:build nodev

package devenv

import "context"

// Embedded reports whether this build holds the embedded Temporal server.
const Embedded = false

// Temporal stands in for the embedded server in a build without it.
type Temporal struct {
	HostPort string
}

// StartTemporal refuses: this build has no embedded server.
func StartTemporal(context.Context, TemporalOptions) (*Temporal, error) {
	return nil, StartTemporalErr()
}

// Ready does nothing.
func (t *Temporal) Ready() {}

// Stop does nothing.
func (t *Temporal) Stop() error { return nil }
