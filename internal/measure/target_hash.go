package measure

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// TargetHash hashes a target list as a seal commits to it: each target's JSON on a line of its
// own, in order. The seal, the check of stored rows against it and the reconciliation of the
// tables with the log all hash with it.
type TargetHash struct {
	h   hash.Hash
	n   int
	buf []byte
}

// NewTargetHash starts an empty list.
func NewTargetHash() *TargetHash { return &TargetHash{h: sha256.New()} }

// Add appends one target.
func (th *TargetHash) Add(t Target) {
	th.buf = append(t.AppendJSON(th.buf[:0]), '\n')
	th.h.Write(th.buf)
	th.n++
}

// Len is how many targets were added.
func (th *TargetHash) Len() int { return th.n }

// Sum is the list's hash, in hex.
func (th *TargetHash) Sum() string { return hex.EncodeToString(th.h.Sum(nil)) }

// TargetColumns is the column list every read of target rows selects, in the order ScanTarget
// reads it.
const TargetColumns = `kind, value, COALESCE(port, 0), location, country, role, ownership, hosting_provider, registrar, source`

// ScanTarget reads one row selected with TargetColumns.
func ScanTarget(row interface{ Scan(...any) error }) (Target, error) {
	var t Target
	err := row.Scan(&t.Kind, &t.Value, &t.Port, &t.Location, &t.Country, &t.Role, &t.Ownership, &t.HostingProvider, &t.Registrar, &t.Source)
	return t, err
}
