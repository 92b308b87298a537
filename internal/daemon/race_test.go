//go:build race

package daemon_test

// raceEnabled: the race detector slows the in-process Temporal server several times over.
const raceEnabled = true
