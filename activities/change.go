package activities

import (
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// Change is one transition of a measure as the workflow decided it. The Record activity
// persists it, with its audit entry, in one transaction.
type Change struct {
	// Key is stable across retries and replays (workflow ID and transition number), so a retried
	// activity never writes twice.
	Key     string         `json:"key"`
	Measure string         `json:"measure"`
	Case    string         `json:"case"`
	Version int            `json:"version"` // the version acted on
	Action  measure.Action `json:"action"`
	// Kind is the audit action: the operation, or "decide", or "deadline.<name>".
	Kind  string        `json:"kind"`
	From  measure.Stage `json:"from"`
	To    measure.Stage `json:"to"`
	Facts authz.Facts   `json:"facts"` // the facts after the change, projected for the API
	// Digest of the version acted on, for records that bind to it (votes, approvals).
	Digest   string            `json:"digest,omitempty"`
	Tally    *measure.Tally    `json:"tally,omitempty"`
	Approval *measure.Approval `json:"approval,omitempty"`
	// NewVersion is set when the change opens a new draft version (a return for changes).
	NewVersion int            `json:"new_version,omitempty"`
	Details    map[string]any `json:"details,omitempty"`
}

// Result is what the workflow learns from a recorded change.
type Result struct {
	Sealed *measure.Sealed `json:"sealed,omitempty"` // for submit and declare_emergency
}
