//go:build !race

package intel

const raceEnabled = false
