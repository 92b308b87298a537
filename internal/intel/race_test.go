//go:build race

package intel

// raceEnabled: the race detector slows parsing a large bundle several times over.
const raceEnabled = true
