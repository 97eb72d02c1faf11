//go:build race

package server

// raceEnabled: the race detector multiplies memory use, so memory bounds are looser under it.
const raceEnabled = true
