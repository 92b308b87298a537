//go:build race

package audit_test

// raceEnabled: the race detector slows bulk appends and verification several times over.
const raceEnabled = true
